"""Flakiness: how often a test's outcome flips between consecutive runs."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_WINDOW = 20
FLAKY_FLIP_RATE = 0.2
MIN_RUNS = 4


def flip_rate(outcomes: Sequence[str]) -> float:
    """Share of consecutive pairs whose pass/fail state differs (skipped runs are left out)."""
    states = [o == "passed" for o in outcomes if o != "skipped"]
    if len(states) < 2:
        return 0.0
    flips = sum(1 for a, b in zip(states, states[1:], strict=False) if a != b)
    return round(flips / (len(states) - 1), 3)


def is_flaky(outcomes: Sequence[str], threshold: float = FLAKY_FLIP_RATE, min_runs: int = MIN_RUNS) -> bool:
    """Flaky: enough history, and it flips at least ``threshold`` of the time.

    A test that always fails (or always passes) never flips, so it is not flaky.
    """
    executed = [o for o in outcomes if o != "skipped"]
    return len(executed) >= min_runs and flip_rate(executed) >= threshold
