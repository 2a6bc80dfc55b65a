"""PASS / PARTIAL SUCCESS / FAIL for a run."""

from __future__ import annotations

from collections.abc import Sequence

from runs.analysis.facts import FAILING, PASSED, SKIPPED, ResultFacts

PASS, PARTIAL, FAIL = "PASS", "PARTIAL SUCCESS", "FAIL"
DEFAULT_MIN_PASS_RATE = 0.5


def compute_verdict(results: Sequence[ResultFacts], min_pass_rate: float = DEFAULT_MIN_PASS_RATE) -> str:
    """PASS when every executed check passed; FAIL when a check in a critical category
    failed, or fewer than ``min_pass_rate`` of the executed checks passed, or nothing ran;
    PARTIAL SUCCESS otherwise (the seed: connectivity and auth up, message flow down).
    """
    executed = [r for r in results if r.outcome != SKIPPED]
    if not executed:
        return FAIL
    failing = [r for r in executed if r.outcome in FAILING]
    if not failing:
        return PASS
    if any(r.critical for r in failing):
        return FAIL
    passed = sum(1 for r in executed if r.outcome == PASSED)
    return FAIL if passed / len(executed) < min_pass_rate else PARTIAL
