"""Revenue at risk: the MRR of business capabilities whose checks fail, each counted once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runs.analysis.facts import ResultFacts


@dataclass(frozen=True)
class ImpactArea:
    name: str
    mrr: int
    failing_checks: tuple[str, ...]
    passing_checks: tuple[str, ...]


@dataclass(frozen=True)
class MrrAtRisk:
    total: int
    in_scope: int
    at_risk: list[ImpactArea]  # HIGH impact: at least one failing check
    working: list[ImpactArea]  # LOW impact: every check of the tag passed


def mrr_at_risk(results: Sequence[ResultFacts], tag_mrr: Mapping[str, int]) -> MrrAtRisk:
    """The capabilities these results name, at risk or working. Results are grouped by tag
    in one pass (a pass per tag would cost tags × results steps)."""
    executed: dict[str, list[ResultFacts]] = {}
    for result in results:
        for tag in result.impact:
            checks = executed.setdefault(tag, [])
            if result.outcome != "skipped":
                checks.append(result)
    areas = []
    for tag in sorted(executed, key=lambda t: (-tag_mrr.get(t, 0), t)):
        tagged = executed[tag]
        areas.append(
            ImpactArea(
                name=tag,
                mrr=tag_mrr.get(tag, 0),
                failing_checks=tuple(r.name for r in tagged if r.failing),
                passing_checks=tuple(r.name for r in tagged if not r.failing),
            )
        )
    at_risk = [a for a in areas if a.failing_checks]
    working = [a for a in areas if not a.failing_checks and a.passing_checks]
    return MrrAtRisk(
        total=sum(a.mrr for a in at_risk),
        in_scope=sum(a.mrr for a in areas),
        at_risk=at_risk,
        working=working,
    )
