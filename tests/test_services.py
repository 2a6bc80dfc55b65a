"""runs.services against the real database: state changes, results, verdicts."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from probes.engine import CheckOutcome
from probes.metrics import MeasuredMetric
from runs import bulk
from runs.models import Measurement, Result, Run, RunStatus
from runs.services import (
    MAX_MESSAGE_CHARS,
    FinishedRun,
    NothingToRerun,
    QueueFull,
    claim_run,
    create_rerun,
    create_run,
    fail_run,
    finish_run,
    record_result,
    store_finished_runs,
    transition,
    truncate,
)
from tests.factories import CategoryFactory, EnvironmentFactory, ResultFactory, RunFactory, SuiteFactory
from tests.factories import TestCaseFactory as CheckFactory

pytestmark = pytest.mark.django_db


def outcome(outcome: str = "passed", message: str = "ok", metrics: list[MeasuredMetric] | None = None):
    now = time.time()
    return CheckOutcome(
        check_id="check",
        outcome=outcome,
        duration_s=0.25,
        message=message,
        evidence={"requests": [{"status": 200}]},
        started_at=now - 0.25,
        finished_at=now,
        metrics=metrics or [],
    )


def metric(key: str, p95: float | None, ok: bool | None, note: str = "") -> MeasuredMetric:
    samples = [] if p95 is None else [p95 / 2, p95]
    return MeasuredMetric(
        key=key,
        name=key.replace("_", " ").title(),
        unit="ms",
        target=100,
        comparison="lt",
        samples=samples,
        p50=None if p95 is None else p95 / 2,
        p95=p95,
        ok=ok,
        note=note,
    )


@pytest.fixture
def running_run():
    suite = SuiteFactory()
    return RunFactory(suite=suite, status=RunStatus.RUNNING, started_at=timezone.now())


def test_it_lets_only_one_of_two_workers_start_a_queued_run():
    run = RunFactory()
    first, second = Run.objects.get(pk=run.pk), Run.objects.get(pk=run.pk)
    assert transition(first, RunStatus.RUNNING, worker="a") is True
    assert transition(second, RunStatus.RUNNING, worker="b") is False
    run.refresh_from_db()
    assert (run.status, run.worker) == (RunStatus.RUNNING, "a")
    assert second.status == RunStatus.QUEUED  # the loser's copy is left as it was


def test_it_refuses_to_restart_a_finished_run():
    run = RunFactory(status=RunStatus.FINISHED, verdict="PASS")
    assert transition(run, RunStatus.RUNNING) is False
    assert run.status == RunStatus.FINISHED
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED


def test_it_claims_a_queued_run_for_a_worker():
    before = timezone.now()
    run = claim_run(RunFactory().pk, "celery@host")
    after = timezone.now()
    assert run is not None
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempts) == (RunStatus.RUNNING, "celery@host", 1)
    assert before <= run.started_at <= run.heartbeat_at <= after


def test_it_claims_nothing_for_an_unknown_run():
    assert claim_run(999_999, "celery@host") is None


def test_it_claims_nothing_for_a_cancelled_run():
    run = RunFactory(status=RunStatus.CANCELLED)
    assert claim_run(run.pk, "celery@host") is None
    run.refresh_from_db()
    assert (run.status, run.worker) == (RunStatus.CANCELLED, "")


def test_it_counts_each_recorded_result(running_run):
    category = CategoryFactory(suite=running_run.suite)
    first, second = CheckFactory(category=category), CheckFactory(category=category)
    record_result(running_run, first, outcome("passed"))
    record_result(running_run, second, outcome("failed", "HTTP 500 from /api/health"))
    running_run.refresh_from_db()
    assert (running_run.total, running_run.passed, running_run.failed) == (2, 1, 1)
    assert running_run.started_at <= running_run.heartbeat_at <= timezone.now()
    stored = running_run.results.get(test_case=second)
    assert (stored.outcome, stored.message, stored.duration_s) == ("failed", "HTTP 500 from /api/health", 0.25)
    assert stored.evidence == {"requests": [{"status": 200}]}
    assert (stored.failure_class, running_run.results.get(test_case=first).failure_class) == ("http-5xx", "")
    assert stored.started_at < stored.finished_at


def test_it_stores_the_measurements_of_a_result(running_run):
    test_case = CheckFactory(category=CategoryFactory(suite=running_run.suite))
    metrics = [metric("api_response", 42.0, True), metric("agent_startup", None, None, "not measured: closed")]
    record_result(running_run, test_case, outcome(metrics=metrics))
    stored = {m.key: m for m in Measurement.objects.filter(run=running_run)}
    assert set(stored) == {"api_response", "agent_startup"}
    measured = stored["api_response"]
    assert (measured.p50, measured.p95, measured.samples, measured.ok) == (21.0, 42.0, [21.0, 42.0], True)
    assert (measured.name, measured.target, measured.test_case) == ("Api Response", 100, test_case)
    unmeasured = stored["agent_startup"]
    assert (unmeasured.p95, unmeasured.ok, unmeasured.note) == (None, None, "not measured: closed")


def test_it_keeps_short_text_as_it_is():
    assert truncate("connection refused") == "connection refused"
    assert truncate("x" * MAX_MESSAGE_CHARS) == "x" * MAX_MESSAGE_CHARS


def test_it_cuts_a_huge_message_and_says_how_long_it_was():
    cut = truncate("x" * 1_000_000)
    assert cut.startswith("x" * MAX_MESSAGE_CHARS + "…")
    assert cut.endswith("[truncated: 1000000 characters in all]")
    assert len(cut) < MAX_MESSAGE_CHARS + 100


def test_it_stores_a_huge_message_truncated(running_run):
    test_case = CheckFactory(category=CategoryFactory(suite=running_run.suite))
    result = record_result(running_run, test_case, outcome("failed", "y" * 1_000_000))
    result.refresh_from_db()
    assert result.message.endswith("[truncated: 1000000 characters in all]")


def test_it_finishes_a_run_with_a_critical_failure_as_fail(running_run):
    plain = CategoryFactory(suite=running_run.suite, name="Message Flow")
    critical = CategoryFactory(suite=running_run.suite, name="Connectivity", critical=True)
    for _ in range(3):
        ResultFactory(run=running_run, test_case=CheckFactory(category=plain), outcome="passed")
    ResultFactory(run=running_run, test_case=CheckFactory(category=critical), outcome="error")
    finish_run(running_run)
    running_run.refresh_from_db()
    assert (running_run.status, running_run.verdict) == (RunStatus.FINISHED, "FAIL")
    assert (running_run.total, running_run.passed, running_run.failed, running_run.errors) == (4, 3, 0, 1)
    assert running_run.duration_s == (running_run.finished_at - running_run.started_at).total_seconds()


def test_it_finishes_a_run_with_a_non_critical_failure_as_partial_success(running_run):
    plain = CategoryFactory(suite=running_run.suite, name="Message Flow")
    ResultFactory(run=running_run, test_case=CheckFactory(category=plain), outcome="passed")
    ResultFactory(run=running_run, test_case=CheckFactory(category=plain), outcome="failed")
    finish_run(running_run)
    running_run.refresh_from_db()
    assert (running_run.verdict, running_run.passed, running_run.failed) == ("PARTIAL SUCCESS", 1, 1)


def test_it_ends_a_failed_run_as_error_and_keeps_its_results(running_run):
    ResultFactory(run=running_run, test_case=CheckFactory(category=CategoryFactory(suite=running_run.suite)))
    fail_run(running_run, "The worker hit an internal error (KeyError: 'x')")
    running_run.refresh_from_db()
    assert running_run.status == RunStatus.ERROR
    assert running_run.status_message == "The worker hit an internal error (KeyError: 'x')"
    assert running_run.duration_s == (running_run.finished_at - running_run.started_at).total_seconds()
    assert running_run.results.count() == 1


def finished_run(test_case, *, parent: Run | None = None, outcome: str = "passed", evidence: int = 0) -> FinishedRun:
    """A run of ``test_case``'s suite that ended a minute ago, with one result and one measurement."""
    environment = EnvironmentFactory()
    started = timezone.now() - timedelta(minutes=1)
    finished = started + timedelta(seconds=2)
    run = Run(suite=test_case.suite, environment=environment, base_url=environment.base_url, started_at=started)
    run.finished_at, run.total, run.verdict = finished, 1, "PASS" if outcome == "passed" else "FAIL"
    result = (test_case.pk, outcome, 0.5, "ok", "", bulk.json_value([]), 1)
    result += (bulk.datetime_value(started), bulk.datetime_value(finished), evidence)
    measurement = (test_case.pk, "api_response", "API response", "ms", 100, "lt", 21.0, 42.0, "[21.0, 42.0]", True, "")
    return FinishedRun(run, parent, [result], [(*measurement, 95)])


