"""One state per environment × suite (runs.state), read alike by Business, Overview, the API,
badges and the run page: an import of unit tests never hides the golden path's risk, a run
that could not reach its service is not counted as broken, and a mocked pass never looks
like a clean one."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from runs.exporters.formats import conclusion
from runs.importers.service import import_results
from runs.models import Badge, Result, Run, RunStatus, Verdict
from runs.reporting import build_report
from runs.services import create_run
from runs.state import latest_states
from runs.trends import business_data
from tests.conftest import wait_for
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
from tests.webserver import free_port

pytestmark = pytest.mark.django_db

SUREFIRE = Path(__file__).parent / "fixtures" / "junit" / "surefire.xml"
PASSED, FAILED = Result.Outcome.PASSED, Result.Outcome.FAILED


@pytest.fixture
def golden():
    """golden: send (Chat, $200,000), login (Auth, $60,000), socket (Chat and Events, $80,000)."""
    suite = SuiteFactory(name="golden", title="Golden Path")
    category = CategoryFactory(suite=suite, name="Priority 1")
    chat = ImpactTagFactory(suite=suite, name="Chat", mrr=200_000)
    auth = ImpactTagFactory(suite=suite, name="Auth", mrr=60_000)
    events = ImpactTagFactory(suite=suite, name="Events", mrr=80_000)
    checks = {
        node: CheckFactory(category=category, name=node.title(), node_id=node) for node in ("send", "login", "socket")
    }
    checks["send"].impact_tags.set([chat])
    checks["login"].impact_tags.set([auth])
    checks["socket"].impact_tags.set([chat, events])
    suite.checks = checks
    return suite


def finished(suite, env: str, results: dict[str, tuple[str, str]], *, ago=timedelta(hours=1), **fields) -> Run:
    """A finished full run of ``suite`` on ``env`` with a result per check: (outcome, failure class)."""
    passed = sum(1 for outcome, _ in results.values() if outcome == PASSED)
    run = RunFactory(
        suite=suite,
        environment=EnvironmentFactory(name=env),
        status=RunStatus.FINISHED,
        created=timezone.now() - ago,
        finished_at=timezone.now() - ago,
        total=len(results),
        passed=passed,
        failed=len(results) - passed,
        **fields,
    )
    for node, (outcome, failure_class) in results.items():
        ResultFactory(run=run, test_case=suite.checks[node], outcome=outcome, failure_class=failure_class)
    return run


CHAT_FAILS = {"send": (FAILED, "ws-closed-1000-after-send"), "login": (PASSED, ""), "socket": (FAILED, "frame-missing")}
ALL_PASS = {"send": (PASSED, ""), "login": (PASSED, ""), "socket": (PASSED, "")}
REFUSED = {node: (FAILED, "connection-refused") for node in ("send", "login", "socket")}


def text(html: bytes) -> str:
    """A page's words, tags dropped and spaces squeezed, for sentences split by markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def run_header(page: str) -> str:
    return page[page.index('<header class="report-head">') : page.index("</header>", page.index("report-head"))]


def api_mrr(client) -> dict[tuple[str, str], int | None]:
    return {(row["environment"], row["suite"]): row["mrr_at_risk"] for row in client.get("/api/v1/mrr-at-risk").json()}


def test_a_junit_import_into_an_environment_does_not_hide_the_golden_paths_risk(manager, golden):
    """The issue's case: Business showed "preprod $0 — checked no revenue-carrying feature"
    after the import, while Overview still showed the golden path's risk there."""
    failing = finished(golden, "preprod", CHAT_FAILS, verdict=Verdict.PARTIAL, mrr_at_risk=280_000)
    with SUREFIRE.open("rb") as junit:
        imported = import_results(junit, suite_name="unit-tests", environment_name="preprod")
    assert imported.environment == failing.environment and imported.pk > failing.pk

    business = text(manager.get("/business/").content)
    assert "$280,000 monthly revenue at risk across 1 of 1 environment." in business
    assert "$280,000 of monthly revenue depends on features that are failing on preprod right now: Chat, Events" in (
        business
    )
    assert "checked no revenue-carrying feature" not in business
    assert f"see that test run (#{failing.pk})" in business and f"(#{imported.pk})" not in business

    overview = manager.get("/").content.decode()
    golden_row = next(row for row in overview.split("<tr>") if "Golden Path" in row)
    assert "$280,000" in golden_row
    assert api_mrr(manager) == {("preprod", "golden"): 280_000, ("preprod", "unit-tests"): 0}
    (preprod,) = business_data()["risks"]
    assert preprod.mrr_at_risk == sum(api_mrr(manager).values()) == 280_000


