"""`manage.py generate_history`: a realistic, consistent history made with bulk inserts, its
evidence replayed from real probe runs of the suite against the bundled target."""

from collections import Counter

import pytest
from django.conf import settings
from django.core.management import call_command

from probes.failures import CODES
from probes.metrics import percentile
from probes.suite.loader import load_suite_file
from runs import history as run_history
from runs.analysis.classification import BUILTIN_RULES, classify
from runs.analysis.mock import (
    CONSTANT,
    CONSTANT_RUNS,
    NEAR_ZERO,
    auth_never_enforced,
    constant_measurements,
    realness,
    result_indicators,
    round_trip_ms,
)
from runs.analysis.mrr import mrr_at_risk
from runs.analysis.verdict import DEFAULT_MIN_PASS_RATE, compute_verdict
from runs.models import Environment, Measurement, Result, Run, RunStatus
from runs.reporting import load_results, result_facts, stored_tags, tag_mrr
from runs.services import OUTCOME_COUNTERS

GOLDEN_PATH = load_suite_file(settings.GOLDPATH_SUITES_DIR / "golden-path.yaml").model
PERFORMANCE = next(c for c in GOLDEN_PATH.checks if c.metrics)
METRIC_KEYS = {m.key for m in PERFORMANCE.metrics}
RUNS, ENVIRONMENTS, CHECKS = 30, 3, len(GOLDEN_PATH.checks)
WS_CLOSED_1000 = "closed by the server with code 1000"


@pytest.fixture
def history(db):
    call_command("generate_history", runs=RUNS, environments=ENVIRONMENTS, seed=1, verbosity=0)
    return list(Run.objects.select_related("suite", "environment", "version").order_by("pk"))


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
        assert run.version == run.suite.current_version and run.variables == {}
        assert run.base_url == run.environment.base_url


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
        min_pass_rate = run.definition.get("verdict", {}).get("min_pass_rate", DEFAULT_MIN_PASS_RATE)
        tags = stored_tags([run.suite_id])
        facts = [result_facts(r, None, tags) for r in load_results(run)]
        assert run.verdict == compute_verdict(facts, min_pass_rate), f"run #{run.pk}"


def test_the_stored_analysis_matches_the_analysis_functions(history):
    """What finish_run would have stored: MRR at risk, realness, mock indicators, flaky count."""
    for run in history:
        results, tags = load_results(run), stored_tags([run.suite_id])
        facts = [result_facts(r, None, tags) for r in results]
        rtt = round_trip_ms(facts)
        flags = [result_indicators(f, rtt) for f in facts]
        run_flags = len(constant_measurements(run_history.measurement_history(run))) + auth_never_enforced(facts)
        assert run.mrr_at_risk == mrr_at_risk(facts, tag_mrr(None, tags)).total
        assert run.realness_score == realness(facts).score
        assert [r.mock_flags for r in results] == flags
        assert run.mock_count == sum(1 for f in flags if f) + run_flags
        assert run.flaky_count == len(run_history.flaky_test_cases(run))


def test_it_stores_the_performance_measurements(history):
    per_run = Counter(Measurement.objects.values_list("run_id", flat=True))
    assert all(per_run[run.pk] == len(METRIC_KEYS) for run in history)  # an outage's say "not measured"
    assert set(Measurement.objects.values_list("key", flat=True)) == METRIC_KEYS
    measured = 0
    for m in Measurement.objects.all():
        if m.p50 is None:
            assert m.p95 is None and m.ok is None and m.samples == [] and m.note.startswith("not measured")
        else:
            measured += 1
            assert len(m.samples) == PERFORMANCE.repeat and m.p50 <= m.p95 and m.ok == (m.p95 < m.target)
            assert m.p50 == round(percentile(m.samples, 50), 3)
            assert m.p95 == round(percentile(m.samples, m.percentile), 3)
    assert measured >= RUNS * len(METRIC_KEYS) * 0.5
    # Scaled per run, so trends move: no metric sits at one value.
    for key in METRIC_KEYS:
        assert len(set(Measurement.objects.filter(key=key, p50__isnull=False).values_list("p50", flat=True))) > 5


