"""The "critical metrics" block of a report, derived from results as the suite defines it.

A suite file lists each metric with the checks it covers and what it counts:
``checks`` (passing checks), ``requests`` (HTTP requests answered 2xx, out of those the
checks define) or ``measurements`` (performance targets met, out of those defined).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runs.analysis.facts import MetricFacts, ResultFacts


@dataclass(frozen=True)
class CriticalMetric:
    name: str
    passed: int
    total: int
    detail: str = ""

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None

    @property
    def ok(self) -> bool | None:
        return None if not self.total else self.passed == self.total


def critical_metrics(
    definitions: Sequence[Mapping[str, Any]],
    results: Sequence[ResultFacts],
    metrics: Sequence[MetricFacts] = (),
    defined_requests: Mapping[str, int] | None = None,
) -> list[CriticalMetric]:
    by_id = {r.node_id: r for r in results}
    rows = []
    for definition in definitions:
        counts = definition.get("count", "checks")
        covered = [by_id[c] for c in definition.get("checks", []) if c in by_id]
        if counts == "measurements":
            measured = [m for m in metrics if m.p95 is not None]
            detail = f"{len(metrics) - len(measured)} not measured" if len(measured) < len(metrics) else ""
            rows.append(CriticalMetric(definition["name"], sum(1 for m in metrics if m.ok), len(metrics), detail))
        elif counts == "requests":
            answered = sum(
                1 for r in covered for req in r.evidence.get("requests", []) if 200 <= (req.get("status") or 0) < 300
            )
            total = sum(
                max((defined_requests or {}).get(r.node_id, 0), len(r.evidence.get("requests", []))) for r in covered
            )
            rows.append(CriticalMetric(definition["name"], answered, total, "endpoints answering"))
        else:
            failing = [r.name for r in covered if r.failing]
            detail = f"failing: {', '.join(failing)}" if failing else ""
            rows.append(
                CriticalMetric(
                    definition["name"],
                    sum(1 for r in covered if r.outcome == "passed"),
                    len([r for r in covered if r.outcome != "skipped"]),
                    detail,
                )
            )
    return [row for row in rows if row.total]  # a metric none of whose checks ran says nothing
