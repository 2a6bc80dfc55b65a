"""``sleep``: wait ``ms`` milliseconds. A sleep longer than what is left of the check's
timeout fails with ``timeout.check`` when the time runs out (the engine bounds every step)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import Field

from probes.steps.base import StepDone, StepKind
from probes.suite.fields import Strict

if TYPE_CHECKING:
    from probes.runtime import StepContext


class SleepOptions(Strict):
    ms: float = Field(ge=0, le=600_000)


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    await asyncio.sleep(step.sleep.ms / 1000)
    return StepDone(f"slept {step.sleep.ms:g} ms")


KIND = StepKind(name="sleep", options=SleepOptions, run=run, codes=(), describe=lambda options: f"{options.ms:g} ms")
