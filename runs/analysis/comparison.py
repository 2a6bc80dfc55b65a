"""Compare two runs: what broke, what was fixed, what still fails, what got slower."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from runs.analysis.facts import FAILING, PASSED, MetricFacts

REGRESSION_RATIO = 1.2  # 20 % slower …
REGRESSION_MIN_MS = 5.0  # … and at least 5 ms, so loopback noise is not a regression


class Compared(Protocol):
    """What a comparison reads of a result (a ResultFacts has it; the compare page loads only
    this)."""

    @property
    def name(self) -> str: ...

    @property
    def node_id(self) -> str: ...

    @property
    def outcome(self) -> str: ...


@dataclass(frozen=True)
class Regression:
    key: str
    name: str
    before: float
    after: float


@dataclass(frozen=True)
class Comparison:
    new_failures: list[str]
    fixed: list[str]
    still_failing: list[str]
    added: list[str]
    removed: list[str]
    regressions: list[Regression]


def compare_runs(
    before: Sequence[Compared],
    after: Sequence[Compared],
    before_metrics: Sequence[MetricFacts] = (),
    after_metrics: Sequence[MetricFacts] = (),
    ratio: float = REGRESSION_RATIO,
    min_ms: float = REGRESSION_MIN_MS,
) -> Comparison:
    """Results are matched by node id; metrics by key, comparing p95."""
    old = {r.node_id: r for r in before}
    new = {r.node_id: r for r in after}
    common = [k for k in new if k in old]
    old_p95 = {m.key: m.p95 for m in before_metrics}
    regressions = []
    for m in after_metrics:
        before_p95 = old_p95.get(m.key)
        if before_p95 is None or m.p95 is None:
            continue
        if m.p95 > before_p95 * ratio and m.p95 - before_p95 >= min_ms:
            regressions.append(Regression(m.key, m.name, before_p95, m.p95))

    return Comparison(
        new_failures=[new[k].name for k in common if new[k].outcome in FAILING and old[k].outcome not in FAILING],
        fixed=[new[k].name for k in common if old[k].outcome in FAILING and new[k].outcome == PASSED],
        still_failing=[new[k].name for k in common if old[k].outcome in FAILING and new[k].outcome in FAILING],
        added=[new[k].name for k in new if k not in old],
        removed=[old[k].name for k in old if k not in new],
        regressions=regressions,
    )
