"""A suite of imported CI results has no checks Goldpath could run: the page, the API and
the buttons follow one rule (runs.services.not_runnable_reason) and say why."""

import io

import pytest
from django.test import Client

from runs.importers.service import import_results
from runs.models import Run
from tests.test_api import bearer, user_with_role

PASSING = b'<testsuite name="unit"><testcase classname="m" name="t" time="0.1"/></testsuite>'
WHY = "suite 'unit' holds results imported from CI; Goldpath has no checks of its own to run for it"


@pytest.fixture
def imported(db) -> Run:
    return import_results(io.BytesIO(PASSING), suite_name="unit", environment_name="ci")


@pytest.fixture
def engineer_client(db) -> Client:
    client = Client()
    client.force_login(user_with_role("Engineer"))
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_it_tells_why_run_now_cannot_run_an_imported_suite(engineer_client, imported):
    response = engineer_client.post(
        "/run-now/", {"environment": imported.environment_id, "suite": imported.suite_id}, follow=True
    )
    assert messages_of(response) == [WHY]
    assert Run.objects.count() == 1


def test_it_tells_why_a_web_rerun_of_an_imported_run_cannot_run(engineer_client, imported):
    response = engineer_client.post(f"/runs/{imported.pk}/rerun/", {"scope": "failed"}, follow=True)
    assert messages_of(response) == [WHY]  # not "nothing to rerun": the reason is the suite's
    assert Run.objects.count() == 1


def test_it_gives_the_api_the_same_reason_for_a_rerun(imported):
    response = Client(**bearer(user_with_role("Engineer"))).post(
        f"/api/v1/runs/{imported.pk}/rerun", {"scope": "failed"}, content_type="application/json"
    )
    assert (response.status_code, response.json()) == (400, {"detail": WHY})


def test_it_offers_no_run_now_or_rerun_button_for_an_imported_suite(engineer_client, imported):
    overview = engineer_client.get("/").content.decode()
    assert "dashboard-run-now" not in overview and 'action="/run-now/"' not in overview
    assert f'title="{WHY}"'.replace("'", "&#x27;") in overview
    page = engineer_client.get(f"/runs/{imported.pk}/").content.decode()
    assert f"/runs/{imported.pk}/rerun/" not in page
    assert "No rerun: " + WHY.replace("'", "&#x27;") in page
