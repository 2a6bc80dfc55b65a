"""Status badges: public only through their key, showing the environment's latest full run."""

import pytest
from django.contrib.auth.models import Group

from runs.models import Badge, Run, RunStatus
from tests.factories import EnvironmentFactory, RunFactory, SuiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def badge():
    return Badge.objects.create(environment=EnvironmentFactory(name="staging"), suite=SuiteFactory(name="golden-path"))


def finished(badge, verdict, passed, total, scope=Run.Scope.ALL):
    return RunFactory(
        environment=badge.environment,
        suite=badge.suite,
        status=RunStatus.FINISHED,
        verdict=verdict,
        passed=passed,
        total=total,
        scope=scope,
    )


def test_it_shows_the_latest_verdict_and_pass_rate_without_login(client, badge):
    finished(badge, "PARTIAL SUCCESS", 9, 12)
    response = client.get(f"/badge/{badge.key}.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert "PARTIAL SUCCESS 75%" in response.content.decode()


def test_a_rerun_of_a_few_checks_does_not_change_the_badge(client, badge):
    finished(badge, "PASS", 12, 12)
    finished(badge, "FAIL", 0, 3, scope=Run.Scope.FAILED)
    assert "PASS 100%" in client.get(f"/badge/{badge.key}.svg").content.decode()


def test_it_says_no_runs_before_the_first_one(client, badge):
    assert "no runs" in client.get(f"/badge/{badge.key}.svg").content.decode()


def test_an_unknown_key_is_not_found(client, badge):
    assert client.get("/badge/guess.svg").status_code == 404


def test_devops_can_make_a_new_address_and_the_old_one_stops_working(client, badge):
    user = UserFactory()
    user.groups.add(Group.objects.get_or_create(name="DevOps")[0])
    client.force_login(user)
    old = badge.key
    assert client.post(f"/badges/{badge.pk}/rotate/").status_code == 302
    badge.refresh_from_db()
    assert badge.key != old
    assert client.get(f"/badge/{old}.svg").status_code == 404


def test_only_devops_configure_badges(client, badge):
    engineer = UserFactory()
    engineer.groups.add(Group.objects.get_or_create(name="Engineer")[0])
    client.force_login(engineer)
    assert client.get("/badges/staging/golden-path/").status_code == 403
    assert client.post(f"/badges/{badge.pk}/rotate/").status_code == 403