def test_an_environments_suites_add_up_and_each_keeps_its_own_broken_since(manager, golden):
    """Two revenue-carrying suites on one environment: each from its own latest run."""
    billing = SuiteFactory(name="billing", title="Billing")
    invoices = ImpactTagFactory(suite=billing, name="Invoices", mrr=90_000)
    billing.checks = {"invoice": CheckFactory(category=CategoryFactory(suite=billing), node_id="invoice")}
    billing.checks["invoice"].impact_tags.set([invoices])
    since = finished(billing, "staging", {"invoice": (FAILED, "http-5xx")}, ago=timedelta(days=3), mrr_at_risk=90_000)
    finished(billing, "staging", {"invoice": (FAILED, "http-5xx")}, ago=timedelta(days=1), mrr_at_risk=90_000)
    finished(golden, "staging", CHAT_FAILS, ago=timedelta(hours=2), mrr_at_risk=280_000)

    (staging,) = business_data()["risks"]
    assert staging.mrr_at_risk == 370_000
    assert [(tag.name, tag.since.suite.name) for tag in staging.at_risk] == [
        ("Invoices", "billing"),
        ("Chat", "golden"),
        ("Events", "golden"),
    ]
    assert staging.at_risk[0].since == since
    assert "$370,000 monthly revenue at risk across 1 of 1 environment" in text(manager.get("/business/").content)


def test_a_run_that_could_not_reach_its_service_is_not_counted_as_revenue_at_risk(manager, golden):
    finished(golden, "staging", CHAT_FAILS, verdict=Verdict.PARTIAL, mrr_at_risk=280_000)
    typo = finished(golden, "typo", REFUSED, verdict=Verdict.FAIL, mrr_at_risk=340_000, base_url="http://127.0.0.1:9")
    finished(golden, "production", ALL_PASS, verdict=Verdict.PASS, realness_score=0.9)
    note = "could not reach http://127.0.0.1:9 — configuration or outage, revenue not assessed"

    business = text(manager.get("/business/").content)
    assert (
        "$280,000 monthly revenue at risk across 1 of 3 environments, and 1 environment could not be reached."
    ) in business
    assert f"Golden Path: {note[0].upper()}{note[1:]}." in business
    assert "$620,000" not in business and "$340,000" not in business
    assert [risk.environment.name for risk in business_data()["risks"]] == ["staging", "typo", "production"]

    overview = manager.get("/").content.decode()
    typo_row = next(row for row in overview.split("<tr>") if "<strong>typo</strong>" in row)
    assert "COULD NOT REACH" in typo_row and "not assessed" in typo_row and "$340,000" not in typo_row
    assert api_mrr(manager)[("typo", "golden")] is None

    page = text(manager.get(typo.get_absolute_url()).content)
    assert "Standing COULD NOT REACH" in page and "revenue not assessed" in page

    badge = Badge.objects.create(environment=typo.environment, suite=golden)
    svg = manager.get(f"/badge/{badge.key}.svg").content.decode()
    assert "could not reach" in svg and "#5f6b7a" in svg


def test_a_service_that_answered_some_checks_was_reached(golden):
    half = {"send": (FAILED, "connection-refused"), "login": (PASSED, ""), "socket": (FAILED, "connection-refused")}
    finished(golden, "staging", half, mrr_at_risk=280_000)
    (state,) = latest_states().values()
    assert state.standing.reached and state.mrr_at_risk == 280_000


def test_a_mocked_pass_never_looks_like_a_clean_pass(manager, golden):
    mocked = finished(golden, "mocked", ALL_PASS, verdict=Verdict.PASS, mock_count=8, realness_score=0.3)

    overview = manager.get("/").content.decode()
    assert "PASS · mocked?" in overview
    assert f'href="/runs/{mocked.pk}/#realness">8 mock indicators</a>' in overview
    assert "verdict-pass-mocked" in overview and 'class="verdict verdict-pass"' not in overview

    business = manager.get("/business/").content.decode()
    assert "PASS · mocked?" in business and f'href="/runs/{mocked.pk}/#realness"' in business
    assert 'class="risk-card risk-doubt"' in business and "risk-ok" not in business
    assert "Golden Path: nothing failed, but the latest test run may not have touched the real service (8 mock" in (
        business
    )
    assert "Nothing is failing on mocked" not in business and "Working · mocked?" in business

    page = manager.get(mocked.get_absolute_url()).content.decode()
    head = run_header(page)
    assert "PASS · mocked?" in head and f'href="/runs/{mocked.pk}/#realness"' in head
    assert 'id="realness"' in page
    assert 'class="verdict verdict-pass"' not in page

    badge = Badge.objects.create(environment=mocked.environment, suite=golden)
    svg = manager.get(f"/badge/{badge.key}.svg").content.decode()
    assert "PASS · mocked? 100%" in svg and "#946200" in svg and "#2e7d32" not in svg


