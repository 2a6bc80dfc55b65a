"""What a step kind declares: its options model, the keys allowed beside it, the failure
codes it raises, what connections it opens or uses, and the function that runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.runtime import StepContext


@dataclass
class StepDone:
    """A step that passed: a few words for traces and success messages, and the duration to
    use for ``of:`` metrics when it is not the step's wall time (a ping's round trip)."""

    summary: str
    duration_ms: float | None = None


Run = Callable[[Any, "StepContext", dict[str, Any]], Awaitable[StepDone]]


@dataclass(frozen=True)
class StepKind:
    name: str
    options: Any  # the type of the value under the kind's key
    run: Run
    codes: tuple[str, ...]
    siblings: dict[str, Any] = field(default_factory=dict)  # request: expect, save
    opens: str | None = None  # "websocket" | "sse": opens the connection named by `as`
    uses: str | None = None  # "websocket" | "any": works on the connection named by `on`
    declares: str | None = None  # the evidence dimension it shows: "http", "ws" or "sse"
    describe: Callable[[Any], str] = lambda options: ""  # a few words on what it does, for traces
