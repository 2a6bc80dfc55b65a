"""The plain data the analysis functions read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
FAILING = (FAILED, ERROR)


@dataclass(slots=True)  # not frozen: an import builds 100,000 of these, and frozen costs 3x
class ResultFacts:
    name: str
    category: str
    outcome: str
    duration_s: float
    critical: bool = False
    message: str = ""
    node_id: str = ""
    declares: str = ""  # what evidence its steps can show ("http ws auth"); "" when imported
    impact: tuple[str, ...] = ()
    failure_class: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None  # epoch seconds
    finished_at: float | None = None

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING


@dataclass(frozen=True)
class MetricFacts:
    key: str
    name: str
    target: float
    p50: float | None
    p95: float | None
    ok: bool | None
    unit: str = "ms"