def test_an_imported_run_says_realness_was_not_assessed_instead_of_accusing_it(manager):
    with SUREFIRE.open("rb") as junit:
        imported = import_results(junit, suite_name="unit-tests", environment_name="ci")
    note = "realness: not assessed (imported results)"
    page = manager.get(imported.get_absolute_url()).content.decode()
    assert note in run_header(page)
    assert "mocked?" not in page and "mock indicator" not in run_header(page)
    assert note in manager.get("/").content.decode()


def test_a_clean_real_pass_stays_green_everywhere(manager, golden):
    clean = finished(golden, "production", ALL_PASS, verdict=Verdict.PASS, realness_score=0.9)
    overview = manager.get("/").content.decode()
    assert 'class="verdict verdict-pass"' in overview and "verdict-pass-mocked" not in overview
    page = manager.get(clean.get_absolute_url()).content.decode()
    assert "mocked?" not in page and "COULD NOT REACH" not in page and "mock indicator" not in run_header(page)
    assert "No revenue at risk on any environment." in text(manager.get("/business/").content)


def test_exports_conclude_alike_could_not_reach_and_not_assessed(golden):
    typo = finished(golden, "typo", REFUSED, verdict=Verdict.FAIL, mrr_at_risk=340_000, base_url="http://127.0.0.1:9")
    said = conclusion(build_report(typo))
    assert "The probes could not reach http://127.0.0.1:9 — configuration or outage, revenue not assessed." in said
    assert "$340,000" not in said
    with SUREFIRE.open("rb") as junit:
        imported = import_results(junit, suite_name="unit-tests", environment_name="ci")
    said = conclusion(build_report(imported))
    imported_said = "Realness: not assessed (imported results — they never touched the network from Goldpath)."
    assert imported_said in said and "Caution" not in said
    mocked = finished(golden, "mocked", ALL_PASS, verdict=Verdict.PASS, mock_count=8, realness_score=0.3)
    assert "Caution: the evidence does not show real network traffic" in conclusion(build_report(mocked))


# --- real runs through the worker -------------------------------------------------------------

worker_db = pytest.mark.django_db(transaction=True)


@worker_db
def test_real_runs_agree_on_every_page_after_an_import_and_with_a_mistyped_url(
    celery_worker, golden_path, target_factory, environment_for, client
):
    """The golden path failing on preprod (the seed: $550,000 at risk), then a JUnit import
    into preprod, then a run on an environment whose URL points where nothing listens."""
    client.force_login(UserFactory(username="manager", role="Manager"))
    seed = wait_for(create_run(golden_path, environment_for(target_factory(["close-after-send"]), "preprod")))
    assert (seed.status, seed.mrr_at_risk) == (RunStatus.FINISHED, 550_000)
    with SUREFIRE.open("rb") as junit:
        import_results(junit, suite_name="unit-tests", environment_name="preprod")
    nowhere = f"http://127.0.0.1:{free_port()}"
    typo = wait_for(create_run(golden_path, EnvironmentFactory(name="typo", base_url=nowhere)))
    assert typo.status == RunStatus.FINISHED and typo.passed == 0
    assert set(typo.results.values_list("failure_class", flat=True)) == {"connection-refused"}

    business = text(client.get("/business/").content)
    assert (
        "$550,000 monthly revenue at risk across 1 of 2 environments, and 1 environment could not be reached."
    ) in business
    assert f"Golden path: Could not reach {nowhere} — configuration or outage, revenue not assessed." in business
    assert api_mrr(client) == {
        ("preprod", "golden-path"): 550_000,
        ("preprod", "unit-tests"): 0,
        ("typo", "golden-path"): None,
    }
    overview = client.get("/").content.decode()
    preprod_row = next(row for row in overview.split("<tr>") if "<strong>preprod</strong>" in row and "Golden" in row)
    assert "$550,000" in preprod_row
    assert "COULD NOT REACH" in text(client.get(typo.get_absolute_url()).content)
