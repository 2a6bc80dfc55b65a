"""Failure classification: ordered rules that name a failure's class.

A probe failure carries a code and details (``evidence["failure"]``, see probes/failures.py);
rules match those, never the wording of messages. Imported results carry only the message
their tool wrote, which rules without a code match by a regex over its first 4 KB. Rules are
data (the FailureRule model, editable in the admin, seeded with BUILTIN_RULES); the first
rule that matches names the class, and the same class across checks and runs groups them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import regex

UNCLASSIFIED = "unclassified"
MESSAGE_EXCERPT = 4096  # regexes only see this much: classification stays linear in the input
QUALIFIER_CHARS = 60


REGEX_TIMEOUT_S = 0.05  # an admin's pattern that backtracks names nothing; it never stalls a worker


@lru_cache(maxsize=512)
def _regex(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.IGNORECASE)


def _searched(pattern: str, message: str) -> bool:
    try:
        return _regex(pattern).search(message[:MESSAGE_EXCERPT], timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        return False


@dataclass(frozen=True)
class Rule:
    """Matches when every condition given holds: the failure's code is one of ``code``
    (space-separated, ``*`` wildcards), its details include ``details``, its HTTP status is
    in the range, and — for a rule without a code — the message matches ``message_regex``.
    ``qualifier`` names a detail whose value is added to the class (one class per metric)."""

    name: str
    label: str
    code: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    qualifier: str = ""
    message_regex: str = ""
    http_status_min: int | None = None
    http_status_max: int | None = None

    def matches(self, message: str, failure: Mapping[str, Any] | None) -> bool:
        if failure is not None and self.code:
            if not any(fnmatch.fnmatchcase(str(failure.get("code", "")), p) for p in self.code.split()):
                return False
            details = failure.get("details") or {}
            if any(details.get(key) != value for key, value in self.details.items()):
                return False
            if self.http_status_min is not None or self.http_status_max is not None:
                status = details.get("status")
                low, high = self.http_status_min or 0, self.http_status_max or 999
                if not isinstance(status, int) or not low <= status <= high:
                    return False
            return True
        # An imported result (no structured failure), or a rule that only has a regex.
        return bool(self.message_regex) and _searched(self.message_regex, message)

    def class_name(self, failure: Mapping[str, Any] | None) -> str:
        if self.qualifier and failure:
            value = (failure.get("details") or {}).get(self.qualifier)
            if value is not None:
                return f"{self.name}:{str(value)[:QUALIFIER_CHARS]}"
        return self.name


# Most specific first. Rules with a code classify probe failures; those with only a regex
# classify what imported tools wrote (and probe failures no coded rule names).
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule(
        "ws-closed-1000-after-send",
        "WebSocket closed normally (1000) right after send",
        code="ws.closed",
        details={"close_code": 1000, "initiator": "server", "after_send": True},
    ),
    Rule(
        "ws-1011-server-error",
        "WebSocket closed with 1011 internal error",
        code="ws.closed",
        details={"close_code": 1011},
    ),
    Rule(
        "ws-1008-policy", "WebSocket closed with 1008 policy violation", code="ws.closed", details={"close_code": 1008}
    ),
    Rule(
        "connection-closed",
        "Connection closed before the expected frames",
        code="ws.closed sse.closed",
        qualifier="close_code",
    ),
    Rule(
        "message-too-big",
        "Message over the size limit",
        code="*.too_large",
        message_regex=r"too large|exceeds \d+ bytes|payload size",
    ),
    Rule("ws-handshake-rejected", "WebSocket handshake rejected", code="ws.handshake_rejected", qualifier="status"),
    Rule("frame-missing", "Expected frame missing", code="ws.frame_missing sse.event_missing"),
    Rule("frame-out-of-order", "Frames out of order", code="ws.out_of_order sse.out_of_order"),
    Rule("forbidden-frame", "Forbidden frame received", code="ws.forbidden_frame sse.forbidden_event"),
    Rule("unexpected-frame", "Unexpected frame in a strict sequence", code="ws.unexpected_frame sse.unexpected_event"),
    Rule("not-json", "Answer is not the JSON expected", code="*.not_json sse.not_event_stream"),
    Rule("connect-timeout", "Connect timeout", code="timeout.connect", message_regex=r"connect(?:ion)? timed? ?out"),
    Rule("receive-timeout", "Receive timeout", code="timeout.*", message_regex=r"timed? ?out\b|timeout"),
    Rule("metric-over-target", "Performance target missed", code="metric.over_target", qualifier="metric"),
    Rule("auth-not-enforced", "Authentication not enforced", code="auth.not_enforced"),
    Rule("auth-rejected", "Credentials refused when asking for a token", code="auth.rejected auth.no_token"),
    Rule(
        "http-5xx",
        "HTTP 5xx from the server",
        code="http.status",
        http_status_min=500,
        http_status_max=599,
        message_regex=r"\bHTTP 5\d\d\b|\b5\d\d (?:Internal Server Error|Bad Gateway|Service Unavailable)",
    ),
    Rule("http-4xx", "Unexpected HTTP 4xx", code="http.status", http_status_min=400, http_status_max=499),
    Rule("http-status", "Unexpected HTTP status", code="http.status"),
    Rule(
        "response-mismatch",
        "Response does not match",
        code="http.json_mismatch http.header_mismatch http.body_mismatch http.schema http.time *.save_missing "
        "ws.close_code ws.not_closed ws.handshake_accepted",
    ),
    Rule(
        "dns-failure", "DNS failure", code="net.dns", message_regex=r"name or service not known|getaddrinfo|ENOTFOUND"
    ),
    Rule(
        "connection-refused", "Connection refused", code="net.refused", message_regex=r"connection refused|ECONNREFUSED"
    ),
    Rule(
        "connection-reset",
        "Connection reset by the server",
        code="net.reset",
        message_regex=r"connection reset|ECONNRESET",
    ),
    Rule("tls-error", "TLS error", code="net.tls", message_regex=r"\bTLS\b|\bSSL\b|certificate verify"),
    Rule("host-not-allowed", "Host outside the environment's allowlist", code="net.not_allowed"),
    Rule("network-error", "Network error", code="net.* http.protocol"),
    Rule("missing-variable", "Variable missing on the worker", code="config.*"),
    Rule("probe-error", "Probe engine error", code="probe.error"),
    Rule("assertion", "Assertion mismatch", message_regex=r"assert|expected|mismatch|!=|not equal|\bwant\b|but was"),
)


def classify(message: str, failure: Mapping[str, Any] | None, rules: Sequence[Rule] = BUILTIN_RULES) -> str:
    """The class of the first rule that matches, or ``unclassified``."""
    message = message or ""
    for rule in rules:
        if rule.matches(message, failure):
            return rule.class_name(failure)
    return UNCLASSIFIED


def label_of(failure_class: str, labels: Mapping[str, str]) -> str:
    """The label of a class; a qualified class (``metric-over-target:API Response Time``)
    takes its rule's label followed by the qualifier."""
    if failure_class in labels:
        return labels[failure_class]
    base, _, qualifier = failure_class.partition(":")
    if qualifier and base in labels:
        return f"{labels[base]}: {qualifier}"
    return failure_class


def websocket_records(evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in evidence.get("connections") or [] if isinstance(c, dict) and c.get("type") == "websocket"]


def close_codes(evidence: Mapping[str, Any]) -> set[int]:
    return {r["close_code"] for r in websocket_records(evidence) if isinstance(r.get("close_code"), int)}
