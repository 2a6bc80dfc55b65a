"""WebSocket checks of the golden path."""

from __future__ import annotations

import uuid

from probes.base import CheckFailed, CheckSpec, Evidence, ProbeContext
from probes.ws.session import AGENT_EVENTS, WebSocketSession, check_event_order


def user_message(thread_id: str) -> dict[str, str]:
    return {"type": "user_message", "thread_id": thread_id, "content": "Golden path probe: say hello."}


async def check_ws_connect(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    """An authenticated handshake completes and answers a ping; an anonymous one is refused."""
    try:
        async with WebSocketSession(
            ctx, evidence, key="websocket_anonymous", authenticate=False, timeout_s=spec.timeout_s
        ):
            raise CheckFailed("WebSocket handshake without a token was accepted: auth is not enforced")
    except CheckFailed as exc:
        status = evidence["websocket_anonymous"].get("handshake_status")
        if status not in (401, 403):
            raise exc
    evidence["auth_enforced"] = True
    async with WebSocketSession(ctx, evidence, timeout_s=spec.timeout_s) as ws:
        ping = await ws.ping_ms()
        ws.record["ping_ms"] = ping
    return (
        f"handshake completed in {ws.record['handshake_ms']:.1f} ms, ping {ping:.2f} ms; "
        f"anonymous handshake refused with {status}"
    )


async def check_ws_send(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    """The server keeps the connection open after a user message and answers it."""
    async with WebSocketSession(ctx, evidence, timeout_s=spec.timeout_s) as ws:
        await ws.send_json(user_message(uuid.uuid4().hex))
        reply = await ws.recv_json("the first reply to a user message")
    return f"server answered the first message with {reply.get('type')!r}"


async def check_ws_events(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    """A user message yields the 5 agent events, in order."""
    thread_id = uuid.uuid4().hex
    async with WebSocketSession(ctx, evidence, timeout_s=spec.timeout_s) as ws:
        await ws.send_json(user_message(thread_id))
        seen = await ws.collect_agent_events(thread_id)
    check_event_order(seen)
    return f"all {len(AGENT_EVENTS)} agent events received in order"


async def check_ws_fanout(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    """Another session subscribed to the thread receives the agent events in real time."""
    thread_id = uuid.uuid4().hex
    async with WebSocketSession(ctx, evidence, key="websocket_subscriber", timeout_s=spec.timeout_s) as subscriber:
        await subscriber.send_json({"type": "subscribe", "thread_id": thread_id})
        ack = await subscriber.recv_json("the subscription acknowledgement")
        if ack.get("type") != "subscribed":
            raise CheckFailed(f"subscription not acknowledged: got {ack.get('type')!r}")
        async with WebSocketSession(ctx, evidence, timeout_s=spec.timeout_s) as sender:
            await sender.send_json(user_message(thread_id))
            seen = await subscriber.collect_agent_events(thread_id)
    check_event_order(seen)
    return f"subscriber received all {len(AGENT_EVENTS)} agent events of another session, in order"
