"""Failure classification: the built-in rules over the probe engine's own messages and evidence.

Pure functions, no database. The messages below are the ones probes/ws/session.py,
probes/http/checks.py, probes/perf/checks.py, probes/base.py and probes/engine.py write.
"""

import pytest

from runs.analysis.classification import (
    BUILTIN_RULES,
    UNCLASSIFIED,
    Rule,
    classify,
    close_codes,
    http_statuses,
    labels,
)

AGENT_EVENTS = "agent_started, agent_thinking, tool_executing, tool_completed, agent_completed"


def server_close(code: int, reason: str, after_send_ms: float | None = 13.5) -> dict:
    """A WebSocket record as WebSocketSession writes it when the server closes the connection."""
    record = {
        "url": "ws://127.0.0.1:8765/ws",
        "frames_out": 1,
        "frames_in": 0,
        "bytes_out": 117,
        "bytes_in": 0,
        "events": [],
        "remote_ip": "127.0.0.1",
        "dns_ms": 0.2,
        "handshake_ms": 3.1,
        "handshake_status": 101,
        "close_code": code,
        "close_reason": reason,
        "close_initiator": "server",
    }
    if after_send_ms is not None:
        record["closed_after_send_ms"] = after_send_ms
    return record


def client_close() -> dict:
    """A WebSocket record the client closed normally (code 1000) on leaving the session."""
    return {
        "url": "ws://127.0.0.1:8765/ws",
        "handshake_status": 101,
        "handshake_ms": 2.0,
        "close_code": 1000,
        "close_reason": "",
        "close_initiator": "client",
    }


def request(status: int | None, path: str = "/api/mcp/config") -> dict:
    record = {"method": "GET", "url": f"http://127.0.0.1:8765{path}", "remote_ip": "127.0.0.1", "dns_ms": 0.1}
    if status is not None:
        record.update(status=status, connect_ms=0.3, first_byte_ms=1.2, total_ms=1.5, bytes_in=120)
    return record


# One realistic failure per built-in rule: (expected class, message, evidence).
EXAMPLES = [
    (
        "ws-closed-1000-after-send",
        "WebSocket closed by server with code 1000 (main cleanup) 0.014 s after the first message",
        {"websocket": server_close(1000, "main cleanup")},
    ),
    (
        "ws-1011-server-error",
        "WebSocket closed by server with code 1011 (internal error) 0.012 s after the first message",
        {"websocket": server_close(1011, "internal error")},
    ),
    (
        "ws-1008-policy",
        "WebSocket closed by server with code 1008 (policy violation) 0.020 s after the first message",
        {"websocket": server_close(1008, "policy violation")},
    ),
    (
        "ws-handshake-rejected",
        "WebSocket handshake rejected: HTTP 403",
        {"websocket": {"url": "ws://127.0.0.1:8765/ws", "handshake_status": 403, "events": []}},
    ),
    (
        "events-missing",
        "expected events missing: tool_completed "
        "(seen: agent_started, agent_thinking, tool_executing, agent_completed)",
        {"websocket": {**client_close(), "events": ["agent_started", "agent_thinking", "tool_executing"]}},
    ),
    (
        "events-out-of-order",
        "events out of order: got agent_started, tool_executing, agent_thinking, tool_completed, agent_completed; "
        f"expected {AGENT_EVENTS}",
        {"websocket": client_close()},
    ),
    (
        "receive-timeout",
        "receive timeout: no frame within 10 s while waiting for the first reply to a user message",
        {"websocket": client_close()},
    ),
    (
        "agent-startup-slow",
        "performance target missed: Agent Startup Time p95 2002.8 ms over the 500 ms target, "
        "Total Request Time p95 2130.1 ms over the 1000 ms target",
        {"requests": [request(200, "/api/health")]},
    ),
    (
        "api-response-slow",
        "performance target missed: API Response Time p95 157.7 ms over the 100 ms target",
        {"requests": [request(200, "/api/health")]},
    ),
    (
        "performance-target-missed",
        "performance target missed: Message Processing p95 251.0 ms over the 200 ms target",
        {"requests": [request(200, "/api/health")]},
    ),
    (
        "http-5xx",
        "GET /api/mcp/config answered HTTP 500, expected 200",
        {"requests": [request(500)]},
    ),
    (
        "http-4xx",
        "token request rejected: HTTP 401 from /api/auth/token",
        {"requests": [request(401, "/api/auth/token")]},
    ),
    (
        "dns-failure",
        "DNS failure: cannot resolve 'staging.example.invalid' (Name or service not known)",
        {},
    ),
    (
        "connection-refused",
        "connection refused: nothing is listening at that address",
        {"requests": [request(None, "/health")]},
    ),
    (
        "tls-error",
        "TLS error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
        {"requests": [request(None, "/health")]},
    ),
    (
        "host-not-allowed",
        "host 'evil.example.com' is not in this environment's allowed hosts (127.0.0.1); the request was not sent",
        {},
    ),
    ("connect-timeout", "connect timeout: the host did not accept the connection in time", {}),
    ("message-too-big", "GET /health response body exceeds 1048576 bytes; stopped reading", {}),
    ("connection-reset", "connection reset by the server", {}),
    (
        "auth-not-enforced",
        "WebSocket handshake without a token was accepted: auth is not enforced",
        {"websocket_anonymous": {"handshake_status": 101}},
    ),
    (
        "assertion",
        "GET /api/health.status: expected 'ok', got 'degraded'",
        {"requests": [request(200, "/api/health")]},
    ),
]


