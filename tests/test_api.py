"""The REST API v1 through Django's test client: tokens, runs, reruns, imports, history,
MRR at risk, the OpenAPI schema and a schema-driven fuzz run (schemathesis)."""

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from runs import tokens
from runs.models import ApiToken, Environment, Result, Run, RunStatus, Suite, TestCase
from runs.services import create_run
from tests.conftest import wait_for
from tests.factories import CategoryFactory, EnvironmentFactory, ResultFactory, RunFactory, SuiteFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory
from tests.samples import billion_laughs, junit_written_by_pytest

API = "/api/v1"
TOKEN_PATTERN = r"gp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}"
SEED_FAILURES = {"websocket_message_send", "agent_execution_flow", "realtime_updates"}

PYTEST_MODULE = """
import pytest


def test_passes():
    assert True


def test_also_passes():
    assert 2 + 2 == 4


def test_fails():
    assert 1 == 2


@pytest.mark.skip(reason="not here")
def test_skipped():
    pass
"""


# --- helpers ------------------------------------------------------------------------------


def user_with_role(role: str | None = None, **fields):
    user = UserFactory(password=None, **fields)  # an unusable password: no slow hashing, only force_login
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])  # a flush removes the seeded groups
    return user


def bearer(user) -> dict[str, str]:
    _, plain = tokens.create_token(user, "tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {plain}"}


def stored_rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Run, Result, Suite, Environment))


def pytest_junit(tmp_path: Path) -> bytes:
    """A JUnit file written by pytest itself, over a tiny module (2 passed, 1 failed, 1 skipped)."""
    return junit_written_by_pytest(tmp_path, PYTEST_MODULE).read_bytes()


def upload(data: bytes, name: str = "junit.xml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/xml")


@pytest.fixture
def engineer(db):
    return user_with_role("Engineer", username="engineer")


@pytest.fixture
def api(engineer):
    """A test client that sends an engineer's API token (no session)."""
    return Client(**bearer(engineer))


@pytest.fixture
def finished_run(db):
    """A finished run of a suite with two categories: one check passed, one failed."""
    suite = SuiteFactory(name="web")
    passed = CheckFactory(category=CategoryFactory(suite=suite, name="Login"), node_id="login")
    failed = CheckFactory(category=CategoryFactory(suite=suite, name="Checkout"), node_id="checkout")
    run = RunFactory(suite=suite, status=RunStatus.FINISHED, verdict="PARTIAL SUCCESS", total=2, passed=1, failed=1)
    ResultFactory(run=run, test_case=passed)
    ResultFactory(run=run, test_case=failed, outcome=Result.Outcome.FAILED, message="assert 1 == 2")
    return run


# --- tokens -------------------------------------------------------------------------------


def test_it_returns_the_plain_token_once_and_stores_only_its_sha256(engineer):
    token, plain = tokens.create_token(engineer, "CI pipeline")
    assert re.fullmatch(TOKEN_PATTERN, plain)
    _, prefix, secret = plain.split("_", 2)
    token.refresh_from_db()
    assert token.prefix == prefix
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(value) for value in model_to_dict(token).values())
    assert secret not in stored and plain not in stored
    assert not ApiToken.objects.filter(secret_hash__contains=secret).exists()


def test_it_gives_a_new_secret_for_every_token(engineer):
    plains = {tokens.create_token(engineer, "same name")[1] for _ in range(3)}
    assert len(plains) == 3


def test_it_authenticates_a_token_as_its_user(api):
    response = api.get(f"{API}/runs")
    assert response.status_code == 200
    assert response.json() == {"count": 0, "limit": 50, "offset": 0, "items": []}


