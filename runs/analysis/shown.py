"""What a page shows of a list that can be as long as a file made it: at most a fixed
number of items and the count of the rest, so no import can make a page weigh megabytes
(a file of 10,000 one-case suites made the run page 12 MB). Pages say "and N more" and
link to where the rest can be read."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

NAMES_SHOWN = 10  # names written out in a sentence


@dataclass(frozen=True)
class Shown(Generic[T]):
    items: list[T]
    more: int  # how many were left out

    @property
    def total(self) -> int:
        return len(self.items) + self.more


def top(items: Sequence[T], limit: int, rank: Callable[[T], float] | None = None) -> Shown[T]:
    """The first ``limit`` items; with ``rank``, the ``limit`` ranked highest (on a tie the
    earlier one), still in their given order, so a long table reads like the short one it
    would be: the same rows in the same places, the quiet ones counted instead of listed."""
    if len(items) <= limit:
        return Shown(list(items), 0)
    if rank is None:
        return Shown(list(items[:limit]), len(items) - limit)
    chosen = sorted(heapq.nlargest(limit, range(len(items)), key=lambda i: rank(items[i])))
    return Shown([items[i] for i in chosen], len(items) - limit)


def listed(names: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """Names for a sentence: "A", "A and B", "A, B and C", or "A, B, … and 1,426 more";
    "" for none."""
    if not names:
        return ""
    shown = top(names, limit)
    if shown.more:
        return ", ".join(shown.items) + f" and {shown.more:,} more"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
