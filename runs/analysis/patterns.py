"""Root-cause patterns: failures grouped by class, each explained in one readable paragraph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from urllib.parse import urlsplit

from runs.analysis.classification import UNCLASSIFIED, label_of, websocket_records
from runs.analysis.facts import ResultFacts
from runs.analysis.shown import listed

NORMAL_CLOSE_HINT = (
    " A normal closure right after a send points at the server's message handler, not at the network or authentication."
)


@dataclass(frozen=True)
class Pattern:
    failure_class: str
    label: str
    checks: tuple[str, ...]
    summary: str


def _checks(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''}"


def _working_context(results: Sequence[ResultFacts]) -> str:
    """What still worked, so the reader knows where not to look: read from the evidence of
    every result (a failing check's first steps may have worked too)."""
    connections = [c for r in results for c in r.evidence.get("connections") or [] if isinstance(c, dict)]
    requests = [q for r in results for q in r.evidence.get("requests") or [] if isinstance(q, dict)]
    working = []
    if any(c.get("type") == "websocket" and c.get("handshake_status") == 101 for c in connections):
        working.append("WebSocket connections opened")
    if any(r.evidence.get("auth_enforced") or r.evidence.get("auth") for r in results if r.outcome == "passed"):
        working.append("authentication succeeded")
    if any(200 <= (q.get("status") or 0) < 300 for q in requests):
        working.append("HTTP endpoints answered")
    if not working:
        return ""
    text = ", ".join(working)
    return text[0].upper() + text[1:] + "; "


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 0.1 else f"{value:.2f} s"


def _closing(group: Sequence[ResultFacts]) -> tuple[int | None, str, float | None]:
    records = [w for r in group for w in websocket_records(r.evidence) if w.get("close_initiator") == "server"]
    codes = [w["close_code"] for w in records if "close_code" in w]
    reasons = [w.get("close_reason", "") for w in records]
    after = [w["closed_after_send_ms"] for w in records if "closed_after_send_ms" in w]
    return (codes[0] if codes else None, reasons[0] if reasons else "", median(after) / 1000 if after else None)


def _summary(failure_class: str, label: str, group: Sequence[ResultFacts], context: str) -> str:
    """``context``: the run's _working_context."""
    affected = f"{_checks(len(group))} affected: {listed([r.name for r in group])}."
    codes = {(r.evidence.get("failure") or {}).get("code") for r in group}
    if codes & {"ws.closed", "sse.closed"}:
        code, reason, after = _closing(group)
        when = f" about {_seconds(after)} after the client's first message" if after is not None else ""
        why = NORMAL_CLOSE_HINT if code == 1000 else ""
        with_code = f" with code {code} ({reason or 'no reason'})" if code is not None else ""
        closed = f"the server closed the connection{with_code}{when}"
        return (
            f"{context}then {closed}. {affected}{why}"
            if context
            else f"{closed[0].upper()}{closed[1:]}. {affected}{why}"
        )
    if "net.refused" in codes or failure_class == "connection-refused":
        urls = [req.get("url", "") for r in group for req in r.evidence.get("requests") or []]
        urls += [c.get("url", "") for r in group for c in r.evidence.get("connections") or []]
        hosts = sorted({urlsplit(url).netloc for url in urls if url})
        where = f" at {', '.join(hosts)}" if hosts else ""
        return f"Nothing was listening{where}: connections were refused. {affected} Check the service and its URL."
    first = group[0].message.split("\n")[0][:300]
    return f"{context}{label.lower()}: “{first}”. {affected}"


def failure_patterns(results: Sequence[ResultFacts], class_labels: Mapping[str, str]) -> list[Pattern]:
    """One pattern per failure class in the run, the largest group first. What still worked
    is read once for all of them (each class reading every result's evidence again would
    cost classes × results steps)."""
    groups: dict[str, list[ResultFacts]] = {}
    for result in results:
        if result.failing:
            groups.setdefault(result.failure_class or UNCLASSIFIED, []).append(result)
    context = _working_context(results) if groups else ""
    patterns = []
    for failure_class, group in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        label = label_of(failure_class, class_labels)
        patterns.append(
            Pattern(failure_class, label, tuple(r.name for r in group), _summary(failure_class, label, group, context))
        )
    return patterns