def test_it_refuses_a_revoked_token(engineer):
    token, plain = tokens.create_token(engineer, "old")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.get(f"{API}/runs").status_code == 200
    tokens.revoke(token)
    response = client.get(f"{API}/runs")
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_it_refuses_the_token_of_a_deactivated_user(engineer):
    headers = bearer(engineer)
    engineer.is_active = False
    engineer.save()
    assert Client(**headers).get(f"{API}/runs").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer", id="empty"),
        pytest.param("Bearer garbage", id="no-parts"),
        pytest.param("Bearer gp_", id="marker-only"),
        pytest.param("Bearer gp_{prefix}", id="no-secret"),
        pytest.param("Bearer gp_{prefix}_wrong-secret", id="wrong-secret"),
        pytest.param("Bearer gp_{prefix}_{secret}x", id="secret-plus-a-char"),
        pytest.param("Bearer xx_{prefix}_{secret}", id="wrong-marker"),
        pytest.param("Bearer gp_000000000000_{secret}", id="unknown-prefix"),
        pytest.param("Basic {plain}", id="wrong-scheme"),
        pytest.param("{plain}", id="no-scheme"),
    ],
)
def test_it_refuses_a_malformed_or_unknown_token_with_401(engineer, header):
    token, plain = tokens.create_token(engineer, "real")
    _, prefix, secret = plain.split("_", 2)
    value = header.format(prefix=prefix, secret=secret, plain=plain)
    response = Client(HTTP_AUTHORIZATION=value).get(f"{API}/runs")
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    token.refresh_from_db()
    assert token.last_used is None


def test_it_records_when_a_token_was_last_used(engineer):
    token, plain = tokens.create_token(engineer, "CI")
    assert token.last_used is None
    before = timezone.now()
    Client(HTTP_AUTHORIZATION=f"Bearer {plain}").get(f"{API}/runs")
    token.refresh_from_db()
    assert before <= token.last_used <= timezone.now()


def test_it_writes_last_used_at_most_once_a_minute(engineer):
    token, plain = tokens.create_token(engineer, "CI")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plain}")
    client.get(f"{API}/runs")
    token.refresh_from_db()
    first = token.last_used
    client.get(f"{API}/runs")
    token.refresh_from_db()
    assert token.last_used == first
    ApiToken.objects.filter(pk=token.pk).update(last_used=first - timedelta(minutes=2))
    client.get(f"{API}/runs")
    token.refresh_from_db()
    assert token.last_used > first


def test_the_tokens_page_shows_a_new_token_once(client, engineer):
    client.force_login(engineer)
    created = client.post("/tokens/new/", {"name": "CI staging pipeline"})
    assert created.status_code == 200
    html = created.content.decode()
    plains = set(re.findall(TOKEN_PATTERN, html))
    assert len(plains) == 1
    plain = plains.pop()
    token = ApiToken.objects.get(user=engineer)
    assert token.name == "CI staging pipeline" and plain.startswith(f"gp_{token.prefix}_")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {plain}").get(f"{API}/runs").status_code == 200

    later = client.get("/tokens/")
    assert later.status_code == 200
    assert plain.split("_", 2)[2] not in later.content.decode()
    assert f"gp_{token.prefix}_…" in later.content.decode()


def test_the_tokens_page_refuses_a_nameless_token(client, engineer):
    client.force_login(engineer)
    response = client.post("/tokens/new/", {"name": "  "})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()


def test_the_tokens_page_revokes_a_token_with_a_csrf_protected_post(engineer):
    token, plain = tokens.create_token(engineer, "CI")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(engineer)
    revoke_url = f"/tokens/{token.pk}/revoke/"
    page = browser.get("/tokens/")
    assert f'action="{revoke_url}"' in page.content.decode()

    assert browser.get(revoke_url).status_code == 405
    assert browser.post(revoke_url).status_code == 403  # no CSRF token
    token.refresh_from_db()
    assert token.active

    response = browser.post(revoke_url, {"csrfmiddlewaretoken": page.context["csrf_token"]})
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    token.refresh_from_db()
    assert not token.active
    assert Client(HTTP_AUTHORIZATION=f"Bearer {plain}").get(f"{API}/runs").status_code == 401


def test_a_user_cannot_revoke_someone_elses_token(client, engineer):
    token, _ = tokens.create_token(user_with_role("DevOps"), "theirs")
    client.force_login(engineer)
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.active


# --- GET /runs ------------------------------------------------------------------------------


