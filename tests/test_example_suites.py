"""The example suites (probes/suites/examples/) against real services Goldpath did not write:
PyPI httpbin, and a market/chat feed with its own WebSocket/SSE protocol. Each check's
outcome is asserted, in process and through the real Celery worker, and every failure on
purpose must name what was expected and what was seen."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
from django.conf import settings

from probes.engine import CheckOutcome, run_checks
from probes.net import NetworkPolicy
from probes.runtime import RunTarget
from probes.suite.loader import load_suite_file
from tests.conftest import wait_for
from tests.servers.httpbin_server import HttpbinServer
from tests.servers.realtime import RealtimeServer

EXAMPLES = Path(__file__).resolve().parent.parent / "probes" / "suites" / "examples"
SUITE_FILES = sorted(p for pattern in ("*.yaml", "*.yml") for p in EXAMPLES.glob(pattern))
SCHEMA_FILES = sorted((EXAMPLES / "schemas").glob("*.json"))
LOOPBACK = NetworkPolicy(frozenset({"127.0.0.1"}))

# The httpbin suite's secrets, read as ${env.…}. Set here, at collection, so the session's
# Celery worker (started later, from this process's environment) sees them too.
os.environ.setdefault("HTTPBIN_PASSWORD", "example-pass-7f3a91")
os.environ.setdefault("HTTPBIN_TOKEN", "example-token-c04e5d2b")
SECRETS = ("HTTPBIN_PASSWORD", "HTTPBIN_TOKEN")

PASSED = "passed"

# check id → (outcome, failure code, fragments the message must contain)
HTTPBIN_EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "status_codes": (PASSED, None, ()),
    "redirect_not_followed": (PASSED, None, ()),
    "request_headers_echoed": (PASSED, None, ()),
    "response_headers": (PASSED, None, ()),
    "json_document": (PASSED, None, ()),
    "json_echo": (PASSED, None, ()),
    "save_and_reuse": (PASSED, None, ()),
    "basic_auth": (PASSED, None, ()),
    "bearer_auth": (PASSED, None, ()),
    "header_and_query_profiles": (PASSED, None, ()),
    "delay_time": (PASSED, None, ()),
    "latency_percentiles": (PASSED, None, ()),
    "optional_and_always": (PASSED, None, ()),
    "flaky_with_retries": (PASSED, None, ()),
    "fail_status": ("failed", "http.status", ("step 1 request", "GET /status/503 answered 503", "expected 200")),
    "fail_json_mismatch": (
        "failed",
        "http.json_mismatch",
        ("$.slideshow.author", "expected Somebody Else", "got Yours Truly"),
    ),
    "fail_schema": (
        "failed",
        "http.schema",
        ("POST /anything/orders", "schema at $['json']['count']", "'three' is not of type 'integer'"),
    ),
    "fail_header": ("failed", "http.header_mismatch", ("header x-goldpath", "expected to match /^prod/", "got probe")),
    "fail_redirect": (
        "failed",
        "http.status",
        ("answered 302", "expected 200", "a redirect to /get", "never follow redirects"),
    ),
    "fail_too_slow": ("failed", "http.time", ("GET /delay/1 answered in ", " ms, expected time_ms {lt: 200}")),
    "fail_auth_not_enforced": (
        "failed",
        "auth.not_enforced",
        ("GET /anything/admin answered 200", "expected 401", "authentication is not enforced"),
    ),
}

REALTIME_EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "feed_welcome": (PASSED, None, ()),
    "price_subscription": (PASSED, None, ()),
    "strict_price_ticks": (PASSED, None, ()),
    "legacy_text_banner": (PASSED, None, ()),
    "server_closes_on_request": (PASSED, None, ()),
    "chat_two_connections": (PASSED, None, ()),
    "event_stream_types": (PASSED, None, ()),
    "idle_stream_heartbeats": (PASSED, None, ()),
    "echo_round_trip": (PASSED, None, ()),
    "fail_missing_frame": (
        "failed",
        "ws.frame_missing",
        (
            "step 3 receive",
            "frame 2 of 3 ({$.event: price, $.symbol: UNLISTED})",
            "not seen by the time frame 3 of 3 arrived",
            "seen: subscribed, price, price, price, snapshot_end",
        ),
    ),
    "fail_out_of_order": (
        "failed",
        "ws.out_of_order",
        ("frame 3 of 4 ({$.event: price, $.seq: 1}) arrived before frame 2 ({$.event: price, $.seq: 2})",),
    ),
    "fail_server_closes_early": (
        "failed",
        "ws.closed",
        (
            "closed by the server with code 1012 (maintenance window)",
            "s after the first message",
            "before frame 2 of 2 ({$.event: snapshot_end})",
        ),
    ),
    "fail_strict_unrelated": (
        "failed",
        "ws.unexpected_frame",
        ('a frame ({"event":"price"', "came before frame 2 of 2 ({$.event: snapshot_end})", "strict"),
    ),
    "fail_forbidden_frame": (
        "failed",
        "ws.forbidden_frame",
        ("matches forbid {$.event: error}", "unknown channel 'no-such-channel'"),
    ),
    "fail_not_json": ("failed", "ws.not_json", ("frame 1 on 'ws' is not JSON (HELLO goldpath-realtime v1)",)),
    "fail_sse_ends_early": (
        "failed",
        "sse.closed",
        ("connection 'stream' closed by the server", "the server ended the event stream", "before event 4 of 4"),
    ),
    "fail_sse_never_sends": (
        "failed",
        "timeout.receive",
        ("event 1 of 1 ({$.event: price}) not seen within 1.0 s", "seen: heartbeat"),
    ),
}


def run_suite(path: Path, base_url: str, ws_url: str = "", environ=None) -> dict[str, CheckOutcome]:
    loaded = load_suite_file(path)
    target = RunTarget(loaded.model, base_url, ws_url=ws_url, policy=LOOPBACK, environ=environ or os.environ)
    with contextlib.closing(run_checks(loaded.model.checks, target)) as outcomes:
        return {o.check_id: o for o in outcomes}


def secret_values() -> list[str]:
    return [os.environ[name] for name in SECRETS]


def steps_of(outcome: CheckOutcome, sample: int = 1) -> dict[int, dict]:
    return {s["step"]: s for s in outcome.evidence["steps"] if s["sample"] == sample}


@pytest.fixture(scope="module")
def httpbin():
    with HttpbinServer() as server:
        yield server


@pytest.fixture(scope="module")
def realtime():
    with RealtimeServer() as server:
        yield server


@pytest.fixture(scope="module")
def httpbin_outcomes(httpbin):
    return run_suite(EXAMPLES / "httpbin.yaml", httpbin.base_url)


@pytest.fixture(scope="module")
def realtime_outcomes(realtime):
    return run_suite(EXAMPLES / "realtime.yaml", realtime.base_url, realtime.ws_url)


# ---------------------------------------------------------------- (a) the files


def test_the_examples_folder_holds_both_suites():
    assert {p.name for p in SUITE_FILES} >= {"httpbin.yaml", "realtime.yaml"}


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_every_example_suite_file_loads(path):
    loaded = load_suite_file(path)
    assert loaded.model.checks
    assert len({c.id for c in loaded.model.checks}) == len(loaded.model.checks)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_schema_file_is_a_json_schema_a_suite_uses(path):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert any(f"schemas/{path.name}" in suite.read_text() for suite in SUITE_FILES)


def test_the_examples_are_not_loaded_by_default():
    from runs.suites import suite_files

    assert not [p for p in suite_files(settings.GOLDPATH_SUITES_DIR) if EXAMPLES in p.parents]


def test_the_deliberate_failures_are_in_a_non_critical_category():
    for path in SUITE_FILES:
        model = load_suite_file(path).model
        critical = {c.name for c in model.categories if c.critical}
        for check in model.checks:
            if check.id.startswith("fail_"):
                assert check.category == "Deliberate failures" and check.category not in critical, check.id


def test_the_expectation_tables_cover_every_check():
    assert set(HTTPBIN_EXPECTED) == {c.id for c in load_suite_file(EXAMPLES / "httpbin.yaml").model.checks}
    assert set(REALTIME_EXPECTED) == {c.id for c in load_suite_file(EXAMPLES / "realtime.yaml").model.checks}


# ---------------------------------------------------------------- (b) in process: httpbin


def assert_outcome(outcome: CheckOutcome, expected: tuple[str, str | None, tuple[str, ...]]) -> None:
    status, code, fragments = expected
    assert outcome.outcome == status, outcome.message
    if code is None:
        assert outcome.failure is None, outcome.failure
        return
    assert outcome.failure["code"] == code, (outcome.failure, outcome.message)
    for fragment in fragments:
        assert fragment in outcome.message, (fragment, outcome.message)


@pytest.mark.parametrize("check_id", sorted(HTTPBIN_EXPECTED))
def test_httpbin_check(httpbin_outcomes, check_id):
    assert_outcome(httpbin_outcomes[check_id], HTTPBIN_EXPECTED[check_id])


def test_httpbin_secrets_never_reach_messages_or_evidence(httpbin_outcomes):
    for outcome in httpbin_outcomes.values():
        stored = json.dumps([outcome.message, outcome.evidence])
        for secret in secret_values():
            assert secret not in stored, outcome.check_id
    basic = httpbin_outcomes["basic_auth"]
    assert "/basic-auth/goldpath/[redacted]" in basic.evidence["requests"][0]["url"]
    assert "[redacted]" in httpbin_outcomes["bearer_auth"].evidence["requests"][0]["body_excerpt"]
    assert "api_key=[redacted]" in httpbin_outcomes["header_and_query_profiles"].evidence["requests"][1]["url"]


def test_httpbin_refusals_count_as_auth_enforced(httpbin_outcomes):
    assert httpbin_outcomes["basic_auth"].evidence.get("auth_enforced") is True
    assert httpbin_outcomes["bearer_auth"].evidence.get("auth_enforced") is True
    assert not httpbin_outcomes["status_codes"].evidence.get("auth_enforced")


def test_httpbin_redirects_are_recorded_not_followed(httpbin_outcomes):
    requests = httpbin_outcomes["redirect_not_followed"].evidence["requests"]
    assert [r["status"] for r in requests] == [302, 307]  # nothing fetched from /get or example.com
    assert requests[0]["redirect_not_followed"] == "/get"
    assert requests[1]["redirect_not_followed"] == "https://example.com/elsewhere"


def test_httpbin_saved_values_are_reused(httpbin_outcomes):
    requests = httpbin_outcomes["save_and_reuse"].evidence["requests"]
    order = json.loads(requests[0]["body_excerpt"])["uuid"]
    assert f"X-Trace-Id=trace-{order}" in requests[1]["url"]
    assert requests[2]["url"].endswith(f"/anything/orders/{order}")


def test_httpbin_delay_is_timed(httpbin_outcomes):
    assert httpbin_outcomes["delay_time"].evidence["requests"][0]["total_ms"] >= 900
    seen = re.search(r"answered in ([0-9.]+) ms", httpbin_outcomes["fail_too_slow"].message)
    assert seen and float(seen.group(1)) >= 900


def test_httpbin_percentiles_come_from_5_samples(httpbin_outcomes):
    outcome = httpbin_outcomes["latency_percentiles"]
    metrics = {m.name: m for m in outcome.metrics}
    assert set(metrics) == {"httpbin GET latency", "httpbin two requests"}
    assert metrics["httpbin GET latency"].percentile == 90
    assert metrics["httpbin two requests"].percentile == 50
    for metric in metrics.values():
        assert len(metric.samples) == 5 and metric.ok is True
    assert len(outcome.evidence["samples"]) == 5


def test_httpbin_optional_failure_ends_the_sample_and_always_still_runs(httpbin_outcomes):
    outcome = httpbin_outcomes["optional_and_always"]
    steps = steps_of(outcome)
    assert steps[2]["ok"] is False and steps[2]["optional"] is True
    assert 3 not in steps  # ended by the optional failure
    assert steps[4]["ok"] is True  # always: the teardown ran
    (metric,) = outcome.metrics
    assert metric.p95 is None and metric.ok is None
    assert metric.note.startswith("not measured: step 2 request: GET /status/503 answered 503")
    assert outcome.message.startswith("no metric measured over 1 sample: not measured: step 2 request")


def test_httpbin_always_step_runs_after_a_failure(httpbin_outcomes):
    outcome = httpbin_outcomes["fail_status"]
    steps = steps_of(outcome)
    assert steps[1]["ok"] is False and steps[2]["ok"] is True
    assert outcome.failure["step"] == 1  # the teardown does not hide the failure
    assert [r["method"] for r in outcome.evidence["requests"]] == ["GET", "DELETE"]


def test_httpbin_flaky_check_passes_within_its_retries(httpbin_outcomes):
    outcome = httpbin_outcomes["flaky_with_retries"]
    assert 1 <= outcome.attempts <= 11
    if outcome.attempts > 1:
        assert outcome.message.startswith(f"passed on attempt {outcome.attempts} of 11")
        assert "answered 503, expected 200" in outcome.message


# ---------------------------------------------------------------- (b) in process: realtime


@pytest.mark.parametrize("check_id", sorted(REALTIME_EXPECTED))
def test_realtime_check(realtime_outcomes, check_id):
    assert_outcome(realtime_outcomes[check_id], REALTIME_EXPECTED[check_id])


def test_realtime_unrelated_frames_come_between_and_are_kept(realtime_outcomes):
    outcome = realtime_outcomes["price_subscription"]
    (connection,) = outcome.evidence["connections"]
    frames = [json.loads(f["text"]) for f in connection["frames"] if f["dir"] == "in"]
    assert {"heartbeat", "trade", "welcome"} <= {f["event"] for f in frames}
    # the price saved from the first ACME tick is sent back in the echo
    sent = [json.loads(f["text"]) for f in connection["frames"] if f["dir"] == "out"]
    assert sent[1]["payload"] == {"price": 101.25, "seq": 1}


def test_realtime_server_close_is_recorded(realtime_outcomes):
    (closed,) = realtime_outcomes["server_closes_on_request"].evidence["connections"]
    assert (closed["close_code"], closed["close_reason"], closed["close_initiator"]) == (4001, "probe asked", "server")
    early = realtime_outcomes["fail_server_closes_early"]
    assert early.failure["details"]["close_code"] == 1012
    seconds = re.search(r"(\d+\.\d{3}) s after the first message", early.message)
    assert seconds, early.message
    closed_ms = early.evidence["connections"][0]["closed_after_send_ms"]
    assert closed_ms == early.failure["details"]["after_send_ms"]  # the evidence and the failure agree
    assert 0 < closed_ms <= float(seconds[1]) * 1000 + 0.5  # the close came before the failure was written


def test_realtime_two_connections_in_one_check(realtime_outcomes):
    connections = realtime_outcomes["chat_two_connections"].evidence["connections"]
    assert [c["name"] for c in connections] == ["watcher", "poster"]
    assert all(c["close_initiator"] == "client" for c in connections)


def test_realtime_event_streams_are_read_as_events(realtime_outcomes):
    (stream,) = realtime_outcomes["event_stream_types"].evidence["connections"]
    assert stream["type"] == "sse" and stream["frames_in"] >= 6
    (idle,) = realtime_outcomes["idle_stream_heartbeats"].evidence["connections"]
    assert idle["close_initiator"] == "client"


def test_realtime_ping_and_metrics_from_marks(realtime_outcomes):
    ping = next(s for s in realtime_outcomes["feed_welcome"].evidence["steps"] if s["kind"] == "ping")
    assert ping["ok"] is True and ping["summary"] == f"pong on 'ws' after {ping['round_trip_ms']:.2f} ms"
    assert 0 < ping["round_trip_ms"] <= ping["ms"]  # the round trip is part of the step's time
    metrics = {m.name: m for m in realtime_outcomes["echo_round_trip"].metrics}
    assert set(metrics) == {"Feed connect", "Feed ping", "Echo round trip", "First price"}
    assert {m.percentile for m in metrics.values()} == {95, 50, 90}
    for metric in metrics.values():
        assert len(metric.samples) == 5 and metric.ok is True, metric
    # a check's vars are evaluated once per sample: 5 samples, 5 message ids
    connections = realtime_outcomes["echo_round_trip"].evidence["connections"]
    ids = {json.loads(f["text"])["id"] for c in connections for f in c["frames"] if f["dir"] == "out"}
    assert len(connections) == 5 and len(ids) == 5


# ---------------------------------------------------------------- (c) through the worker


def worker_results(suite_file: Path, environment, timeout: float = 120):
    from runs.services import create_run
    from runs.suites import load_suite_path

    suite = load_suite_path(suite_file)
    run = wait_for(create_run(suite, environment), timeout=timeout)
    return run, {r.test_case.node_id: r for r in run.results.select_related("test_case")}


def assert_stored(results, expected, in_process: dict[str, CheckOutcome]) -> None:
    """The worker's stored results match the table, and the in-process run's outcomes."""
    assert set(results) == set(expected)
    assert {k: (r.outcome, r.evidence.get("failure", {}).get("code")) for k, r in results.items()} == {
        k: (o.outcome, (o.failure or {}).get("code")) for k, o in in_process.items()
    }
    for check_id, (status, code, fragments) in expected.items():
        result = results[check_id]
        assert result.outcome == status, (check_id, result.message)
        if code is None:
            assert result.failure_class == "", check_id
            continue
        assert result.failure_class, check_id
        assert result.evidence["failure"]["code"] == code, (check_id, result.evidence["failure"])
        for fragment in fragments:
            assert fragment in result.message, (check_id, fragment, result.message)


@pytest.mark.django_db(transaction=True)
def test_httpbin_suite_through_the_worker(celery_worker, httpbin, httpbin_outcomes):
    from tests.factories import EnvironmentFactory

    environment = EnvironmentFactory(name="httpbin-local", base_url=httpbin.base_url, allowed_hosts="127.0.0.1")
    run, results = worker_results(EXAMPLES / "httpbin.yaml", environment)
    assert_stored(results, HTTPBIN_EXPECTED, httpbin_outcomes)
    assert run.verdict == "PARTIAL SUCCESS"
    for result in results.values():
        stored = json.dumps([result.message, result.evidence])
        assert not [s for s in secret_values() if s in stored], result.test_case.node_id
    measured = {m.name: m for m in run.measurements.all()}
    assert measured["httpbin GET latency"].ok is True and len(measured["httpbin GET latency"].samples) == 5
    assert measured["Item fetch"].p95 is None and measured["Item fetch"].note.startswith("not measured")


@pytest.mark.django_db(transaction=True)
def test_realtime_suite_through_the_worker(celery_worker, realtime, realtime_outcomes):
    from tests.factories import EnvironmentFactory

    environment = EnvironmentFactory(
        name="realtime-local", base_url=realtime.base_url, ws_url=realtime.ws_url, allowed_hosts="127.0.0.1"
    )
    run, results = worker_results(EXAMPLES / "realtime.yaml", environment)
    assert_stored(results, REALTIME_EXPECTED, realtime_outcomes)
    assert run.verdict == "PARTIAL SUCCESS"
    measured = {m.name: m for m in run.measurements.all()}
    assert set(measured) == {"Feed connect", "Feed ping", "Echo round trip", "First price"}
    assert all(m.ok is True and len(m.samples) == 5 for m in measured.values())


# ---------------------------------------------------------------- engine bugs found here

KEEP_ALIVE_SUITE = """
name: sse-keep-alive
categories: [{name: Streams}]
checks:
  - id: strict_across_a_comment
    name: strict events across a keep-alive comment
    category: Streams
    steps:
      - stream: {path: /events}
      - receive:
          on: stream
          within_s: 5
          strict: true
          sequence: [{$.event: price, $.id: "1"}, {$.event: news, $.id: "2"}]
"""


def test_sse_comments_are_not_events(realtime):
    from probes.suite.loader import parse_suite

    loaded = parse_suite(KEEP_ALIVE_SUITE)
    target = RunTarget(loaded.model, realtime.base_url, policy=LOOPBACK)
    with contextlib.closing(run_checks(loaded.model.checks, target)) as outcomes:
        (outcome,) = outcomes
    assert outcome.outcome == "passed", outcome.message
    (stream,) = outcome.evidence["connections"]
    assert "" not in [f["text"] for f in stream["frames"]]  # no phantom event with empty data


def test_messages_quote_text_that_yaml_would_read_as_a_number(realtime_outcomes):
    assert '({$.event: price, $.id: "3"})' in realtime_outcomes["fail_sse_ends_early"].message
