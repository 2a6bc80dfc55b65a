"""Mock indicators and the realness score: pure functions, no database."""

import pytest

from runs.analysis.facts import ResultFacts
from runs.analysis.mock import (
    CONSTANT_RUNS,
    FASTER_THAN_RTT,
    NEAR_ZERO,
    NO_NETWORK,
    REAL_THRESHOLD,
    Realness,
    applicable_dimensions,
    auth_enforced,
    auth_never_enforced,
    constant_measurements,
    dimensions_seen,
    has_network_evidence,
    realness,
    result_indicators,
    round_trip_ms,
)

T0 = 1_750_000_000.0  # an epoch second; 0 would read as "no time recorded"


def http_request(status=200, connect_ms=0.4, **extra):
    return {
        "method": "GET",
        "url": "http://127.0.0.1:8765/health",
        "remote_ip": "127.0.0.1",
        "dns_ms": 0.1,
        "status": status,
        "connect_ms": connect_ms,
        "tls_ms": None,
        "first_byte_ms": 1.1,
        "total_ms": 1.3,
        "bytes_in": 180,
        "headers_seen": ["content-length", "content-type"],
        **extra,
    }


def ws_record(handshake_ms=2.5, **extra):
    return {
        "name": "ws",
        "type": "websocket",
        "url": "ws://127.0.0.1:8765/ws",
        "dns_ms": 0.1,
        "handshake_ms": handshake_ms,
        "handshake_status": 101,
        "headers_seen": ["upgrade"],
        "bytes_in": 300,
        **extra,
    }


def fact(outcome="passed", duration=0.05, evidence=None, declares="http", started=None, finished=None):
    return ResultFacts(
        name="Backend Health Check",
        category="Critical Path",
        outcome=outcome,
        duration_s=duration,
        declares=declares,
        evidence={"requests": [http_request()]} if evidence is None else evidence,
        started_at=started,
        finished_at=finished,
    )


# -- per result ----------------------------------------------------------------


def test_it_flags_a_near_zero_duration():
    assert result_indicators(fact(duration=0.0004), rtt_ms=None) == [NEAR_ZERO]


def test_it_does_not_flag_a_duration_of_one_millisecond():
    assert result_indicators(fact(duration=0.001), rtt_ms=None) == []


def test_it_flags_a_passing_network_check_without_network_evidence():
    assert result_indicators(fact(evidence={}), rtt_ms=None) == [NO_NETWORK]


def test_it_does_not_count_a_request_that_got_no_answer_as_network_evidence():
    unanswered = {"requests": [{"method": "GET", "url": "http://127.0.0.1:9/health"}]}
    assert not has_network_evidence(unanswered)
    assert result_indicators(fact(evidence=unanswered), rtt_ms=None) == [NO_NETWORK]


def test_it_counts_a_websocket_handshake_as_network_evidence():
    evidence = {"connections": [ws_record()]}
    assert has_network_evidence(evidence)
    assert result_indicators(fact(evidence=evidence, declares="auth ws"), rtt_ms=None) == []


def test_it_does_not_flag_a_non_network_check_without_evidence():
    assert result_indicators(fact(evidence={}, declares=""), rtt_ms=None) == []


def test_it_flags_a_check_faster_than_the_runs_round_trip():
    assert result_indicators(fact(duration=0.004), rtt_ms=5.0) == [FASTER_THAN_RTT]


def test_it_does_not_flag_a_check_as_slow_as_the_round_trip():
    assert result_indicators(fact(duration=0.005), rtt_ms=5.0) == []


def test_it_combines_the_indicators_of_a_hard_coded_pass():
    flags = result_indicators(fact(duration=0.0, evidence={}), rtt_ms=0.3)
    assert flags == [NEAR_ZERO, NO_NETWORK, FASTER_THAN_RTT]


@pytest.mark.parametrize("outcome", ["failed", "error", "skipped"])
def test_it_never_flags_a_result_that_did_not_pass(outcome):
    result = fact(outcome=outcome, duration=0.0, evidence={})
    assert result_indicators(result, rtt_ms=10.0) == []


def test_the_round_trip_is_the_fastest_connect_or_handshake_of_the_run():
    results = [
        fact(evidence={"requests": [http_request(connect_ms=0.8), http_request(connect_ms=None)]}),
        fact(evidence={"connections": [ws_record(handshake_ms=0.6), ws_record(handshake_ms=3.0)]}),
    ]
    assert round_trip_ms(results) == 0.6


def test_there_is_no_round_trip_without_timed_connections():
    assert round_trip_ms([fact(evidence={}), fact(evidence={"requests": [http_request(connect_ms=None)]})]) is None


# -- across runs -----------------------------------------------------------------


def test_it_flags_a_measurement_identical_in_three_runs():
    assert constant_measurements({"api_response": [12.5, 12.5, 12.5]}) == ["api_response"]


def test_it_does_not_flag_a_measurement_that_changed_once():
    assert constant_measurements({"api_response": [12.5, 12.5, 12.7]}) == []


def test_it_only_looks_at_the_most_recent_runs():
    assert CONSTANT_RUNS == 3
    assert constant_measurements({"api_response": [12.5, 12.5, 12.5, 99.0]}) == ["api_response"]
    assert constant_measurements({"api_response": [99.0, 12.5, 12.5, 12.5]}) == []


def test_it_needs_three_runs_to_call_a_measurement_constant():
    assert constant_measurements({"api_response": [12.5, 12.5]}) == []
    assert constant_measurements({"api_response": []}) == []