def test_it_pages_runs_newest_first_with_a_count(api):
    now = timezone.now()
    runs = [RunFactory(created=now - timedelta(minutes=i)) for i in range(7)]
    page = api.get(f"{API}/runs", {"limit": 3, "offset": 2}).json()
    assert (page["count"], page["limit"], page["offset"]) == (7, 3, 2)
    assert [item["id"] for item in page["items"]] == [r.pk for r in runs[2:5]]
    last = api.get(f"{API}/runs", {"limit": 3, "offset": 6}).json()
    assert [item["id"] for item in last["items"]] == [runs[6].pk]
    assert api.get(f"{API}/runs", {"offset": 50}).json()["items"] == []


def test_it_lists_a_run_with_its_summary_fields(api, finished_run):
    (item,) = api.get(f"{API}/runs").json()["items"]
    assert item["id"] == finished_run.pk
    assert item["url"] == f"http://127.0.0.1:8000/runs/{finished_run.pk}/"
    assert (item["status"], item["verdict"], item["suite"]) == ("finished", "PARTIAL SUCCESS", "web")
    assert (item["total"], item["passed"], item["failed"]) == (2, 1, 1)
    assert item["environment"] == finished_run.environment.name
    assert item["parent_id"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"environment": "staging"}, {"staging-web-pass", "staging-api-fail", "staging-web-queued"}),
        ({"suite": "api"}, {"staging-api-fail", "prod-api-pass"}),
        ({"verdict": "PASS"}, {"staging-web-pass", "prod-api-pass"}),
        ({"status": "queued"}, {"staging-web-queued"}),
        ({"environment": "prod", "verdict": "PASS"}, {"prod-api-pass"}),
        ({"environment": "nowhere"}, set()),
    ],
)
def test_it_filters_runs(api, query, expected):
    staging, prod = EnvironmentFactory(name="staging"), EnvironmentFactory(name="prod")
    web, api_suite = SuiteFactory(name="web"), SuiteFactory(name="api")
    runs = {
        "staging-web-pass": RunFactory(environment=staging, suite=web, status="finished", verdict="PASS"),
        "staging-api-fail": RunFactory(environment=staging, suite=api_suite, status="finished", verdict="FAIL"),
        "staging-web-queued": RunFactory(environment=staging, suite=web),
        "prod-api-pass": RunFactory(environment=prod, suite=api_suite, status="finished", verdict="PASS"),
    }
    page = api.get(f"{API}/runs", query).json()
    assert {item["id"] for item in page["items"]} == {runs[name].pk for name in expected}
    assert page["count"] == len(expected)


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 1000}, {"limit": "many"}, {"offset": -1}, {"verdict": "MAYBE"}, {"status": "done"}],
    ids=["limit-0", "limit-1000", "limit-text", "offset-negative", "unknown-verdict", "unknown-status"],
)
def test_it_answers_422_to_invalid_list_parameters(api, query):
    response = api.get(f"{API}/runs", query)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", next(iter(query))]