def test_it_stores_finished_runs_with_their_results_measurements_and_parent(django_capture_on_commit_callbacks):
    test_case = CheckFactory(category=CategoryFactory())
    first = finished_run(test_case)
    rerun = finished_run(test_case, parent=first.run, outcome="failed", evidence=1)
    with django_capture_on_commit_callbacks() as callbacks:
        store_finished_runs([first, rerun], [bulk.json_value({}), bulk.json_value({"requests": [{"status": 500}]})])
    assert callbacks == []  # a stored history decides no alerts
    stored = list(Run.objects.order_by("pk").values_list("status", "parent_id", "verdict"))
    assert stored == [(RunStatus.FINISHED, None, "PASS"), (RunStatus.FINISHED, first.run.pk, "FAIL")]
    results = Result.objects.order_by("run_id").values_list("run_id", "outcome", "evidence")
    assert list(results) == [(first.run.pk, "passed", {}), (rerun.run.pk, "failed", {"requests": [{"status": 500}]})]
    measured = Measurement.objects.get(run=rerun.run)
    assert (measured.test_case, measured.p95, measured.samples) == (test_case, 42.0, [21.0, 42.0])


def test_it_stores_no_finished_run_without_the_time_it_finished():
    test_case = CheckFactory(category=CategoryFactory())
    complete, unfinished = finished_run(test_case), finished_run(test_case)
    unfinished.run.finished_at = None
    with pytest.raises(ValueError, match="started and finished"):
        store_finished_runs([complete, unfinished], [bulk.json_value({})])
    assert (Run.objects.count(), Result.objects.count()) == (0, 0)


