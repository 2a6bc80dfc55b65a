"""``close``: close a connection (WebSocket with ``code`` and ``reason``, or an event stream)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from probes.channels import WebSocketChannel
from probes.steps.base import StepDone, StepKind
from probes.suite.fields import ConnectionName, Strict

if TYPE_CHECKING:
    from probes.runtime import StepContext


class CloseOptions(Strict):
    on: ConnectionName | None = Field(None, description="the connection; default: ws, or the only one open")
    code: int = Field(1000, ge=1000, le=4999)
    reason: str = ""


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options: CloseOptions = step.close or CloseOptions()
    name = ctx.channel_name(options.on)
    channel = ctx.channels.pop(name, None)
    if channel is None:
        return StepDone(f"{name!r} was already closed")
    if isinstance(channel, WebSocketChannel):
        await channel.close(options.code, str(ctx.render(options.reason)))
    else:
        await channel.aclose()
    return StepDone(f"closed {name!r}")


KIND = StepKind(
    name="close",
    options=CloseOptions | None,
    run=run,
    codes=(),
    uses="any",
    describe=lambda options: f"{(options and options.on) or ''}",
)
