"""A login is not a role: a user with none is told to ask an administrator, on every page
and in the API; the API's docs and schema are for users with a role; a POST that starts
a run or uploads a results file honours ``Idempotency-Key``."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from runs.api import NO_ROLE
from runs.models import Result, Run, RunStatus
from tests.factories import EnvironmentFactory, ResultFactory, RunFactory, SuiteFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory
from tests.test_api import bearer, user_with_role

PAGES = ["/", "/runs/", "/trends/", "/business/", "/suites/", "/environments/", "/compare/", "/tokens/"]


@pytest.fixture
def no_role(db):
    return UserFactory(username="newcomer", password=None)


@pytest.mark.parametrize("path", PAGES)
def test_it_tells_a_user_with_no_role_to_ask_an_administrator(client, no_role, path):
    client.force_login(no_role)
    response = client.get(path)
    assert response.status_code == 403
    html = response.content.decode()
    assert "Your account has no role yet" in html and "Ask an administrator" in html
    assert 'action="/accounts/logout/"' in html and 'href="/runs/"' in html  # still a page to leave
    assert client.post("/accounts/logout/").status_code == 302


def test_it_answers_403_to_the_api_token_of_a_user_with_no_role(no_role):
    response = Client(**bearer(no_role)).get("/api/v1/runs")
    assert (response.status_code, response.json()) == (403, {"detail": NO_ROLE})


def test_it_answers_403_to_the_api_session_of_a_user_with_no_role(client, no_role):
    client.force_login(no_role)
    response = client.get("/api/v1/mrr-at-risk")
    assert (response.status_code, response.json()) == (403, {"detail": NO_ROLE})


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/openapi.json"])
def test_it_sends_anonymous_visitors_of_the_api_docs_to_the_login_page(client, db, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/openapi.json"])
def test_it_shows_the_api_docs_to_a_token_with_a_role_not_to_one_without(no_role, path):
    assert Client(**bearer(user_with_role("Manager"))).get(path).status_code == 200
    assert Client(**bearer(no_role)).get(path).status_code == 403


# --- Idempotency-Key ------------------------------------------------------------------------


@pytest.fixture
def engineer_api(db):
    return Client(**bearer(user_with_role("Engineer", username="ci")))


def start(client: Client, key: str, suite: str = "web"):
    return client.post(
        "/api/v1/runs",
        {"suite": suite, "environment": "staging"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_it_starts_one_run_for_a_repeated_idempotency_key(engineer_api):
    SuiteFactory(name="web")
    EnvironmentFactory(name="staging")
    first, again = start(engineer_api, "build-417"), start(engineer_api, "build-417")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert Run.objects.count() == 1
    assert start(engineer_api, "build-418").json()["id"] != first.json()["id"]
    other = Client(**bearer(user_with_role("DevOps", username="other")))  # another user's key is another key
    assert start(other, "build-417").json()["id"] != first.json()["id"]


def test_it_refuses_an_idempotency_key_reused_for_another_request(engineer_api):
    SuiteFactory(name="web")
    SuiteFactory(name="api")
    EnvironmentFactory(name="staging")
    assert start(engineer_api, "build-417").status_code == 202
    response = start(engineer_api, "build-417", suite="api")
    assert (response.status_code, response.json()) == (
        422,
        {"detail": "this Idempotency-Key was already used for another request"},
    )
    assert Run.objects.count() == 1


def test_it_reruns_once_for_a_repeated_idempotency_key(engineer_api):
    check = CheckFactory(category__suite=SuiteFactory(name="web"))
    parent = RunFactory(suite=check.suite, status=RunStatus.FINISHED)
    ResultFactory(run=parent, test_case=check, outcome=Result.Outcome.FAILED)

    def rerun():
        return engineer_api.post(
            f"/api/v1/runs/{parent.pk}/rerun",
            {"scope": "failed"},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="retry-1",
        )

    first, again = rerun(), rerun()
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert parent.reruns.count() == 1


def upload(client: Client, key: str, suite: str = "unit-tests"):
    junit = b'<testsuite name="s"><testcase classname="pkg" name="t" time="0.1"/></testsuite>'
    return client.post(
        "/api/v1/runs/import",
        {"file": SimpleUploadedFile("report.xml", junit), "suite": suite, "environment": "ci"},
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_a_retried_upload_with_its_idempotency_key_stores_the_file_once(engineer_api):
    EnvironmentFactory(name="ci")
    first, again = upload(engineer_api, "build-417-junit"), upload(engineer_api, "build-417-junit")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Run.objects.count() == 1 and Result.objects.count() == 1
    response = upload(engineer_api, "build-417-junit", suite="other-tests")
    assert (response.status_code, response.json()) == (
        422,
        {"detail": "this Idempotency-Key was already used for another request"},
    )
    assert upload(engineer_api, "build-418-junit").json()["id"] != first.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_two_uploads_racing_with_one_idempotency_key_store_one_run():
    """The second waits on the first's unique request key, then answers with its run."""
    user = user_with_role("Engineer", username="ci")
    EnvironmentFactory(name="ci")
    clients = [Client(**bearer(user)) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda client: upload(client, "twin"), clients))
    assert [r.status_code for r in responses] == [201, 201], [r.content for r in responses]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert Run.objects.filter(trigger=Run.Trigger.IMPORT).count() == 1
