"""The trends and business pages: the data behind their charts, the pages, their query counts."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Measurement, Result, Run, RunStatus, Verdict
from runs.trends import (
    TrendFilter,
    business_data,
    category_heatmap,
    finished_runs,
    metric_series,
    mock_series,
    pass_rate_series,
    recent_runs_by_pair,
    run_time,
)
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

PASSED, FAILED, SKIPPED = Result.Outcome.PASSED, Result.Outcome.FAILED, Result.Outcome.SKIPPED


@pytest.fixture
def suite(db):
    """golden: "Priority" (order 0) with checks send (Chat) and login (Auth),
    "Connectivity" (order 1) with socket (Chat, Events)."""
    suite = SuiteFactory(name="golden", title="Golden")
    # Created in reverse order: the suite's order, not the id, must decide the heatmap's rows.
    connectivity = CategoryFactory(suite=suite, name="Connectivity", order=1)
    priority = CategoryFactory(suite=suite, name="Priority", order=0)
    chat = ImpactTagFactory(suite=suite, name="Chat", mrr=200_000)
    auth = ImpactTagFactory(suite=suite, name="Auth", mrr=60_000)
    events = ImpactTagFactory(suite=suite, name="Events", mrr=80_000)
    checks = {
        "send": CheckFactory(category=priority, name="Message Send", node_id="send", order=0),
        "login": CheckFactory(category=priority, name="Login", node_id="login", order=1),
        "socket": CheckFactory(category=connectivity, name="Socket", node_id="socket", order=2),
    }
    checks["send"].impact_tags.set([chat])
    checks["login"].impact_tags.set([auth])
    checks["socket"].impact_tags.set([chat, events])
    suite.checks = checks
    return suite


def make_run(suite, env: str, ago: timedelta, outcomes: dict[str, str], *, status=RunStatus.FINISHED, **fields) -> Run:
    """A run of ``suite`` on ``env`` created ``ago`` before now, with one result per outcome."""
    passed = sum(1 for o in outcomes.values() if o == PASSED)
    failing = sum(1 for o in outcomes.values() if o == FAILED)
    fields.setdefault("verdict", Verdict.PASS if not failing else Verdict.PARTIAL)
    run = RunFactory(
        suite=suite,
        environment=EnvironmentFactory(name=env),
        status=status,
        created=timezone.now() - ago,
        total=len(outcomes),
        passed=passed,
        failed=failing,
        skipped=len(outcomes) - passed - failing,
        **fields,
    )
    for node_id, outcome in outcomes.items():
        ResultFactory(run=run, test_case=suite.checks[node_id], outcome=outcome)
    return run


ALL_PASS = {"send": PASSED, "login": PASSED, "socket": PASSED}
CHAT_FAILS = {"send": FAILED, "login": PASSED, "socket": FAILED}


def measure(run: Run, key: str, p50, p95, *, target: float = 100, name: str = "API Response Time") -> None:
    Measurement.objects.create(run=run, key=key, name=name, target=target, p50=p50, p95=p95)


# --- the data functions ---------------------------------------------------------------------


def test_it_returns_the_pass_rate_per_environment_oldest_first(suite):
    first = make_run(suite, "staging", timedelta(days=3), ALL_PASS)
    second = make_run(suite, "staging", timedelta(days=2), CHAT_FAILS, verdict=Verdict.FAIL)
    prod = make_run(suite, "production", timedelta(days=1), {"send": PASSED, "login": FAILED, "socket": SKIPPED})
    make_run(suite, "staging", timedelta(hours=1), ALL_PASS, status=RunStatus.RUNNING)
    make_run(suite, "staging", timedelta(hours=2), ALL_PASS, status=RunStatus.ERROR)
    make_run(suite, "staging", timedelta(days=31), ALL_PASS)  # outside the default 30 days

    runs = finished_runs(TrendFilter())
    assert [r.pk for r in runs] == [first.pk, second.pk, prod.pk]
    production, staging = pass_rate_series(runs)
    assert staging["environment"] == "staging"
    assert staging["run"] == [first.pk, second.pk]
    assert staging["y"] == [100.0, 33.3]
    assert staging["passed"] == [3, 1] and staging["total"] == [3, 3]
    assert staging["verdict"] == ["PASS", "FAIL"]
    assert staging["x"] == [run_time(first), run_time(second)]
    assert staging["url"] == [f"/runs/{first.pk}/", f"/runs/{second.pk}/"]
    assert production["y"] == [33.3]
    assert {production["slot"], staging["slot"]} == {0, 1}


def test_it_filters_runs_by_environment_suite_window_and_count(suite):
    other = SuiteFactory(name="other")
    old = make_run(suite, "staging", timedelta(days=20), ALL_PASS)
    recent = [make_run(suite, "staging", timedelta(days=d), ALL_PASS) for d in (3, 2, 1)]
    make_run(suite, "production", timedelta(days=1), ALL_PASS)
    RunFactory(suite=other, environment=EnvironmentFactory(name="staging"), status=RunStatus.FINISHED)

    assert finished_runs(TrendFilter(environment="staging", suite="golden", days=30)) == [old, *recent]
    assert finished_runs(TrendFilter(environment="staging", suite="golden", days=7)) == recent
    assert finished_runs(TrendFilter(environment="staging", suite="golden", limit=2)) == recent[1:]
    assert {r.suite.name for r in finished_runs(TrendFilter(suite="other"))} == {"other"}


def test_it_fills_the_heatmap_with_the_share_of_each_categorys_checks_that_passed(suite):
    first = make_run(suite, "staging", timedelta(days=2), {"send": PASSED, "login": FAILED, "socket": PASSED})
    second = make_run(suite, "staging", timedelta(days=1), {"send": SKIPPED, "login": PASSED})

    heatmap = category_heatmap(finished_runs(TrendFilter()))
    assert heatmap["categories"] == ["Priority", "Connectivity"]
    assert heatmap["x"] == [f"#{first.pk}", f"#{second.pk}"]
    assert heatmap["z"] == [[0.5, 1.0], [1.0, None]]
    assert heatmap["text"][0][0].endswith("Priority: 1 of 2 checks passed")
    assert heatmap["text"][0][1].endswith("Priority: 1 of 1 checks passed (1 skipped)")
    assert heatmap["text"][1][1].endswith("Connectivity: not run")
    assert heatmap["url"] == [f"/runs/{first.pk}/", f"/runs/{second.pk}/"]


def test_it_draws_the_most_failing_categories_and_sums_up_the_rest_in_one_row(suite):
    make_run(suite, "staging", timedelta(days=2), {"send": PASSED, "login": PASSED, "socket": FAILED})
    make_run(suite, "staging", timedelta(days=1), {"send": FAILED, "login": SKIPPED, "socket": FAILED})

    heatmap = category_heatmap(finished_runs(TrendFilter()), rows=1)
    assert heatmap["categories"] == ["Connectivity", "1 more category"]
    assert heatmap["more"] == 1
    assert heatmap["z"] == [[0.0, 0.0], [1.0, 0.0]]
    assert heatmap["text"][1][1].endswith("1 more category: 0 of 1 checks passed (1 skipped)")
    assert category_heatmap(finished_runs(TrendFilter()), rows=2)["categories"] == ["Priority", "Connectivity"]


def test_the_heatmap_reads_the_runs_results_once_even_when_it_sums_categories_up(suite):
    """Two imports of 100,000 results each made the trends page take seconds: the ranking,
    the drawn cells, the summed-up row and the count of categories each read the results."""
    make_run(suite, "staging", timedelta(days=2), {"send": PASSED, "login": PASSED, "socket": FAILED})
    make_run(suite, "production", timedelta(days=1), {"send": FAILED, "login": SKIPPED, "socket": FAILED})
    runs = finished_runs(TrendFilter())
    with CaptureQueriesContext(connection) as queries:
        heatmap = category_heatmap(runs, rows=1)
    assert (heatmap["categories"], heatmap["more"]) == (["Connectivity", "1 more category"], 1)
    assert heatmap["z"] == [[0.0, 0.0], [1.0, 0.0]]
    assert [query["sql"].count('"runs_result"') > 0 for query in queries] == [True, False]


def test_it_shows_only_the_newest_50_runs_in_the_heatmap(suite):
    runs = [make_run(suite, "staging", timedelta(hours=60 - i), {"send": PASSED}) for i in range(55)]
    heatmap = category_heatmap(finished_runs(TrendFilter()))
    assert heatmap["x"] == [f"#{r.pk}" for r in runs[5:]]
    assert heatmap["categories"] == ["Priority"]


def test_it_draws_each_metric_with_gaps_where_it_was_not_measured(suite):
    measured = make_run(suite, "staging", timedelta(days=3), ALL_PASS)
    not_measured = make_run(suite, "staging", timedelta(days=2), ALL_PASS)
    no_row = make_run(suite, "staging", timedelta(days=1), ALL_PASS)
    latest = make_run(suite, "staging", timedelta(hours=1), ALL_PASS)
    measure(measured, "api_response", 42.0, 80.5, target=100)
    measure(not_measured, "api_response", None, None, target=100)
    measure(latest, "api_response", 61.0, 99.0, target=120, name="API response time")
    measure(measured, "ws_latency", 12.0, 20.0, target=50, name="WebSocket Latency")

    api, ws = metric_series(finished_runs(TrendFilter()))
    assert api["key"] == "api_response"
    assert api["name"] == "API response time"  # from the newest row
    assert api["unit"] == "ms" and api["comparison"] == "<" and api["target"] == 120
    (staging,) = api["series"]
    assert staging["run"] == [measured.pk, not_measured.pk, no_row.pk, latest.pk]
    assert staging["p50"] == [42.0, None, None, 61.0]
    assert staging["p95"] == [80.5, None, None, 99.0]
    assert api["target_line"] == {
        "x": [run_time(measured), run_time(not_measured), run_time(latest)],
        "y": [100, 100, 120],
    }
    assert ws["key"] == "ws_latency" and ws["series"][0]["p50"] == [12.0, None, None, None]


def test_it_reports_mock_indicators_and_realness_per_run(suite):
    make_run(suite, "staging", timedelta(days=2), ALL_PASS, mock_count=4, realness_score=0.25)
    make_run(suite, "staging", timedelta(days=1), ALL_PASS, mock_count=0, realness_score=None)
    (staging,) = mock_series(finished_runs(TrendFilter()))
    assert staging["mock_count"] == [4, 0]
    assert staging["realness"] == [25.0, None]


def test_it_takes_mrr_at_risk_now_from_each_suites_latest_finished_run_per_environment(suite):
    make_run(suite, "staging", timedelta(days=2), ALL_PASS, mrr_at_risk=0)
    latest = make_run(suite, "staging", timedelta(days=1), CHAT_FAILS, mrr_at_risk=280_000)
    make_run(suite, "staging", timedelta(hours=1), ALL_PASS, status=RunStatus.RUNNING)
    prod = make_run(suite, "production", timedelta(days=1), ALL_PASS, mrr_at_risk=0)

    data = business_data()
    staging, production = data["risks"]  # failing first
    assert [s.run for s in staging.suites] == [latest] and staging.mrr_at_risk == 280_000
    assert [s.run for s in production.suites] == [prod] and production.at_risk == []
    assert production.mrr_at_risk == 0
    assert staging.tag_names == ["Chat", "Events"]
    assert staging.at_risk[0].failing_checks == ("Message Send", "Socket")
    assert staging.status == {
        (suite.pk, "Chat"): "at risk",
        (suite.pk, "Events"): "at risk",
        (suite.pk, "Auth"): "working",
    }
    assert [row["tag"].name for row in data["tags"]] == ["Chat", "Events", "Auth"]
    assert data["tags"][0]["environments"] == [("staging", "at risk"), ("production", "working")]
    assert data["mrr"][1]["y"] == [0, 280_000]
    assert data["headline"] == "$280,000 monthly revenue at risk across 1 of 2 environments"


def test_it_dates_a_tag_at_risk_from_the_start_of_its_current_streak(suite):
    make_run(suite, "staging", timedelta(days=5), CHAT_FAILS)
    make_run(suite, "staging", timedelta(days=4), ALL_PASS)  # breaks the streak
    streak_start = make_run(suite, "staging", timedelta(days=3), {"send": FAILED, "login": PASSED})
    make_run(suite, "staging", timedelta(days=2), {"login": FAILED})  # did not check Chat: no break
    make_run(suite, "staging", timedelta(days=1), {"socket": FAILED, "login": PASSED})
    make_run(suite, "production", timedelta(days=1), CHAT_FAILS)  # another environment

    (_, staging) = business_data()["risks"]
    chat, events = staging.at_risk
    assert chat.name == "Chat" and chat.since == streak_start and not chat.since_at_least
    assert events.name == "Events" and events.since == staging.suites[0].run  # failed only in the latest run


# --- the pages ------------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, db):
    client.force_login(UserFactory(username="manager", role="Manager"))
    return client


SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')


@pytest.mark.parametrize("path", ["/trends/", "/business/"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize("path", ["/trends/", "/business/"])
def test_it_shows_what_to_do_when_there_are_no_runs(signed_in, path):
    response = signed_in.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert "manage.py run_suite" in body
    assert "plotly.min.js" not in body and 'type="application/json"' not in body


def test_it_draws_the_trends_charts_from_embedded_json_with_the_local_plotly(signed_in, suite):
    run = make_run(suite, "staging", timedelta(days=1), CHAT_FAILS)
    measure(run, "api_response", 42.0, 80.5)
    body = signed_in.get("/trends/").content.decode()
    for data_id in ("pass-rate-data", "heatmap-data", "metrics-data", "mock-data"):
        assert f'<script id="{data_id}" type="application/json">' in body
    pass_rate = json.loads(re.search(r'<script id="pass-rate-data"[^>]*>(.*?)</script>', body, re.S).group(1))
    assert pass_rate[0]["run"] == [run.pk]
    sources = SCRIPT_SRC.findall(body)
    assert "/static/vendor/plotly.min.js" in sources and "/static/goldpath-charts.js" in sources
    assert not [s for s in sources if "cdn" in s.lower() or "://" in s]
    assert "<script>" not in body  # no inline script: a CSP may forbid it


def test_it_keeps_the_filters_and_says_when_none_of_the_runs_match(signed_in, suite):
    make_run(suite, "staging", timedelta(days=10), ALL_PASS)
    body = signed_in.get("/trends/?environment=staging&suite=golden&days=7").content.decode()
    assert "No finished runs match these filters" in body
    assert '<option value="7" selected>' in body
    assert '<option value="staging" selected>' in body
    assert "pass-rate-data" in signed_in.get("/trends/?days=30").content.decode()
    assert "pass-rate-data" in signed_in.get("/trends/?days=bogus&environment=nowhere").content.decode()


def test_it_tells_a_manager_what_revenue_is_at_risk_where_and_since_when(signed_in, suite):
    since = make_run(suite, "staging", timedelta(days=2), CHAT_FAILS, mrr_at_risk=280_000)
    latest = make_run(suite, "staging", timedelta(days=1), CHAT_FAILS, mrr_at_risk=280_000)
    make_run(suite, "production", timedelta(days=1), ALL_PASS, mrr_at_risk=0)
    body = signed_in.get("/business/").content.decode()
    assert (
        "$280,000 of monthly revenue depends on features that are failing on staging right now: "
        "<strong>Chat, Events</strong>"
    ) in body
    assert "Nothing is failing on production" in body
    assert f'href="/runs/{latest.pk}/"' in body and "Golden as of " in body
    assert f"test run #{since.pk}</a>" in body  # "broken since"
    assert '<script id="mrr-data" type="application/json">' in body
    sources = SCRIPT_SRC.findall(body)
    assert "/static/vendor/plotly.min.js" in sources
    assert not [s for s in sources if "cdn" in s.lower() or "://" in s]


# --- query counts ---------------------------------------------------------------------------

PAGE_QUERY_BOUND = 12


def fill(suite, runs: int, start: int = 0) -> None:
    for i in range(start, start + runs):
        env = ("staging", "production")[i % 2]
        run = make_run(suite, env, timedelta(hours=200 - i), CHAT_FAILS if i % 3 else ALL_PASS, mock_count=i % 4)
        measure(run, "api_response", 40.0 + i, 90.0 + i)
        measure(run, "ws_latency", None, None, target=50, name="WebSocket Latency")


@pytest.mark.parametrize("path", ["/trends/", "/business/"])
def test_it_reads_a_page_in_the_same_number_of_queries_for_5_or_50_runs(
    signed_in, suite, path, django_assert_max_num_queries
):
    fill(suite, 5)
    with django_assert_max_num_queries(PAGE_QUERY_BOUND), CaptureQueriesContext(connection) as few:
        assert signed_in.get(path).status_code == 200
    fill(suite, 45, start=5)
    with django_assert_max_num_queries(PAGE_QUERY_BOUND), CaptureQueriesContext(connection) as many:
        response = signed_in.get(path)
    assert response.status_code == 200 and Run.objects.count() == 50
    assert len(many) == len(few)


NOTHING_ANSWERED = {"send": FAILED, "login": FAILED, "socket": FAILED}
BUSINESS_QUERY_BOUND = 13  # the login's 3, and 10 when runs that reached nothing are among the latest and older ones


def fill_with_outages(suite, runs: int, start: int = 0) -> None:
    """Runs on two environments, one in four reaching nothing (every check refused), the
    latest two among them."""
    for i in range(start, start + runs):
        outage = i % 4 == 0 or i >= start + runs - 2
        run = make_run(
            suite,
            ("staging", "production")[i % 2],
            timedelta(hours=200 - i),
            NOTHING_ANSWERED if outage else CHAT_FAILS,
        )
        if outage:
            run.results.update(failure_class="connection-refused")


def test_the_business_page_reads_runs_that_reached_nothing_in_a_bounded_number_of_queries(
    signed_in, suite, django_assert_max_num_queries
):
    fill_with_outages(suite, 6)
    with django_assert_max_num_queries(BUSINESS_QUERY_BOUND), CaptureQueriesContext(connection) as few:
        body = signed_in.get("/business/").content.decode()
    assert "2 environments could not be reached: revenue not assessed" in body
    fill_with_outages(suite, 40, start=6)
    with django_assert_max_num_queries(BUSINESS_QUERY_BOUND), CaptureQueriesContext(connection) as many:
        assert signed_in.get("/business/").status_code == 200
    assert len(many) == len(few)


@pytest.mark.django_db
def test_a_rarely_run_environment_keeps_its_latest_run_on_the_business_page():
    quiet = EnvironmentFactory(name="quiet")
    busy = EnvironmentFactory(name="busy")
    suite = SuiteFactory(name="gp")
    ImpactTagFactory(suite=suite, name="Chat")
    RunFactory(environment=quiet, suite=suite, status=RunStatus.FINISHED, verdict="FAIL")  # long ago
    for _ in range(30):
        RunFactory(environment=busy, suite=suite, status=RunStatus.FINISHED, verdict="PASS")
    recent = recent_runs_by_pair({(busy.pk, suite.pk), (quiet.pk, suite.pk)}, per_pair=2)  # ranks the newest 12
    assert list(recent) == [(busy.pk, suite.pk)] and len(recent[(busy.pk, suite.pk)]) == 2
    busy_risk, quiet_risk = business_data()["risks"]
    assert [s.run.verdict for s in quiet_risk.suites] == ["FAIL"]  # its state's run heads its list
    assert len(busy_risk.suites) == 1
