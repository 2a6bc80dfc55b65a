"""The category table of a run report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runs.analysis.facts import FAILING, PASSED, SKIPPED, ResultFacts
from runs.analysis.shown import top


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
    Results are grouped in one pass: 10,000 categories must not cost 10,000 passes.
    """
    groups: dict[str, list[ResultFacts]] = {}
    for result in results:
        groups.setdefault(result.category, []).append(result)
    names = [name for name in dict.fromkeys(order) if name in groups]
    named = set(names)
    names += [name for name in groups if name not in named]
    rows = [_row(name, groups[name], any(r.critical for r in groups[name])) for name in names]
    return rows, _row("TOTAL", results)


def most_failing(rows: Sequence[CategoryRow], limit: int) -> tuple[list[CategoryRow], CategoryRow | None]:
    """At most ``limit`` rows, those with the most failures, in their order; the rest summed
    up in one row named "N more categories" (None when nothing is left out)."""
    shown = top(rows, limit, rank=lambda row: row.failed)
    if not shown.more:
        return shown.items, None
    kept = {id(row) for row in shown.items}
    rest = [row for row in rows if id(row) not in kept]
    return shown.items, CategoryRow(
        name=more_categories(shown.more),
        total=sum(r.total for r in rest),
        passed=sum(r.passed for r in rest),
        failed=sum(r.failed for r in rest),
        skipped=sum(r.skipped for r in rest),
        duration_s=round(sum(r.duration_s for r in rest), 3),
        critical=any(r.critical for r in rest),
    )


def more_categories(count: int) -> str:
    """The name of the row that sums up the categories a table or chart leaves out."""
    return f"{count:,} more categor{'y' if count == 1 else 'ies'}"