def test_it_has_an_example_for_every_builtin_rule():
    assert sorted(name for name, _, _ in EXAMPLES) == sorted(rule.name for rule in BUILTIN_RULES)


@pytest.mark.parametrize(("expected", "message", "evidence"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_it_names_the_class_of_a_probe_failure(expected, message, evidence):
    assert classify(message, evidence) == expected


def test_it_does_not_call_a_normal_close_before_any_send_a_close_after_send():
    message = "WebSocket closed by server with code 1000 (going away)"  # no first message was sent
    evidence = {"websocket": server_close(1000, "going away", after_send_ms=None)}
    assert classify(message, evidence) != "ws-closed-1000-after-send"


def test_it_does_not_call_a_close_after_send_without_code_1000_in_the_evidence():
    message = "WebSocket closed by server with code 1000 (main cleanup) 0.014 s after the first message"
    assert classify(message, {}) != "ws-closed-1000-after-send"


def test_it_classifies_an_http_500_as_5xx_not_as_an_assertion():
    message = "GET /api/mcp/config answered HTTP 500, expected 401"  # "expected" would match the assertion rule
    assert classify(message, {"requests": [request(500)]}) == "http-5xx"


def test_it_classifies_a_missing_key_as_an_assertion():
    assert classify("GET /api/discovery/services: key 'services' missing", {}) == "assertion"


def test_it_classifies_an_api_accepting_a_missing_token_as_auth_not_enforced():
    message = "missing token: GET /api/auth/verify answered HTTP 200, expected 401"
    assert classify(message, {"requests": [request(200, "/api/auth/verify")]}) == "auth-not-enforced"


def test_it_classifies_a_check_timeout_from_the_engine_as_a_receive_timeout():
    assert classify("receive timeout: the check did not finish within 10 s", {}) == "receive-timeout"


def test_it_matches_messages_case_insensitively():
    assert classify("websocket HANDSHAKE REJECTED: http 401", {}) == "ws-handshake-rejected"


@pytest.mark.parametrize(
    "message",
    [
        "probe error: RuntimeError: boom",
        "",
    ],
)
def test_it_falls_back_to_unclassified(message):
    assert classify(message, {}) == UNCLASSIFIED


def test_it_treats_missing_message_and_evidence_as_empty():
    assert classify(None, None) == UNCLASSIFIED


def test_it_uses_the_first_matching_rule():
    custom = Rule("mcp-config-down", "MCP config endpoint down", message_regex=r"/api/mcp/config")
    message = "GET /api/mcp/config answered HTTP 500, expected 200"
    assert classify(message, {}, [custom, *BUILTIN_RULES]) == "mcp-config-down"
    assert classify(message, {}, [*BUILTIN_RULES, custom]) == "http-5xx"


def test_it_finds_a_close_code_in_any_websocket_record_of_the_evidence():
    # A fan-out check holds two sessions: the subscriber was closed with 1011, the sender left normally.
    evidence = {
        "websocket_subscriber": server_close(1011, "internal error"),
        "websocket": client_close(),
        "auth_enforced": True,
    }
    assert close_codes(evidence) == {1000, 1011}
    message = "WebSocket closed by server with code 1011 (internal error) 0.010 s after the first message"
    assert classify(message, evidence) == "ws-1011-server-error"


def test_it_finds_code_1000_in_a_later_websocket_record():
    evidence = {
        "websocket_anonymous": {"handshake_status": 401},
        "websocket_agent": server_close(1000, "main cleanup"),
    }
    message = "WebSocket closed by server with code 1000 (main cleanup) 0.013 s after the first message"
    assert classify(message, evidence) == "ws-closed-1000-after-send"


def test_it_ignores_records_that_are_not_websocket_records_or_have_no_integer_code():
    evidence = {
        "requests": [{"close_code": 1011}],
        "websocket_note": "closed",
        "websocket": {"close_code": "1011"},
    }
    assert close_codes(evidence) == set()
    assert classify("anything", evidence, [Rule("ws-1011", "1011", close_code=1011)]) == UNCLASSIFIED


def test_a_close_code_rule_does_not_match_another_code():
    rule = Rule("ws-1008", "policy", close_code=1008)
    assert not rule.matches("closed", {"websocket": server_close(1011, "internal error")})
    assert rule.matches("closed", {"websocket": client_close(), "websocket_2": server_close(1008, "policy")})


def test_an_http_status_range_matches_when_any_request_falls_inside_it():
    gateway = Rule("gateway", "Gateway error", http_status_min=502, http_status_max=504)
    assert gateway.matches("", {"requests": [request(200), request(503)]})
    assert not gateway.matches("", {"requests": [request(200), request(500)]})
    assert not gateway.matches("", {"requests": [request(505)]})


def test_an_http_status_range_includes_its_bounds():
    gateway = Rule("gateway", "Gateway error", http_status_min=502, http_status_max=504)
    assert gateway.matches("", {"requests": [request(502)]})
    assert gateway.matches("", {"requests": [request(504)]})


def test_an_http_status_range_may_be_open_on_either_side():
    at_least_500 = Rule("server", "Server error", http_status_min=500)
    at_most_299 = Rule("ok", "Answered", http_status_max=299)
    assert at_least_500.matches("", {"requests": [request(599)]})
    assert not at_least_500.matches("", {"requests": [request(404)]})
    assert at_most_299.matches("", {"requests": [request(201)]})
    assert not at_most_299.matches("", {"requests": [request(301)]})


def test_an_http_status_range_needs_an_answered_request():
    rule = Rule("server", "Server error", http_status_min=500, http_status_max=599)
    assert http_statuses({"requests": [request(None), "not a record"]}) == []
    assert not rule.matches("", {"requests": [request(None)]})
    assert not rule.matches("", {})


def test_every_condition_of_a_rule_must_hold():
    rule = Rule("mcp-5xx", "MCP 5xx", message_regex=r"/api/mcp/", http_status_min=500, http_status_max=599)
    assert rule.matches("GET /api/mcp/config answered HTTP 500, expected 200", {"requests": [request(500)]})
    assert not rule.matches("GET /api/health answered HTTP 500, expected 200", {"requests": [request(500)]})
    assert not rule.matches("GET /api/mcp/config answered HTTP 404, expected 200", {"requests": [request(404)]})


def test_labels_name_every_rule_and_the_fallback():
    names = labels(BUILTIN_RULES)
    assert names["ws-closed-1000-after-send"] == "WebSocket closed normally (1000) right after send"
    assert names[UNCLASSIFIED] == "Unclassified failure"
    assert set(names) == {rule.name for rule in BUILTIN_RULES} | {UNCLASSIFIED}
