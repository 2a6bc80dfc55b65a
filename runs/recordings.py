"""Real outcomes of a suite's checks against the bundled target, in the fault modes a
generated history needs (``generate_history`` replays them). Recorded once per process and
suite version: a few seconds of real probe runs on loopback."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

from probes.engine import CheckOutcome, run_checks
from probes.metrics import MeasuredMetric
from probes.net import NetworkPolicy
from probes.runtime import RunTarget
from probes.suite.model import Check
from probes.suite.model import Suite as SuiteModel
from probes.target.server import TargetServer
from runs import bulk
from runs.analysis.facts import PASSED


class RecordingFailed(RuntimeError):
    """The suite cannot be recorded: a check fails against the healthy target."""


@dataclass(frozen=True)
class Mode:
    """A way of running the suite against the bundled target: its fault modes (None: a
    port nothing listens on), how many runs to record, and whether only the checks with
    metrics are kept (the rest of such a run is not replayed)."""

    name: str
    faults: tuple[str, ...] | None
    recordings: int
    metric_checks_only: bool = False


HEALTHY = Mode("healthy", ("healthy",), 3)
WS_CLOSED = Mode("ws-closed", ("close-after-send",), 2)  # the seed report's failure
EVENTS_MISSING = Mode("events-missing", ("events-missing",), 1)  # the flaky check's failure
SLOW = Mode("slow", ("latency=150",), 1, metric_checks_only=True)  # a performance target missed
SLOW_WS_CLOSED = Mode("slow-ws-closed", ("close-after-send", "latency=150"), 1, metric_checks_only=True)
REFUSED = Mode("refused", None, 2)  # an outage: connection refused everywhere
MODES = (HEALTHY, WS_CLOSED, EVENTS_MISSING, SLOW, SLOW_WS_CLOSED, REFUSED)
RECORD_ATTEMPTS = 3  # a recording spoiled by this machine's load is made again (see spoiled)
MISSED_TARGET = "metric.over_target"  # the engine's failure code


@dataclass
class Recorded:
    """One check's outcome in one recorded run, kept in the form its results are stored."""

    outcome: str
    duration_s: float
    offset_s: float  # after the first check of its run started
    message: str
    failure: dict[str, Any] | None
    evidence: dict[str, Any]
    evidence_json: str
    attempts: int
    metrics: list[MeasuredMetric]

    @classmethod
    def of(cls, outcome: CheckOutcome, first_started_at: float) -> Recorded:
        return cls(
            outcome.outcome,
            outcome.duration_s,
            max(0.0, outcome.started_at - first_started_at),
            outcome.message,
            outcome.failure,
            outcome.evidence,
            bulk.json_value(outcome.evidence),  # replayed by many results: encoded once
            outcome.attempts,
            outcome.metrics,
        )


Recordings = dict[str, list[dict[str, Recorded]]]  # mode name → recorded runs → check id → outcome
_RECORDED: dict[str, Recordings] = {}  # by version digest: the tests generate several times


def run_once(model: SuiteModel, mode: Mode) -> dict[str, Recorded]:
    """Run the suite (or its checks with metrics) against the bundled target in ``mode``."""
    checks = [c for c in model.checks if c.metrics or not mode.metric_checks_only]
    if mode.faults is None:  # a port that was just free: connection refused
        server = TargetServer()
        server.start()
        server.stop()
        return record_run(model, checks, server.base_url)
    with TargetServer(list(mode.faults)) as server:
        return record_run(model, checks, server.base_url)


def record_run(model: SuiteModel, checks: list[Check], base_url: str) -> dict[str, Recorded]:
    target = RunTarget(model, base_url, policy=NetworkPolicy(frozenset({TargetServer.host})), environment="history")
    with closing(run_checks(checks, target)) as outcomes:
        recorded = list(outcomes)
    first = min(o.started_at for o in recorded)
    return {o.check_id: Recorded.of(o, first) for o in recorded}


def spoiled(run: dict[str, Recorded], mode: Mode) -> bool:
    """A recording this machine's load spoiled rather than the fault: a check that fails
    against the healthy target, or misses a performance target outside the slow modes."""
    if mode is HEALTHY:
        return any(r.outcome != PASSED for r in run.values())
    return not mode.metric_checks_only and any((r.failure or {}).get("code") == MISSED_TARGET for r in run.values())


def record_mode(model: SuiteModel, mode: Mode) -> dict[str, Recorded]:
    for _ in range(RECORD_ATTEMPTS):
        run = run_once(model, mode)
        if not spoiled(run, mode):
            break
    return run


def record_suite(model: SuiteModel, digest: str) -> Recordings:
    """Every mode's recorded runs, once per process and version."""
    if digest not in _RECORDED:
        healthy = [record_mode(model, HEALTHY) for _ in range(HEALTHY.recordings)]
        for check_id, recorded in (item for run in healthy for item in run.items()):
            if recorded.outcome != PASSED:
                raise RecordingFailed(
                    f"the history replays real runs against the bundled target, and check {check_id!r} "
                    f"does not pass against it (healthy, {RECORD_ATTEMPTS} attempts): {recorded.message}"
                )
        recordings = {mode.name: [record_mode(model, mode) for _ in range(mode.recordings)] for mode in MODES[1:]}
        _RECORDED[digest] = {HEALTHY.name: healthy, **recordings}
    return _RECORDED[digest]
