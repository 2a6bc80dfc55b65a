"""The API gives each run's standing (runs.analysis.standing) as the pages read it: a run that
reached nothing has its revenue not assessed (null), a pass with mock indicators reads
"mocked?", and an import's realness is not assessed."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs import tokens
from runs.importers.service import import_results
from runs.models import Result, Run, RunStatus, Verdict
from tests.factories import (
    CategoryFactory,
    EnvironmentFactory,
    ImpactTagFactory,
    ResultFactory,
    RunFactory,
    SuiteFactory,
    UserFactory,
)
from tests.factories import TestCaseFactory as CheckFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"
SUREFIRE = Path(__file__).parent / "fixtures" / "junit" / "surefire.xml"
PASSED, FAILED = Result.Outcome.PASSED, Result.Outcome.FAILED


@pytest.fixture
def api() -> Client:
    user = UserFactory(username="manager", password=None)
    user.groups.add(Group.objects.get_or_create(name="Manager")[0])
    _, plain = tokens.create_token(user, "tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plain}")


@pytest.fixture
def finish():
    """finish(env, outcome, failure_class, **fields): a finished full run of a suite of two
    checks that carry $200,000 of MRR, both ending ``outcome``."""
    suite = SuiteFactory(name="golden")
    category = CategoryFactory(suite=suite, name="Priority 1")
    chat = ImpactTagFactory(suite=suite, name="Chat", mrr=200_000)
    checks = [CheckFactory(category=category, node_id=node) for node in ("send", "socket")]
    for check in checks:
        check.impact_tags.set([chat])

    def make(env: str, outcome: str, failure_class: str = "", **fields) -> Run:
        run = RunFactory(
            suite=suite,
            environment=EnvironmentFactory(name=env, base_url=f"http://{env}.example.com"),
            status=RunStatus.FINISHED,
            total=2,
            passed=2 if outcome == PASSED else 0,
            failed=0 if outcome == PASSED else 2,
            **fields,
        )
        for check in checks:
            ResultFactory(run=run, test_case=check, outcome=outcome, failure_class=failure_class)
        return run

    return make


def test_a_run_that_reached_nothing_has_its_revenue_not_assessed_in_the_run_and_the_list(api, finish):
    typo = finish("typo", FAILED, "connection-refused", verdict=Verdict.FAIL, mrr_at_risk=200_000)
    unreachable = "could not reach http://typo.example.com — configuration or outage, revenue not assessed"
    data = api.get(f"{API}/runs/{typo.pk}").json()
    assert data["mrr_at_risk"] is None
    assert data["standing"] == {
        "key": "unreachable",
        "label": "COULD NOT REACH",
        "reached": False,
        "realness": "not assessed",  # no realness score stored with this run
        "notes": [unreachable],
    }
    (item,) = api.get(f"{API}/runs").json()["items"]
    assert (item["mrr_at_risk"], item["standing"]) == (None, data["standing"])


def test_the_run_list_gives_each_runs_standing_in_one_query_for_them_all(api, finish):
    broken = finish("staging", FAILED, "ws-closed-1000-after-send", verdict=Verdict.FAIL, mrr_at_risk=200_000)
    mocked = finish("mocked", PASSED, verdict=Verdict.PASS, mock_count=8, realness_score=0.3)
    clean = finish("production", PASSED, verdict=Verdict.PASS, realness_score=0.9)
    typo = finish("typo", FAILED, "dns-failure", verdict=Verdict.FAIL, mrr_at_risk=200_000)
    queued = RunFactory(suite=clean.suite, environment=clean.environment, status=RunStatus.QUEUED)
    with CaptureQueriesContext(connection) as queries:
        items = {item["id"]: item for item in api.get(f"{API}/runs").json()["items"]}
    results_read = [query for query in queries if '"runs_result"' in query["sql"]]
    assert len(results_read) == 1  # only the runs in which no check passed
    assert {pk: (item["standing"] or {}).get("key") for pk, item in items.items()} == {
        broken.pk: "fail",
        mocked.pk: "pass-mocked",
        clean.pk: "pass",
        typo.pk: "unreachable",
        queued.pk: None,
    }
    assert items[mocked.pk]["standing"]["label"] == "PASS · mocked?"
    assert items[mocked.pk]["standing"]["notes"] == ["8 mock indicators"]
    assert {pk: item["mrr_at_risk"] for pk, item in items.items()} == {
        broken.pk: 200_000,
        mocked.pk: 0,
        clean.pk: 0,
        typo.pk: None,
        queued.pk: 0,
    }


def test_an_imported_run_has_realness_not_assessed(api):
    with SUREFIRE.open("rb") as junit:
        imported = import_results(junit, suite_name="unit-tests", environment_name="ci")
    data = api.get(f"{API}/runs/{imported.pk}").json()
    assert data["realness"]["verdict"] == "not assessed"
    assert (data["standing"]["realness"], data["standing"]["reached"]) == ("not assessed", True)
    assert "mocked?" not in data["standing"]["label"]
    (item,) = api.get(f"{API}/runs", {"suite": "unit-tests"}).json()["items"]
    assert item["standing"] == data["standing"] and item["mrr_at_risk"] == imported.mrr_at_risk
