"""What an import may create (issue 14, F4): its suite is titled by its stored slug, so no
spelling of a name (lookalike letters, capitals, spaces) makes a row that reads like a probe
suite's; and an environment that does not exist is created only by those who configure
environments (DevOps, superusers) and by the command line, never by an Engineer's upload."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from runs.models import Environment, Run, Suite
from tests.conftest import manage
from tests.factories import EnvironmentFactory, SuiteFactory
from tests.test_api import bearer, stored_rows, user_with_role

JUNIT = b'<testsuite name="s"><testcase classname="pkg" name="t" time="0.1"/></testsuite>'
NO_STAGING = (
    "no environment named 'staging': DevOps create it on the Environments page (or import once as DevOps); "
    "nothing was imported"
)


def upload(role: str | None, suite: str = "unit", environment: str = "staging", superuser: bool = False):
    user = user_with_role(role, is_superuser=superuser)
    return Client(**bearer(user)).post(
        "/api/v1/runs/import",
        {"file": SimpleUploadedFile("junit.xml", JUNIT), "suite": suite, "environment": environment},
    )


@pytest.mark.django_db
def test_an_engineer_cannot_create_an_environment_by_importing_into_it():
    before = stored_rows()
    response = upload("Engineer")
    assert (response.status_code, response.json()) == (400, {"detail": NO_STAGING})
    assert stored_rows() == before
    assert not Environment.objects.filter(name="staging").exists()


@pytest.mark.django_db
def test_an_engineer_imports_into_an_environment_devops_made():
    EnvironmentFactory(name="staging")
    assert upload("Engineer").status_code == 201
    assert Environment.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "superuser"), [("DevOps", False), (None, True)], ids=["devops", "superuser"])
def test_who_may_configure_environments_creates_one_by_importing_into_it(role, superuser):
    response = upload(role, superuser=superuser)
    assert response.status_code == 201, response.content
    environment = Environment.objects.get(name="staging")
    assert environment.base_url == ""
    assert Run.objects.get().environment == environment


@pytest.mark.django_db
def test_a_manager_may_not_import_at_all():
    response = upload("Manager")
    assert (response.status_code, response.json()) == (403, {"detail": "Your role may not run."})


@pytest.mark.django_db(transaction=True)
def test_the_command_line_creates_the_environment_it_names(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_bytes(JUNIT)
    completed = manage("import_results", str(report), "--suite", "unit", "--env", "staging")
    assert completed.returncode == 0, completed.stderr
    assert Environment.objects.filter(name="staging").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Golden p\u0430th", "golden-pth"),  # a Cyrillic a
        ("g\u043elden-path", "glden-path"),  # a Cyrillic o
        ("Golden Path Tests", "golden-path-tests"),
        ("golden_path", "golden_path"),
    ],
)
def test_an_import_suite_is_titled_by_its_slug_never_by_the_text_given(given, stored):
    SuiteFactory(name="golden-path", title="Golden path")  # the probe suite a title could imitate
    EnvironmentFactory(name="staging")
    response = upload("Engineer", suite=given)
    assert response.status_code == 201, response.content
    suite = Suite.objects.get(origin=Suite.Origin.IMPORT)
    assert (suite.name, suite.title) == (stored, stored)
    assert response.json()["suite"] == stored