# In these tests the test transaction never commits, so create_run's on-commit dispatch
# never reaches the broker: the rows are all there is.


def test_it_creates_one_run_for_a_repeated_request_key():
    suite = CheckFactory.create_batch(3, category=CategoryFactory())[0].suite
    environment = EnvironmentFactory()
    first = create_run(suite, environment, request_key="form-1")
    again = create_run(suite, environment, request_key="form-1")
    assert again.pk == first.pk
    assert Run.objects.count() == 1
    assert (first.status, first.expected) == (RunStatus.QUEUED, 3)


def test_it_reruns_only_the_failed_checks(running_run):
    category = CategoryFactory(suite=running_run.suite)
    failed, errored, passed = CheckFactory.create_batch(3, category=category)
    ResultFactory(run=running_run, test_case=failed, outcome="failed")
    ResultFactory(run=running_run, test_case=errored, outcome="error")
    ResultFactory(run=running_run, test_case=passed, outcome="passed")
    child = create_rerun(running_run, Run.Scope.FAILED, None)
    assert (child.parent, child.trigger, child.scope, child.expected) == (running_run, "rerun", "failed", 2)
    assert set(child.scope_test_cases.all()) == {failed, errored}
    assert child.base_url == running_run.base_url


def test_it_refuses_to_rerun_failed_checks_when_none_failed(running_run):
    ResultFactory(run=running_run, test_case=CheckFactory(category=CategoryFactory(suite=running_run.suite)))
    with pytest.raises(NothingToRerun, match="nothing to rerun"):
        create_rerun(running_run, Run.Scope.FAILED, None)
    assert Run.objects.count() == 1


def test_it_refuses_a_run_while_the_pair_has_as_many_queued_or_running_as_allowed(settings):
    settings.GOLDPATH_MAX_QUEUED_RUNS = 1
    suite = CheckFactory(category=CategoryFactory(suite__name="web")).suite
    staging = EnvironmentFactory(name="staging")
    running = create_run(suite, staging)
    transition(running, RunStatus.RUNNING)
    with pytest.raises(QueueFull, match="^A run of web on staging is already queued or running: wait for one"):
        create_run(suite, staging)
    with pytest.raises(QueueFull):
        create_rerun(running, Run.Scope.ALL, None)
    assert Run.objects.count() == 1
    fail_run(running, "stopped")
    assert create_run(suite, staging).status == RunStatus.QUEUED
