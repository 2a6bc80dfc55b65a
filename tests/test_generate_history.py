"""`manage.py generate_history`: a realistic, consistent history made with bulk inserts."""

from collections import Counter

import pytest
from django.core.management import call_command

from runs import history as run_history
from runs.analysis.mock import (
    NETWORK_KINDS,
    auth_never_enforced,
    constant_measurements,
    realness,
    result_indicators,
    round_trip_ms,
)
from runs.analysis.mrr import mrr_at_risk
from runs.analysis.verdict import DEFAULT_MIN_PASS_RATE, compute_verdict
from runs.models import Environment, Measurement, Result, Run, RunStatus
from runs.reporting import load_results, result_facts, tag_mrr
from runs.services import OUTCOME_COUNTERS

RUNS, ENVIRONMENTS, CHECKS, METRICS = 30, 3, 12, 5


@pytest.fixture
def history(db):
    call_command("generate_history", runs=RUNS, environments=ENVIRONMENTS, seed=1, verbosity=0)
    return list(Run.objects.select_related("suite", "environment").order_by("pk"))


def test_it_creates_finished_runs_on_generated_environments(history):
    assert len(history) == RUNS
    assert sorted(Environment.objects.values_list("name", flat=True)) == ["env-1", "env-2", "env-3"]
    assert Environment.objects.get(name="env-2").base_url == "https://env-2.example.test"
    for run in history:
        assert run.status == RunStatus.FINISHED
        assert run.started_at and run.finished_at and run.duration_s and run.duration_s > 0
        assert run.created <= run.started_at < run.finished_at
        assert run.trigger in {Run.Trigger.SCHEDULE, Run.Trigger.MANUAL, Run.Trigger.RERUN}
        assert run.expected == CHECKS


def test_every_run_has_a_result_per_check_and_consistent_counters(history):
    results = Counter(Result.objects.values_list("run_id", flat=True))
    for run in history:
        assert results[run.pk] == CHECKS
        counts = Counter(Result.objects.filter(run=run).values_list("outcome", flat=True))
        assert run.passed + run.failed + run.errors + run.skipped == run.total == CHECKS
        for outcome, counter in OUTCOME_COUNTERS.items():
            assert getattr(run, counter) == counts.get(outcome, 0)


def test_the_stored_verdict_matches_compute_verdict_on_the_stored_results(history):
    for run in history:
        min_pass_rate = run.suite.definition.get("verdict", {}).get("min_pass_rate", DEFAULT_MIN_PASS_RATE)
        facts = [result_facts(r) for r in load_results(run)]
        assert run.verdict == compute_verdict(facts, min_pass_rate), f"run #{run.pk}"


def test_the_stored_analysis_matches_the_analysis_functions(history):
    """What finish_run would have stored: MRR at risk, realness, mock indicators, flaky count."""
    for run in history:
        results = load_results(run)
        facts = [result_facts(r) for r in results]
        rtt = round_trip_ms(facts)
        flags = [
            result_indicators(f, rtt, r.test_case.kind in NETWORK_KINDS) for f, r in zip(facts, results, strict=True)
        ]
        run_flags = len(constant_measurements(run_history.measurement_history(run))) + auth_never_enforced(facts)
        assert run.mrr_at_risk == mrr_at_risk(facts, tag_mrr(results)).total
        assert run.realness_score == realness(facts).score
        assert [r.mock_flags for r in results] == flags
        assert run.mock_count == sum(1 for f in flags if f) + run_flags
        assert run.flaky_count == len(run_history.flaky_test_cases(run))


def test_it_stores_the_performance_measurements(history):
    per_run = Counter(Measurement.objects.values_list("run_id", flat=True))
    with_measurements = [run for run in history if per_run[run.pk]]
    assert len(with_measurements) >= RUNS * 0.8  # an outage run has none, as in a real one
    assert all(per_run[run.pk] == METRICS for run in with_measurements)
    keys = set(Measurement.objects.values_list("key", flat=True))
    assert keys == {"api_response", "websocket_latency", "agent_startup", "message_processing", "total_request"}
    for m in Measurement.objects.all():
        if m.p50 is None:
            assert m.p95 is None and m.ok is None and m.note.startswith("not measured")
        else:
            assert len(m.samples) == 5 and m.p50 <= m.p95 and m.ok == (m.p95 < m.target)


def test_env_2_shows_the_seed_failure_mode(history):
    failing = Result.objects.filter(run__environment__name="env-2", failure_class="ws-closed-1000-after-send")
    assert failing.exists()
    result = failing.select_related("test_case").first()
    assert result.test_case.node_id in {"websocket_message_send", "agent_execution_flow", "realtime_updates"}
    assert "closed by server with code 1000" in result.message
    assert any(record.get("close_code") == 1000 for record in result.evidence.values() if isinstance(record, dict))
    run = result.run
    assert run.verdict == "PARTIAL SUCCESS" and run.mrr_at_risk > 0
    unmeasured = Measurement.objects.filter(run=run, p50__isnull=True).values_list("key", flat=True)
    assert set(unmeasured) == {"agent_startup", "message_processing", "total_request"}


def test_the_same_seed_gives_the_same_history(history):
    first = list(Run.objects.order_by("pk").values_list("verdict", "passed", "mrr_at_risk", "realness_score"))
    call_command("generate_history", runs=RUNS, environments=ENVIRONMENTS, seed=1, clear=True, verbosity=0)
    again = list(Run.objects.order_by("pk").values_list("verdict", "passed", "mrr_at_risk", "realness_score"))
    assert again == first


def test_clear_removes_the_generated_environments_and_their_runs(history):
    other = Environment.objects.create(name="staging", base_url="https://staging.example.test")
    call_command("generate_history", runs=0, clear=True, verbosity=0)
    assert not Run.objects.exists() and not Result.objects.exists() and not Measurement.objects.exists()
    assert list(Environment.objects.all()) == [other]