# --- GET /runs/{id} ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_reports_a_worker_run_as_json(celery_worker, golden_path, target_factory, environment_for):
    client = Client(**bearer(user_with_role("Manager")))
    run = wait_for(create_run(golden_path, environment_for(target_factory(["close-after-send"]))))
    response = client.get(f"{API}/runs/{run.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    data = response.json()
    assert (data["run_id"], data["status"], data["verdict"]) == (run.pk, "finished", "PARTIAL SUCCESS")
    assert data["url"] == f"http://127.0.0.1:8000/runs/{run.pk}/"
    assert (data["total"], data["passed"], data["failed"]) == (12, 9, 3)
    classes = {r["node_id"]: r["failure_class"] for r in data["results"]}
    assert len(classes) == 12
    assert {classes[node] for node in SEED_FAILURES} == {"ws-closed-1000-after-send"}
    assert {c for node, c in classes.items() if node not in SEED_FAILURES} == {None}
    assert len(data["patterns"]) == 1
    assert "ws-closed-1000-after-send" in str(data["patterns"][0])
    assert data["mrr_at_risk"]["total"] == 550_000
    assert data["realness"]["verdict"] == "REAL"
    for key in ("categories", "critical_metrics", "mock_indicators", "flaky", "mrr_in_scope"):
        assert key in data


def test_it_answers_404_json_for_an_unknown_run(api, finished_run):
    response = api.get(f"{API}/runs/{finished_run.pk + 1000}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize("run_id", ["abc", "1.5", "-1", "%20"])
def test_it_answers_404_for_a_run_id_that_is_not_a_number(api, run_id):
    assert api.get(f"{API}/runs/{run_id}").status_code == 404


# --- POST /runs -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_starts_a_run_that_a_worker_finishes(celery_worker, golden_path, target, environment_for):
    environment = environment_for(target, name="ci")
    user = user_with_role("DevOps")
    response = Client(**bearer(user)).post(
        f"{API}/runs", {"suite": "golden-path", "environment": "ci"}, content_type="application/json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["trigger"], body["scope"]) == ("queued", "api", "all")
    assert (body["suite"], body["environment"], body["verdict"]) == ("golden-path", "ci", None)
    run = wait_for(Run.objects.get(pk=body["id"]))
    assert (run.status, run.verdict, run.total) == (RunStatus.FINISHED, "PASS", 12)
    assert (run.environment, run.triggered_by) == (environment, user)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"suite": "nope", "environment": "ci"}, "no suite named 'nope'"),
        ({"suite": "web", "environment": "nope"}, "no environment named 'nope'"),
    ],
    ids=["unknown-suite", "unknown-environment"],
)
def test_it_answers_404_to_a_run_of_an_unknown_suite_or_environment(api, body, detail):
    SuiteFactory(name="web")
    EnvironmentFactory(name="ci")
    response = api.post(f"{API}/runs", body, content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"detail": detail}
    assert not Run.objects.exists()


