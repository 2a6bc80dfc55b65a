"""``expect_close``: the server must close the WebSocket, with one of ``code`` if given.

Codes: ws.not_closed, ws.close_code.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from probes.channels import WebSocketChannel
from probes.failures import StepFailed
from probes.steps.base import StepDone, StepKind
from probes.suite.fields import ConnectionName, Seconds, Strict

if TYPE_CHECKING:
    from probes.runtime import StepContext


class ExpectCloseOptions(Strict):
    code: int | list[int] | None = None
    within_s: Seconds = Field(5.0)
    on: ConnectionName | None = Field(None, description="the connection; default: ws, or the only one open")


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options: ExpectCloseOptions = step.expect_close or ExpectCloseOptions()
    channel = ctx.channel(options.on, WebSocketChannel)
    deadline = min(ctx.deadline, time.perf_counter() + options.within_s)
    try:
        closed = channel.closed or await channel.wait_closed(deadline)
    except TimeoutError:
        raise StepFailed(
            "ws.not_closed", f"the server did not close {channel.name!r} within {options.within_s:g} s"
        ) from None
    ctx.channels.pop(channel.name, None)
    codes = options.code if isinstance(options.code, list) else [options.code] if options.code is not None else []
    who = "the server" if closed.initiator == "server" else "the probe"
    if closed.initiator != "server" or (codes and closed.code not in codes):
        expected = " or ".join(str(c) for c in codes) if codes else "a close by the server"
        raise StepFailed(
            "ws.close_code",
            f"{channel.name!r} was closed by {who} with code {closed.code} ({closed.reason or 'no reason'}), "
            f"expected {expected}",
            close_code=closed.code,
            initiator=closed.initiator,
        )
    return StepDone(f"closed by the server with code {closed.code}, as expected")


KIND = StepKind(
    name="expect_close",
    options=ExpectCloseOptions | None,
    run=run,
    codes=("ws.not_closed", "ws.close_code"),
    uses="websocket",
    describe=lambda options: f"on {options.on}" if options and options.on else "",
)
