"""What the importers produce: one ImportedCase per test, whatever the file format."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

MAX_TEXT = 10_000
MAX_NODE_ID = 500
MAX_DURATION_S = 86_400.0  # a single test longer than a day is a broken file, not a result


class ImportFailed(ValueError):
    """The file cannot be imported; the message says why and where. Nothing was stored."""


@dataclass(frozen=True, slots=True)
class ImportedCase:
    suite: str  # the file's suite name (testsuite / module), used to pick a category
    classname: str
    name: str
    outcome: str  # passed | failed | error | skipped
    duration_s: float
    message: str = ""
    # The failure's own one-line message when the file gives it apart from the trace (JUnit's
    # message attribute); classified first, see runs.importers._classifier.
    headline: str = ""
    key: str = field(init=False)  # the node id as stored, see stored_node_id()

    def __post_init__(self) -> None:
        node_id = f"{self.classname}::{self.name}" if self.classname else self.name
        object.__setattr__(self, "key", stored_node_id(node_id))


def stored_node_id(node_id: str) -> str:
    """The node id as stored (TestCase.node_id holds 500 characters): a longer one is cut
    and given a digest of the whole, so it stays unique and matches on re-import."""
    if len(node_id) <= MAX_NODE_ID:
        return node_id
    return node_id[: MAX_NODE_ID - 17] + "#" + hashlib.sha1(node_id.encode()).hexdigest()[:16]


def clip(text: str | None, limit: int = MAX_TEXT) -> str:
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated: {len(text)} characters in all]"


def duration(raw: object, where: str) -> float:
    """A test's duration in seconds; refuse what no real run can produce."""
    if raw in (None, ""):
        return 0.0
    try:
        value = float(str(raw).replace(",", ""))
    except ValueError:
        raise ImportFailed(f"{where}: time {raw!r} is not a number") from None
    if math.isnan(value) or math.isinf(value) or value < 0 or value > MAX_DURATION_S:
        raise ImportFailed(f"{where}: time {raw!r} is not a duration between 0 and {MAX_DURATION_S:g} s")
    return value