def test_it_does_not_flag_a_metric_that_was_not_measured():
    assert constant_measurements({"agent_startup": [None, None, None]}) == []
    assert constant_measurements({"agent_startup": [40.0, None, 40.0]}) == []


def test_it_flags_each_constant_metric_separately():
    history = {"api_response": [1.0, 1.0, 1.0], "agent_startup": [100.0, 101.0, 100.0], "ws": [2.0, 2.0, 2.0]}
    assert constant_measurements(history) == ["api_response", "ws"]


def test_auth_counts_as_enforced_when_any_check_saw_it():
    assert auth_enforced([fact(), fact(evidence={"auth_enforced": True})])
    assert not auth_enforced([fact(), fact(evidence={})])


# -- realness ---------------------------------------------------------------------


def test_realness_is_real_at_the_threshold_and_suspect_below():
    assert REAL_THRESHOLD == 0.6
    assert Realness(0.6, {}).verdict == "REAL"
    assert Realness(0.599, {}).verdict == "SUSPECT"


def test_a_run_with_no_evidence_at_all_is_suspect():
    results = [fact(evidence={}), fact(evidence={})]
    assert not any(dimensions_seen(results).values())
    score = realness(results)
    assert (score.score, score.verdict) == (0.0, "SUSPECT")
    assert score.confirmed == []
    assert "HTTP timing" in score.missing


def test_a_run_without_results_is_suspect():
    assert realness([]).verdict == "SUSPECT"


def test_a_loopback_run_with_http_websocket_auth_and_concurrency_is_real():
    results = [
        fact(
            evidence={"requests": [http_request()], "auth_enforced": True},
            declares="auth http",
            started=T0,
            finished=T0 + 0.2,
        ),
        fact(evidence={"connections": [ws_record()]}, declares="auth ws", started=T0 + 0.1, finished=T0 + 0.3),
    ]
    score = realness(results)
    assert score.seen == {
        "tcp_connect": True,
        "http_timing": True,
        "ws_handshake": True,
        "headers": True,
        "network_io": True,
        "auth": True,
        "concurrency": True,
    }  # no TLS: plain http:// and ws:// cannot show one; no DNS: the URLs name an address
    assert (score.score, score.verdict, score.missing) == (1.0, "REAL", [])


def imported(evidence):
    """An imported result: it declares nothing, so every evidence dimension applies to it."""
    return fact(evidence=evidence, declares="")


def test_five_of_nine_dimensions_is_suspect_and_six_is_real():
    five = [imported({"connections": [ws_record()], "auth_enforced": True})]  # dns, handshake, headers, I/O, auth
    assert len(applicable_dimensions(five)) == 9
    assert sum(dimensions_seen(five).values()) == 5
    assert (realness(five).score, realness(five).verdict) == (0.556, "SUSPECT")
    six = [
        imported(
            {"connections": [ws_record()], "auth_enforced": True, "requests": [{"status": 200, "connect_ms": 0.3}]}
        )
    ]
    assert sum(dimensions_seen(six).values()) == 6
    assert (realness(six).score, realness(six).verdict) == (0.667, "REAL")


def test_a_websocket_only_rerun_is_judged_on_what_websocket_checks_can_show():
    results = [
        fact(evidence={"connections": [ws_record()]}, declares="ws", started=T0, finished=T0 + 0.2),
        fact(evidence={"connections": [ws_record()]}, declares="ws", started=T0 + 0.1, finished=T0 + 0.3),
    ]
    assert applicable_dimensions(results) == ["ws_handshake", "headers", "network_io", "concurrency"]
    assert (realness(results).score, realness(results).verdict) == (1.0, "REAL")


def test_tls_applies_once_a_check_used_https_or_wss():
    secure = fact(evidence={"requests": [http_request(url="https://staging.example.com/health", tls_ms=12.5)]})
    assert "tls" in applicable_dimensions([secure])
    assert realness([secure]).seen["tls"] is True
    assert "tls" not in applicable_dimensions([fact()])


def test_auth_never_enforced_needs_a_check_that_could_have_seen_it():
    assert auth_never_enforced([fact(declares="auth http", evidence={"requests": [http_request()]})])
    assert auth_never_enforced([imported({})])  # imported results declare nothing
    assert not auth_never_enforced([fact(declares="ws"), fact(declares="http")])  # no step expects a refusal
    assert not auth_never_enforced([fact(declares="auth ws", evidence={"auth_enforced": True})])
    assert not auth_never_enforced([])


def test_overlapping_checks_show_concurrent_execution():
    results = [
        fact(started=T0, finished=T0 + 1.0),
        fact(started=T0 + 2.0, finished=T0 + 3.0),
        fact(started=T0 + 2.5, finished=T0 + 2.6),
    ]
    assert dimensions_seen(results)["concurrency"] is True


def test_back_to_back_checks_are_not_concurrent():
    results = [
        fact(started=T0 + 1.0, finished=T0 + 2.0),
        fact(started=T0, finished=T0 + 1.0),
        fact(started=T0 + 2.0, finished=T0 + 3.0),
    ]
    assert dimensions_seen(results)["concurrency"] is False


def test_checks_without_times_are_not_concurrent():
    assert dimensions_seen([fact(), fact()])["concurrency"] is False


def test_a_tls_timing_shows_the_tls_dimension():
    assert dimensions_seen([fact(evidence={"requests": [http_request(tls_ms=12.5)]})])["tls"] is True
