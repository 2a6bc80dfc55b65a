"""The analysis of stored runs: real runs through the worker against each fault mode, and
runs built with factories for history (constant measurements, flakiness, class history)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.history import flaky_test_cases
from runs.models import Measurement, Result, Run, RunStatus
from runs.reporting import build_report, report_json
from runs.services import create_run, finish_run
from tests.conftest import wait_for
from tests.factories import CategoryFactory, EnvironmentFactory, ResultFactory, RunFactory, SuiteFactory
from tests.factories import TestCaseFactory as CheckFactory

worker_db = pytest.mark.django_db(transaction=True)

# Each fault mode of the bundled target and the failure class it must produce.
FAULT_CLASSES = {
    "ws-1011": "ws-1011-server-error",
    "events-missing": "frame-missing",
    "events-out-of-order": "frame-out-of-order",
    "slow-agent": "metric-over-target:Agent Startup Time",
    "auth-reject": "ws-handshake-rejected:403",
    "latency=150": "metric-over-target:API Response Time",
    "http-500=/api/mcp/config": "http-5xx",
    "close-after-send": "ws-closed-1000-after-send",
}
SLOW_MACHINE = "metric-over-target:"  # a loaded machine can miss a real performance target
SEED_MRR_AT_RISK = 200_000 + 150_000 + 120_000 + 80_000  # Chat, Agent Pipeline, Real-time Updates, WS Events
MESSAGE_FLOW_CHECKS = ["websocket_message_send", "agent_execution_flow", "realtime_updates"]


def failures(run: Run) -> dict[str, tuple[str, str]]:
    """Node id → (failure class, message) of each failing result."""
    rows = run.results.exclude(outcome=Result.Outcome.PASSED).values_list(
        "test_case__node_id", "failure_class", "message"
    )
    return {node: (failure_class, message) for node, failure_class, message in rows}


@pytest.fixture
def seed_run(celery_worker, golden_path, target_factory, environment_for):
    """The staging failure: the server closes the WebSocket with 1000 right after the first message."""
    run = wait_for(create_run(golden_path, environment_for(target_factory(["close-after-send"]))))
    assert run.status == RunStatus.FINISHED
    return run


# -- real runs through the worker ------------------------------------------------------


def test_every_fault_mode_has_a_class_of_its_own():
    assert len(set(FAULT_CLASSES.values())) == len(FAULT_CLASSES)


@worker_db
@pytest.mark.parametrize("mode", list(FAULT_CLASSES))
def test_it_names_the_failure_class_of_each_fault_mode(
    mode, celery_worker, golden_path_as_shipped, target_factory, environment_for
):
    run = wait_for(create_run(golden_path_as_shipped, environment_for(target_factory([mode]))))
    assert run.status == RunStatus.FINISHED, run.status_message
    seen = failures(run)
    classes = {failure_class for failure_class, _ in seen.values()}
    if not FAULT_CLASSES[mode].startswith(SLOW_MACHINE):
        classes = {c for c in classes if not c.startswith(SLOW_MACHINE)}
    assert FAULT_CLASSES[mode] in classes, seen
    # No other mode's class shows up, so the class sets of any two modes differ.
    others = set(FAULT_CLASSES.values()) - {FAULT_CLASSES[mode]}
    assert classes.isdisjoint(others), seen
    assert "unclassified" not in classes, seen


@worker_db
def test_the_seed_report_explains_the_failure_in_one_paragraph(seed_run):
    report = build_report(seed_run)
    [pattern] = report.patterns
    assert pattern.name == "ws-closed-1000-after-send"
    assert set(pattern.checks) == {"WebSocket Message Send", "Agent Execution Flow", "Real-time Updates"}
    assert "code 1000 (main cleanup)" in pattern.summary
    assert "after the client's first message" in pattern.summary
    assert "3 checks affected" in pattern.summary
    assert (pattern.first_run_id, pattern.runs_since) == (seed_run.pk, 1)


@worker_db
def test_the_seed_puts_the_revenue_of_four_capabilities_at_risk(seed_run):
    assert seed_run.mrr_at_risk == SEED_MRR_AT_RISK == 550_000
    report = build_report(seed_run)
    assert {area.name for area in report.mrr.at_risk} == {
        "Chat",
        "Agent Execution Pipeline",
        "Real-time Agent Updates",
        "WebSocket Events",
    }
    assert report.mrr.total == 550_000


@worker_db
def test_the_seed_critical_metrics_show_the_api_up_and_message_flow_down(seed_run):
    metrics = {m.name: m for m in build_report(seed_run).critical_metrics}
    assert (metrics["API Endpoint Success"].passed, metrics["API Endpoint Success"].total) == (8, 8)
    flow = metrics["WebSocket Message Flow"]
    assert (flow.passed, flow.total, flow.ok) == (0, 3, False)
    assert (metrics["WebSocket Connection"].passed, metrics["WebSocket Connection"].total) == (1, 1)


@worker_db
def test_report_json_carries_the_analysis(seed_run):
    data = report_json(build_report(seed_run))
    for key in ("verdict", "results", "patterns", "mock_indicators", "realness", "mrr_at_risk", "flaky"):
        assert key in data
    assert data["verdict"] == "PARTIAL SUCCESS"
    classes = {r["node_id"]: r["failure_class"] for r in data["results"]}
    assert {classes[node] for node in MESSAGE_FLOW_CHECKS} == {"ws-closed-1000-after-send"}
    assert {c for node, c in classes.items() if node not in MESSAGE_FLOW_CHECKS} == {None}
    assert data["patterns"][0]["name"] == "ws-closed-1000-after-send"
    assert data["mrr_at_risk"]["total"] == 550_000
    assert data["realness"]["verdict"] == "REAL"
    assert data["mock_indicators"] == {"run": [], "results": {}}
    assert data["flaky"] == []


@worker_db
def test_a_healthy_real_run_raises_no_mock_alarm(celery_worker, golden_path, target, environment_for):
    run = wait_for(create_run(golden_path, environment_for(target)))
    assert run.verdict == "PASS"
    assert run.mock_count == 0
    assert run.mock_flags == []
    assert not run.results.exclude(mock_flags=[]).exists()
    realness = build_report(run).realness
    assert (run.realness_score, realness.verdict, realness.missing) == (1.0, "REAL", [])  # every dimension seen


@worker_db
def test_a_real_rerun_of_only_the_websocket_checks_raises_no_mock_alarm(
    celery_worker, golden_path, target, environment_for
):
    checks = golden_path.test_cases.filter(node_id__in=MESSAGE_FLOW_CHECKS)
    run = wait_for(create_run(golden_path, environment_for(target), scope=Run.Scope.TEST, test_cases=checks))
    assert (run.total, run.verdict) == (3, "PASS")
    assert run.mock_flags == []  # these checks cannot show auth enforcement, so its absence is no alarm
    assert run.mock_count == 0
    assert build_report(run).realness.verdict == "REAL"


# -- runs built with factories -----------------------------------------------------------


def running(**fields) -> Run:
    return RunFactory(status=RunStatus.RUNNING, started_at=timezone.now() - timedelta(seconds=1), **fields)


@pytest.mark.django_db
def test_a_zero_second_pass_without_network_evidence_is_flagged(golden_path):
    backend_health = golden_path.test_cases.get(node_id="backend_health")
    assert backend_health.declares == "http"
    run = running(suite=golden_path)
    result = ResultFactory(run=run, test_case=backend_health, duration_s=0.0, evidence={})
    finish_run(run)
    result.refresh_from_db()
    assert result.mock_flags == ["near-zero-duration", "no-network-evidence"]
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED
    assert (run.mock_count, run.mock_flags) == (1, [])  # one result flagged, no run-level indicator
    assert report_json(build_report(run))["mock_indicators"]["results"] == {
        "backend_health": ["near-zero-duration", "no-network-evidence"]
    }


def runs_with_p50(values: list[float], key: str = "api_response") -> list[Run]:
    """Finished runs of one suite and environment, the last left running, each with ``key`` at its p50."""
    suite, environment = SuiteFactory(), EnvironmentFactory()
    runs = [RunFactory(suite=suite, environment=environment, status=RunStatus.FINISHED) for _ in values[:-1]]
    runs.append(running(suite=suite, environment=environment))
    for run, p50 in zip(runs, values, strict=True):
        Measurement.objects.create(run=run, key=key, name="API Response Time", target=100, p50=p50, p95=p50 * 1.5)
    return runs


@pytest.mark.django_db
def test_a_measurement_identical_in_three_runs_is_flagged_as_constant():
    *_, latest = runs_with_p50([42.0, 42.0, 42.0])
    finish_run(latest)
    latest.refresh_from_db()
    assert latest.mock_flags == [{"indicator": "constant-across-runs", "metric": "api_response"}]
    assert latest.mock_count == 1  # that one indicator: the run has no results to flag


@pytest.mark.django_db
def test_a_measurement_that_changed_in_one_of_three_runs_is_not_flagged():
    *_, latest = runs_with_p50([42.0, 41.7, 42.0])
    finish_run(latest)
    latest.refresh_from_db()
    assert not [flag for flag in latest.mock_flags if flag["indicator"] == "constant-across-runs"]


@pytest.mark.django_db
def test_constant_measurements_are_compared_within_one_environment_only():
    first, second, latest = runs_with_p50([42.0, 42.0, 42.0])
    Run.objects.filter(pk=second.pk).update(environment=EnvironmentFactory())
    finish_run(latest)
    latest.refresh_from_db()
    assert latest.mock_flags == []


def finished_runs(n: int):
    suite, environment = SuiteFactory(), EnvironmentFactory()
    category = CategoryFactory(suite=suite)
    return (
        suite,
        environment,
        category,
        [RunFactory(suite=suite, environment=environment, status=RunStatus.FINISHED) for _ in range(n)],
    )


@pytest.mark.django_db
def test_only_the_test_that_alternates_is_flaky():
    _, _, category, runs = finished_runs(6)
    flipping = CheckFactory(category=category, name="Real-time Updates")
    broken = CheckFactory(category=category, name="Agent Execution Flow")
    steady = CheckFactory(category=category, name="Backend Health Check")
    for i, run in enumerate(runs):
        ResultFactory(run=run, test_case=flipping, outcome="passed" if i % 2 else "failed")
        ResultFactory(run=run, test_case=broken, outcome="failed")
        ResultFactory(run=run, test_case=steady, outcome="passed")
    assert flaky_test_cases(runs[-1]) == {flipping.pk: 1.0}
    assert report_json(build_report(runs[-1]))["flaky"] == [{"name": "Real-time Updates", "flip_rate": 1.0}]


@pytest.mark.django_db
def test_a_failure_class_seen_before_points_at_the_run_that_first_had_it():
    _, _, category, (first, second) = finished_runs(2)
    check = CheckFactory(category=category, name="WebSocket Message Send")
    for run in (first, second):
        ResultFactory(run=run, test_case=check, outcome="failed", failure_class="ws-closed-1000-after-send")
    [row] = build_report(second).patterns
    assert row.name == "ws-closed-1000-after-send"
    assert (row.first_run_id, row.runs_since) == (first.pk, 2)


@pytest.mark.django_db
def test_a_failure_class_in_another_environment_does_not_count_as_seen_before():
    _, _, category, (first, second) = finished_runs(2)
    Run.objects.filter(pk=first.pk).update(environment=EnvironmentFactory())
    check = CheckFactory(category=category)
    for run in (first, second):
        ResultFactory(run=run, test_case=check, outcome="failed", failure_class="http-5xx")
    [row] = build_report(Run.objects.get(pk=second.pk)).patterns
    assert (row.first_run_id, row.runs_since) == (second.pk, 1)


@pytest.mark.django_db
def test_a_check_that_passed_only_on_a_retry_is_flaky_in_its_run():
    run = running()
    check = CheckFactory(category=CategoryFactory(suite=run.suite))
    steady = CheckFactory(category=check.category)
    ResultFactory(run=run, test_case=check, outcome=Result.Outcome.PASSED, attempt=2)
    ResultFactory(run=run, test_case=steady, outcome=Result.Outcome.PASSED, attempt=1)
    assert flaky_test_cases(run) == {check.pk: 1.0}
    finish_run(run)
    run.refresh_from_db()
    assert run.flaky_count == 1
