"""The category table of a run report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runs.analysis.facts import FAILING, PASSED, SKIPPED, ResultFacts


@dataclass(frozen=True)
class CategoryRow:
    name: str
    total: int
    passed: int
    failed: int
    skipped: int
    duration_s: float
    critical: bool = False

    @property
    def success_rate(self) -> float | None:
        executed = self.total - self.skipped
        return self.passed / executed if executed else None


def _row(name: str, results: Sequence[ResultFacts], critical: bool = False) -> CategoryRow:
    return CategoryRow(
        name=name,
        total=len(results),
        passed=sum(1 for r in results if r.outcome == PASSED),
        failed=sum(1 for r in results if r.outcome in FAILING),
        skipped=sum(1 for r in results if r.outcome == SKIPPED),
        duration_s=round(sum(r.duration_s for r in results), 3),
        critical=critical,
    )


def category_table(results: Sequence[ResultFacts], order: Sequence[str] = ()) -> tuple[list[CategoryRow], CategoryRow]:
    """One row per category (in ``order``, then by first appearance) and the total row.

    Durations add up check time; checks run concurrently, so the run's wall time is shorter.
    """
    names = [n for n in order if any(r.category == n for r in results)]
    names += [r.category for r in results if r.category not in names]
    names = list(dict.fromkeys(names))
    rows = [
        _row(name, [r for r in results if r.category == name], any(r.critical for r in results if r.category == name))
        for name in names
    ]
    return rows, _row("TOTAL", results)
