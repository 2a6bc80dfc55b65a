"""Failure classification: ordered rules over a failure's message and evidence.

Rules are data (the FailureRule model, editable in the admin, seeded from BUILTIN_RULES);
the first rule that matches names the failure's class. The same class across tests and runs
groups them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class Rule:
    """Matches when every condition given holds: a regex over the message (case-insensitive),
    a WebSocket close code seen in the evidence, and an HTTP status range seen in it."""

    name: str
    label: str
    message_regex: str = ""
    close_code: int | None = None
    http_status_min: int | None = None
    http_status_max: int | None = None

    def matches(self, message: str, evidence: dict[str, Any]) -> bool:
        # The evidence conditions first: they are cheap, a regex over a long message is not.
        if self.close_code is not None and self.close_code not in close_codes(evidence):
            return False
        if self.http_status_min is not None or self.http_status_max is not None:
            low, high = self.http_status_min or 0, self.http_status_max or 999
            if not any(low <= status <= high for status in http_statuses(evidence)):
                return False
        return not self.message_regex or re.search(self.message_regex, message, re.IGNORECASE) is not None


def websocket_records(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in evidence.items() if k.startswith("websocket") and isinstance(v, dict)]


def close_codes(evidence: dict[str, Any]) -> set[int]:
    return {r["close_code"] for r in websocket_records(evidence) if isinstance(r.get("close_code"), int)}


def http_statuses(evidence: dict[str, Any]) -> list[int]:
    requests = evidence.get("requests") or []
    return [r["status"] for r in requests if isinstance(r, dict) and isinstance(r.get("status"), int)]


# Most specific first. The messages are the probe engine's own (probes/…); imported results
# carry the message their tool wrote, which the generic rules at the end still catch.
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule(
        "ws-closed-1000-after-send",
        "WebSocket closed normally (1000) right after send",
        message_regex=r"closed by server with code 1000 .*after the first message",
        close_code=1000,
    ),
    Rule("ws-1011-server-error", "WebSocket closed with 1011 internal error", close_code=1011),
    Rule("ws-1008-policy", "WebSocket closed with 1008 policy violation", close_code=1008),
    Rule(
        "message-too-big", "Message over the size limit", message_regex=r"over the .* limit|exceeds \d+ bytes|code 1009"
    ),
    Rule(
        "ws-handshake-rejected",
        "WebSocket handshake rejected (401/403)",
        message_regex=r"handshake rejected: HTTP 40[13]",
    ),
    Rule("events-missing", "Expected agent events missing", message_regex=r"expected events missing"),
    Rule("events-out-of-order", "Agent events out of order", message_regex=r"events out of order"),
    Rule("connect-timeout", "Connect timeout", message_regex=r"connect timeout"),
    Rule("receive-timeout", "Receive timeout", message_regex=r"receive timeout|timed out|timeout"),
    Rule("agent-startup-slow", "Agent startup over target", message_regex=r"target missed:.*Agent Startup"),
    Rule("api-response-slow", "API response time over target", message_regex=r"target missed:.*API Response"),
    Rule("performance-target-missed", "Performance target missed", message_regex=r"performance target missed"),
    Rule("http-5xx", "HTTP 5xx from the server", message_regex=r"HTTP 5\d\d"),
    Rule("http-4xx", "Unexpected HTTP 4xx", message_regex=r"HTTP 4\d\d"),
    Rule("dns-failure", "DNS failure", message_regex=r"DNS failure|Name or service not known|getaddrinfo"),
    Rule("connection-refused", "Connection refused", message_regex=r"connection refused"),
    Rule("connection-reset", "Connection reset by the server", message_regex=r"connection reset"),
    Rule(
        "auth-not-enforced",
        "Authentication not enforced",
        message_regex=r"auth is not enforced|(missing|tampered) token: .* answered HTTP 2\d\d",
    ),
    Rule("tls-error", "TLS error", message_regex=r"TLS error|SSL|certificate"),
    Rule(
        "host-not-allowed",
        "Host outside the environment's allowlist",
        message_regex=r"not in this environment's allowed hosts",
    ),
    Rule(
        "assertion",
        "Assertion mismatch",
        message_regex=r"assert|expected|missing|mismatch|!=|not equal|\bwant\b|but was",
    ),
)


def classify(message: str, evidence: dict[str, Any], rules: Sequence[Rule] = BUILTIN_RULES) -> str:
    """The name of the first rule that matches, or ``unclassified``."""
    for rule in rules:
        if rule.matches(message or "", evidence or {}):
            return rule.name
    return UNCLASSIFIED


def labels(rules: Iterable[Rule]) -> dict[str, str]:
    return {rule.name: rule.label for rule in rules} | {UNCLASSIFIED: "Unclassified failure"}
