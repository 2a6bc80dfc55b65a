"""The plain data the analysis functions read."""

from __future__ import annotations

from dataclasses import dataclass, field

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
FAILING = (FAILED, ERROR)


@dataclass(frozen=True)
class ResultFacts:
    name: str
    category: str
    outcome: str
    duration_s: float
    critical: bool = False
    message: str = ""
    impact: tuple[str, ...] = field(default=())
