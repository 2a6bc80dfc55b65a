"""Mock indicators: evidence that a "passing" check may never have touched the network.

Per result: near-zero duration, no network evidence where the check's steps declare
network, faster than the round trip to the host measured in the same run. Per run:
measurements identical across recent runs (constants in test code), auth never enforced.
The realness score counts the evidence dimensions a run shows. Everything is read from the
generic evidence (probes/evidence.py) and what a check's steps declare (``http``, ``ws``,
``sse``, ``auth``), never from knowing a check by name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runs.analysis.classification import websocket_records
from runs.analysis.facts import ResultFacts

NEAR_ZERO_S = 0.001
REAL_THRESHOLD = 0.6
CONSTANT_RUNS = 3
NETWORK = frozenset({"http", "ws", "sse"})

NEAR_ZERO = "near-zero-duration"
NO_NETWORK = "no-network-evidence"
FASTER_THAN_RTT = "faster-than-round-trip"
CONSTANT = "constant-across-runs"
NO_AUTH = "auth-never-enforced"

INDICATOR_LABELS = {
    NEAR_ZERO: "Finished in under 1 ms",
    NO_NETWORK: "No network evidence",
    FASTER_THAN_RTT: "Faster than the measured round trip to the host",
    CONSTANT: "Measurement identical across runs (looks hard-coded)",
    NO_AUTH: "Authentication never seen enforced",
}

DIMENSIONS = (
    ("dns", "DNS resolution"),
    ("tcp_connect", "TCP connect"),
    ("tls", "TLS handshake"),
    ("http_timing", "HTTP timing"),
    ("ws_handshake", "WebSocket handshake"),
    ("headers", "Response headers"),
    ("network_io", "Network I/O"),
    ("auth", "Auth enforcement"),
    ("concurrency", "Concurrent execution"),
)


def _requests(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in evidence.get("requests") or [] if isinstance(r, dict)]


def _connections(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in evidence.get("connections") or [] if isinstance(c, dict)]


def declared(result: ResultFacts) -> set[str]:
    return set(result.declares.split())


def has_network_evidence(evidence: dict[str, Any]) -> bool:
    return any(r.get("status") for r in _requests(evidence)) or any(
        c.get("handshake_status") for c in _connections(evidence)
    )


def round_trip_ms(results: Sequence[ResultFacts]) -> float | None:
    """The fastest connection set-up seen in the run: no real check can beat it."""
    results = [f for f in results if f.evidence]  # an import's 100,000 results have none
    times = [r["connect_ms"] for f in results for r in _requests(f.evidence) if r.get("connect_ms")]
    times += [w["handshake_ms"] for f in results for w in websocket_records(f.evidence) if w.get("handshake_ms")]
    return min(times) if times else None


def result_indicators(result: ResultFacts, rtt_ms: float | None) -> list[str]:
    """Indicators for one passing result (a failure is already suspicious in its own way)."""
    if result.outcome != "passed":
        return []
    flags = []
    if result.duration_s < NEAR_ZERO_S:
        flags.append(NEAR_ZERO)
    if declared(result) & NETWORK and not has_network_evidence(result.evidence):
        flags.append(NO_NETWORK)
    if rtt_ms is not None and result.duration_s * 1000 < rtt_ms:
        flags.append(FASTER_THAN_RTT)
    return flags


def constant_measurements(history: Mapping[str, Sequence[float | None]], runs: int = CONSTANT_RUNS) -> list[str]:
    """Metric keys whose value was exactly the same in each of the last ``runs`` runs.

    ``history`` maps a metric to its values, newest first (this run included).
    """
    constant = []
    for key, values in history.items():
        recent = list(values[:runs])
        if len(recent) == runs and recent[0] is not None and all(v == recent[0] for v in recent):
            constant.append(key)
    return constant


def auth_enforced(results: Sequence[ResultFacts]) -> bool:
    return any(f.evidence.get("auth_enforced") for f in results)


def auth_never_enforced(results: Sequence[ResultFacts]) -> bool:
    """No check saw the service refuse a missing or bad credential, though one could have
    (a check with a step that expects a refusal ran, or the results declare nothing —
    imported runs)."""
    could_see = any("auth" in declared(f) or not f.declares for f in results)
    return bool(results) and could_see and not auth_enforced(results)


def run_indicators(
    measurement_history: Mapping[str, Sequence[float | None]], auth_not_enforced: bool
) -> list[dict[str, str]]:
    """The run-level indicators as stored on a run: constant measurements, then auth."""
    flags = [{"indicator": CONSTANT, "metric": key} for key in constant_measurements(measurement_history)]
    if auth_not_enforced:
        flags.append({"indicator": NO_AUTH})
    return flags


def overlapping(results: Sequence[ResultFacts]) -> bool:
    """Whether any two results ran at the same time (checks run concurrently on a worker)."""
    spans = sorted((f.started_at, f.finished_at) for f in results if f.started_at and f.finished_at)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def dimensions_seen(results: Sequence[ResultFacts]) -> dict[str, bool]:
    with_evidence = [f for f in results if f.evidence]
    requests = [r for f in with_evidence for r in _requests(f.evidence)]
    sockets = [c for f in with_evidence for c in _connections(f.evidence)]
    return {
        "dns": any(r.get("dns_ms") is not None for r in requests + sockets),
        "tcp_connect": any(r.get("connect_ms") for r in requests),
        "tls": any(r.get("tls_ms") for r in requests),
        "http_timing": any(r.get("first_byte_ms") for r in requests),
        "ws_handshake": any(w.get("handshake_ms") for w in sockets if w.get("type") == "websocket"),
        "headers": any(r.get("headers_seen") for r in requests + sockets),
        "network_io": any(r.get("bytes_in") or r.get("bytes_out") for r in requests + sockets),
        "auth": auth_enforced(results),
        "concurrency": overlapping(results),
    }


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def applicable_dimensions(results: Sequence[ResultFacts]) -> list[str]:
    """The dimensions the checks that ran could show: a WebSocket-only rerun cannot show
    HTTP timing, plain http:// cannot show TLS. Results that declare nothing (imported)
    could show anything, so every dimension applies to them."""
    if any(not f.declares for f in results):
        return [key for key, _ in DIMENSIONS]
    kinds = set().union(*(declared(f) for f in results)) if results else set()
    keys = set()
    if kinds & {"http", "sse"}:
        keys |= {"dns", "tcp_connect", "http_timing", "headers", "network_io"}
    if "ws" in kinds:
        keys |= {"dns", "ws_handshake", "headers", "network_io"}
    if "auth" in kinds:
        keys.add("auth")
    urls = [r.get("url", "") for f in results if f.evidence for r in _requests(f.evidence) + _connections(f.evidence)]
    if any(u.startswith(("https:", "wss:")) for u in urls):
        keys.add("tls")
    if urls and all(_is_address(urlsplit(u).hostname or "") for u in urls):
        keys.discard("dns")  # every URL names an address: there was nothing to look up
    if len(results) > 1:
        keys.add("concurrency")
    return [key for key, _ in DIMENSIONS if key in keys]


@dataclass(frozen=True)
class Realness:
    score: float
    seen: dict[str, bool]  # applicable dimension → seen

    @property
    def verdict(self) -> str:
        return "REAL" if self.score >= REAL_THRESHOLD else "SUSPECT"

    @property
    def confirmed(self) -> list[str]:
        return [label for key, label in DIMENSIONS if self.seen.get(key)]

    @property
    def missing(self) -> list[str]:
        return [label for key, label in DIMENSIONS if key in self.seen and not self.seen[key]]


def realness(results: Sequence[ResultFacts]) -> Realness:
    """Share of the applicable evidence dimensions that the run's evidence shows."""
    seen_all = dimensions_seen(results)
    seen = {key: seen_all[key] for key in applicable_dimensions(results)}
    return Realness(round(sum(seen.values()) / len(seen), 3) if seen else 0.0, seen)