def test_it_answers_400_to_a_run_of_an_imported_suite(api):
    SuiteFactory(name="unit", origin=Suite.Origin.IMPORT)
    EnvironmentFactory(name="ci")
    response = api.post(f"{API}/runs", {"suite": "unit", "environment": "ci"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "suite 'unit' holds results imported from CI; Goldpath has no checks of its own to run for it"
    }
    assert not Run.objects.exists()


def test_it_answers_422_to_a_run_request_without_a_suite(api):
    response = api.post(f"{API}/runs", {"environment": "ci"}, content_type="application/json")
    assert response.status_code == 422
    assert not Run.objects.exists()


# --- POST /runs/{id}/rerun ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_reruns_the_failed_checks_of_a_finished_run(celery_worker, golden_path, target_factory, environment_for):
    parent = wait_for(create_run(golden_path, environment_for(target_factory(["close-after-send"]))))
    assert parent.verdict == "PARTIAL SUCCESS"
    client = Client(**bearer(user_with_role("Engineer")))
    response = client.post(f"{API}/runs/{parent.pk}/rerun", {"scope": "failed"}, content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["parent_id"], body["scope"], body["trigger"]) == (parent.pk, "failed", "rerun")
    child = Run.objects.get(pk=body["id"])
    assert set(child.scope_test_cases.values_list("node_id", flat=True)) == SEED_FAILURES
    assert child.expected == 3
    child = wait_for(child)  # the rerun goes to the same broken target: the same three fail again
    assert (child.status, child.total, child.failed) == (RunStatus.FINISHED, 3, 3)


def test_it_answers_404_to_a_rerun_of_an_unknown_category(api, finished_run):
    response = api.post(
        f"{API}/runs/{finished_run.pk}/rerun",
        {"scope": "category", "category": "Nope"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert Run.objects.count() == 1


def test_it_answers_404_to_a_rerun_of_an_unknown_check(api, finished_run):
    response = api.post(
        f"{API}/runs/{finished_run.pk}/rerun", {"scope": "test", "test_case": "nope"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert Run.objects.count() == 1


def test_it_answers_404_to_a_rerun_of_an_unknown_run(api, finished_run):
    response = api.post(f"{API}/runs/{finished_run.pk + 1}/rerun", {"scope": "all"}, content_type="application/json")
    assert response.status_code == 404
    assert Run.objects.count() == 1


def test_it_answers_400_to_a_rerun_of_the_failures_of_a_run_without_any(api, finished_run):
    finished_run.results.update(outcome=Result.Outcome.PASSED)
    response = api.post(f"{API}/runs/{finished_run.pk}/rerun", {"scope": "failed"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"run #{finished_run.pk} has nothing to rerun for scope ")
    assert Run.objects.count() == 1


def test_it_names_the_scope_as_the_client_sent_it_when_there_is_nothing_to_rerun(api, finished_run):
    finished_run.results.update(outcome=Result.Outcome.PASSED)
    response = api.post(f"{API}/runs/{finished_run.pk}/rerun", {"scope": "failed"}, content_type="application/json")
    assert response.json() == {"detail": f"run #{finished_run.pk} has nothing to rerun for scope 'failed'"}


def test_it_queues_a_rerun_of_one_category(api, finished_run):
    response = api.post(
        f"{API}/runs/{finished_run.pk}/rerun",
        {"scope": "category", "category": "Checkout"},
        content_type="application/json",
    )
    assert response.status_code == 202
    child = Run.objects.get(pk=response.json()["id"])
    assert list(child.scope_test_cases.values_list("node_id", flat=True)) == ["checkout"]
    assert child.status == RunStatus.QUEUED


# --- POST /runs/import ----------------------------------------------------------------------


def test_it_imports_a_junit_file_pytest_wrote(api, engineer, tmp_path):
    EnvironmentFactory(name="ci")  # an Engineer imports into environments DevOps made
    response = api.post(
        f"{API}/runs/import", {"file": upload(pytest_junit(tmp_path)), "suite": "unit tests", "environment": "CI"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["trigger"], body["verdict"]) == ("finished", "import", "PARTIAL SUCCESS")
    assert (body["total"], body["passed"], body["failed"], body["errors"], body["skipped"]) == (4, 2, 1, 0, 1)
    assert (body["suite"], body["environment"]) == ("unit-tests", "ci")
    run = Run.objects.get(pk=body["id"])
    assert run.triggered_by == engineer
    failed = run.results.get(outcome=Result.Outcome.FAILED)
    assert failed.test_case.node_id == "test_tiny::test_fails"
    assert failed.failure_class == "assertion"


def test_it_refuses_a_hostile_xml_file_and_stores_nothing(api):
    EnvironmentFactory(name="ci")
    before = stored_rows()
    response = api.post(f"{API}/runs/import", {"file": upload(billion_laughs()), "suite": "unit", "environment": "ci"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("refused: the XML declares a DTD, entities or external references")
    assert detail.endswith("; nothing was imported")
    assert stored_rows() == before


def test_it_refuses_a_file_over_the_size_limit_with_413(api, settings, tmp_path):
    settings.GOLDPATH_IMPORT_MAX_BYTES = 100
    data = pytest_junit(tmp_path)
    before = stored_rows()
    response = api.post(f"{API}/runs/import", {"file": upload(data), "suite": "unit", "environment": "ci"})
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"the file is {len(data):,} bytes; the import limit is 100 (GOLDPATH_IMPORT_MAX_BYTES)"
    }
    assert stored_rows() == before


def test_it_answers_422_to_an_import_without_a_file(api):
    response = api.post(f"{API}/runs/import", {"suite": "unit", "environment": "ci"})
    assert response.status_code == 422
    assert not Run.objects.exists()


# --- history and MRR at risk ------------------------------------------------------------------


def test_it_returns_a_checks_history_newest_first(api):
    check = CheckFactory(node_id="login", name="Login", category=CategoryFactory(name="Auth"))
    outcomes = ["passed", "failed", "passed", "failed"]
    runs = [RunFactory(suite=check.suite, status="finished") for _ in outcomes]
    for run, outcome in zip(runs, outcomes, strict=True):
        ResultFactory(
            run=run, test_case=check, outcome=outcome, failure_class="assertion" if outcome == "failed" else ""
        )
    response = api.get(f"{API}/test-cases/{check.pk}/history")
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in ("id", "node_id", "name", "suite", "category")} == {
        "id": check.pk,
        "node_id": "login",
        "name": "Login",
        "suite": check.suite.name,
        "category": "Auth",
    }
    assert data["flip_rate"] == 1.0
    assert [(r["run_id"], r["outcome"], r["failure_class"]) for r in data["results"]] == [
        (runs[3].pk, "failed", "assertion"),
        (runs[2].pk, "passed", None),
        (runs[1].pk, "failed", "assertion"),
        (runs[0].pk, "passed", None),
    ]
    assert set(data["results"][0]) == {
        "run_id",
        "environment",
        "outcome",
        "duration_s",
        "failure_class",
        "message",
        "finished_at",
    }
    limited = api.get(f"{API}/test-cases/{check.pk}/history", {"limit": 2}).json()
    assert [r["run_id"] for r in limited["results"]] == [runs[3].pk, runs[2].pk]


def test_it_answers_404_for_the_history_of_an_unknown_check(api):
    assert api.get(f"{API}/test-cases/999999/history").status_code == 404


def test_it_sums_mrr_at_risk_from_the_latest_finished_run_per_environment_and_suite(api):
    staging, prod = EnvironmentFactory(name="staging"), EnvironmentFactory(name="prod")
    web = SuiteFactory(name="web")
    now = timezone.now()
    RunFactory(environment=staging, suite=web, status="finished", verdict="FAIL", mrr_at_risk=900, created=now)
    latest = RunFactory(
        environment=staging,
        suite=web,
        status="finished",
        verdict="PARTIAL SUCCESS",
        mrr_at_risk=120_000,
        created=now + timedelta(minutes=1),
        finished_at=now + timedelta(minutes=2),
    )
    RunFactory(environment=staging, suite=web, created=now + timedelta(minutes=3))  # queued: not a result yet
    RunFactory(environment=prod, suite=web)  # never finished: no row
    response = api.get(f"{API}/mrr-at-risk")
    assert response.status_code == 200
    assert response.json() == [
        {
            "environment": "staging",
            "suite": "web",
            "run_id": latest.pk,
            "run_url": f"http://127.0.0.1:8000/runs/{latest.pk}/",
            "verdict": "PARTIAL SUCCESS",
            "finished_at": response.json()[0]["finished_at"],
            "mrr_at_risk": 120_000,
        }
    ]
    assert response.json()[0]["finished_at"].startswith((now + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M"))


# --- GET /suites and /suites/{name} ----------------------------------------------------------


def many_checks(suite: Suite, count: int, start: int = 0) -> None:
    category = suite.categories.first() or CategoryFactory(suite=suite, name="Imported")
    TestCase.objects.bulk_create(
        TestCase(suite=suite, category=category, node_id=f"t::{n}", name=f"t{n}", order=n)
        for n in range(start, start + count)
    )


def test_the_suite_list_gives_counts_and_no_list_of_checks(api):
    """Issue 14's rerun (F6): /suites listed every check's node id of every suite, 17 MB after
    one 500,000-case import. Its answer no longer grows with what a suite holds."""
    suite = SuiteFactory(name="ci-huge", origin=Suite.Origin.IMPORT)
    many_checks(suite, 3)
    small = api.get(f"{API}/suites")
    many_checks(suite, 2_000, start=3)
    CheckFactory(category=suite.categories.get(), node_id="gone", active=False)
    large = api.get(f"{API}/suites")
    assert large.status_code == 200
    [item] = large.json()["items"]
    assert item | {"url": ""} == {
        "name": "ci-huge",
        "title": "Ci-Huge",
        "origin": "import",
        "url": "",
        "version": None,
        "check_count": 2_003,
        "category_count": 1,
        "version_count": 0,
        "impact_tags": [],
    }
    assert len(large.content) == len(small.content) + len("2003") - len("3")


def test_the_suite_list_is_a_page_like_runs(api):
    for name in ("a-suite", "b-suite", "c-suite"):
        SuiteFactory(name=name)
    page = api.get(f"{API}/suites?limit=2&offset=1").json()
    assert (page["count"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [item["name"] for item in page["items"]] == ["b-suite", "c-suite"]
    assert page["items"][0]["version"]["number"] == 1 and page["items"][0]["version_count"] == 1
    assert api.get(f"{API}/suites?limit=501").status_code == 422


def test_one_suite_lists_its_checks_a_page_at_a_time_in_its_order(api):
    suite = SuiteFactory(name="ci-huge", origin=Suite.Origin.IMPORT)
    many_checks(suite, 1_200)
    CheckFactory(category=suite.categories.get(), node_id="gone", active=False, order=0)
    body = api.get(f"{API}/suites/ci-huge?limit=2&offset=1000").json()
    assert body["categories"] == ["Imported"] and body["check_count"] == 1_200
    first = TestCase.objects.get(suite=suite, node_id="t::1000").pk
    assert body["checks"] == {
        "count": 1_200,
        "limit": 2,
        "offset": 1_000,
        "items": [
            {"id": first, "node_id": "t::1000", "name": "t1000", "category": "Imported"},
            {"id": first + 1, "node_id": "t::1001", "name": "t1001", "category": "Imported"},
        ],
    }
    assert len(api.get(f"{API}/suites/ci-huge").json()["checks"]["items"]) == 50  # the default page
    assert api.get(f"{API}/suites/ci-huge?offset=1000000001").status_code == 422
    assert api.get(f"{API}/suites/no-such-suite").status_code == 404


# --- OpenAPI, docs and fuzzing ----------------------------------------------------------------


def test_the_openapi_schema_is_valid_openapi_3(api):
    import schemathesis

    response = api.get(f"{API}/openapi.json")
    assert response.status_code == 200
    raw = response.json()
    assert raw["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(raw).validate()  # raises on any violation of the OpenAPI meta-schema
    assert set(raw["paths"]) == {
        f"{API}/runs",
        f"{API}/runs/{{run_id}}",
        f"{API}/runs/{{run_id}}/rerun",
        f"{API}/runs/import",
        f"{API}/test-cases/{{test_case_id}}/history",
        f"{API}/mrr-at-risk",
        f"{API}/suites",
        f"{API}/suites/{{name}}",
    }
    assert raw["components"]["securitySchemes"]["TokenAuth"] == {"type": "http", "scheme": "bearer"}


def test_the_schema_declares_the_400_that_post_runs_answers(api):
    operation = api.get(f"{API}/openapi.json").json()["paths"][f"{API}/runs"]["post"]
    assert {"202", "400", "403", "404"} <= set(operation["responses"])


def test_the_docs_page_loads_only_local_static_files(client, engineer):
    from django.contrib.staticfiles import finders

    client.force_login(engineer)
    response = client.get(f"{API}/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) + re.findall(r'<link[^>]*\bhref="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a static file of this project"
    assert "https://" not in html and "http://" not in html


def test_it_answers_no_5xx_to_schema_generated_requests(engineer):
    """Schemathesis generates requests from the schema (positive and negative) for every GET
    and for POST /runs, through the WSGI application; none may end in a server error."""
    import hypothesis
    import schemathesis
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from hypothesis import HealthCheck, Phase
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    from dashboard.wsgi import application

    devops = user_with_role("DevOps", username="fuzzer")
    headers = {"Authorization": bearer(devops)["HTTP_AUTHORIZATION"]}
    check = CheckFactory(node_id="login", category=CategoryFactory(suite=SuiteFactory(name="web")))
    ResultFactory(run=RunFactory(suite=check.suite, status="finished"), test_case=check, outcome="failed")
    EnvironmentFactory(name="ci")

    # The WSGI handler closes "old" connections around each request, which would end the test's
    # transaction; Django's own test client switches that off the same way.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", application, headers=headers)
        schema.validate()
        operations = [
            op.ok()
            for op in schema.get_all_operations()
            if op.ok().method.upper() == "GET" or (op.ok().method.upper(), op.ok().path) == ("POST", f"{API}/runs")
        ]
        assert len(operations) == 7
        for operation in operations:
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE, headers=headers),
                operation.as_strategy(GenerationMode.NEGATIVE, headers=headers),
            )

            @hypothesis.settings(
                max_examples=50,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=cases)
            def no_server_error(case):
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error])

            no_server_error()
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
