"""``send``: one WebSocket text frame, ``{json: …}`` (written as compact JSON) or ``{text: "…"}``.

Codes: ws.closed (the peer had closed).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from probes.channels import ChannelClosed, WebSocketChannel, closed_failure
from probes.steps.base import StepDone, StepKind
from probes.suite.fields import ConnectionName, Strict

if TYPE_CHECKING:
    from probes.runtime import StepContext


class SendOptions(Strict):
    json_: Any = Field(None, alias="json")
    text: str | None = None
    on: ConnectionName | None = Field(None, description="the connection; default: ws, or the only one open")

    @model_validator(mode="after")
    def _one_payload(self) -> SendOptions:
        if (self.json_ is None) == (self.text is None):
            raise ValueError("give exactly one of json and text")
        return self


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options: SendOptions = step.send
    channel = ctx.channel(options.on, WebSocketChannel)
    if options.text is not None:
        payload = str(ctx.render(options.text))
    else:
        payload = json.dumps(ctx.render(options.json_), separators=(",", ":"), ensure_ascii=False)
    try:
        await channel.send(payload)
    except ChannelClosed as closed:
        raise closed_failure(channel, closed, "before the message was sent") from None
    return StepDone(f"sent {len(payload.encode())} bytes on {channel.name!r}")


KIND = StepKind(
    name="send",
    options=SendOptions,
    run=run,
    codes=("ws.closed",),
    uses="websocket",
    describe=lambda options: f"on {options.on}" if options.on else "",
)
