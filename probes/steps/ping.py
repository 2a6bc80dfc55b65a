"""``ping``: a WebSocket ping; the step's duration is the round trip (for ``of:`` metrics).

Codes: timeout.pong, ws.closed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from probes.channels import ChannelClosed, WebSocketChannel, closed_failure
from probes.failures import StepFailed
from probes.steps.base import StepDone, StepKind
from probes.suite.fields import ConnectionName, Seconds, Strict

if TYPE_CHECKING:
    from probes.runtime import StepContext


class PingOptions(Strict):
    on: ConnectionName | None = Field(None, description="the connection; default: ws, or the only one open")
    within_s: Seconds | None = None


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options: PingOptions = step.ping or PingOptions()
    channel = ctx.channel(options.on, WebSocketChannel)
    started = time.perf_counter()
    deadline = min(ctx.deadline, started + options.within_s) if options.within_s else ctx.deadline
    try:
        latency = await channel.ping(deadline)
    except TimeoutError:
        raise StepFailed("timeout.pong", f"no pong on {channel.name!r} within {deadline - started:.1f} s") from None
    except ChannelClosed as closed:
        raise closed_failure(channel, closed, "before the pong came") from None
    record["round_trip_ms"] = latency
    return StepDone(f"pong on {channel.name!r} after {latency:.2f} ms", duration_ms=latency)


KIND = StepKind(
    name="ping",
    options=PingOptions | None,
    run=run,
    codes=("timeout.pong", "ws.closed"),
    uses="websocket",
    describe=lambda options: f"on {options.on}" if options and options.on else "",
)