def test_env_2_shows_the_seed_failure_mode(history):
    failing = Result.objects.filter(run__environment__name="env-2", failure_class="ws-closed-1000-after-send")
    assert failing.exists()
    # The seed's run; one that also missed a performance target (latency) would be FAIL.
    result = failing.filter(run__failed=3).select_related("test_case").first()
    assert result.test_case.node_id in {"websocket_message_send", "agent_execution_flow", "realtime_updates"}
    assert WS_CLOSED_1000 in result.message
    assert 1000 in {connection.get("close_code") for connection in result.evidence["connections"]}
    assert any(c.get("close_initiator") == "server" for c in result.evidence["connections"])
    run = result.run
    assert (run.verdict, run.mrr_at_risk) == ("PARTIAL SUCCESS", 550_000)  # the three checks' impact tags
    assert (run.passed, run.failed) == (CHECKS - 3, 3)
    unmeasured = Measurement.objects.filter(run=run, p50__isnull=True)
    assert len(unmeasured) == 3 and {m.key for m in unmeasured} < METRIC_KEYS
    assert all(WS_CLOSED_1000 in m.note for m in unmeasured)
    assert Result.objects.get(run=run, test_case__node_id=PERFORMANCE.id).outcome == Result.Outcome.PASSED


def test_the_evidence_is_that_of_real_probe_runs_against_the_bundled_target(history):
    results = list(Result.objects.filter(run__in=history).select_related("test_case"))
    requests = [r for result in results for r in result.evidence.get("requests", [])]
    assert requests
    for request in requests:
        assert request["remote_ip"] == "127.0.0.1" and request["url"].startswith("http://127.0.0.1:")
    answered = [r for r in requests if r.get("status")]
    assert answered and all(r["first_byte_ms"] > 0 and r["total_ms"] >= r["first_byte_ms"] for r in answered)
    assert any(r["connect_ms"] for r in answered)  # None where the connection was reused
    sockets = [c for result in results for c in result.evidence.get("connections", [])]
    assert any(c.get("handshake_status") == 101 and c["handshake_ms"] > 0 for c in sockets)
    failures = [r for r in results if r.outcome != Result.Outcome.PASSED]
    assert failures
    for result in failures:
        failure = result.evidence["failure"]
        assert failure["code"] in CODES
        assert result.failure_class == classify(result.message, failure, BUILTIN_RULES)
    # Replayed with jittered timings: a check's durations differ from run to run.
    durations = Counter(r.test_case.node_id for r in results)
    assert len({r.duration_s for r in results}) > len(durations) * 5


def test_the_mock_indicators_catch_the_stubbed_environment(db):
    """env-4 is synthetic on purpose: 3 checks "pass" in under 1 ms with no evidence, and its
    measurements are the same every run."""
    call_command("generate_history", runs=40, environments=4, seed=3, verbosity=0)
    stubbed = list(Run.objects.filter(environment__name="env-4").order_by("pk"))
    assert len(stubbed) > CONSTANT_RUNS and all(run.passed == CHECKS for run in stubbed)
    for run in stubbed:
        near_zero = [r for r in run.results.all() if NEAR_ZERO in r.mock_flags]
        assert len(near_zero) == 3 and all(r.evidence == {} for r in near_zero)
        assert run.mock_count == len(near_zero) + len(run.mock_flags)  # flagged results and run indicators
    for run in stubbed[CONSTANT_RUNS - 1 :]:
        assert {f["metric"] for f in run.mock_flags if f["indicator"] == CONSTANT} == METRIC_KEYS
    healthy = Result.objects.filter(run__environment__name="env-1").values_list("mock_flags", flat=True)
    assert not any(healthy)


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
