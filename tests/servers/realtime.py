"""A market/chat feed over WebSocket and Server-Sent Events, with a JSON protocol unlike the
bundled target's (``op``/``event`` frames, channels, heartbeats), for the example suite
``probes/suites/examples/realtime.yaml``.

WebSocket ``/feed`` (and ``/legacy``, the same after a plain-text banner frame
``HELLO goldpath-realtime v1``, which is not JSON). On connect the server sends
``{"event": "welcome", "session": …, "channels": […]}``, then a ``{"event": "heartbeat"}``
frame every ``heartbeat_s``. Client operations (JSON objects):

- ``{"op": "subscribe", "channel": "prices", "id": X, "count": N}`` → ``{"event": "subscribed",
  "channel": "prices", "id": X}``, then N ticks ``{"event": "price", "channel": "prices",
  "symbol", "price", "seq": 1..N}``, each preceded by a heartbeat and a frame of another
  channel (``{"event": "trade", "channel": "trades", …}``), then ``{"event": "snapshot_end",
  "channel": "prices", "id": X, "count": N}``.
- ``{"op": "subscribe", "channel": "maintenance", "id": X}`` → ``subscribed``, two
  ``{"event": "notice", …}`` frames, then the server closes with 1012 (maintenance window).
- ``{"op": "subscribe", "channel": "chat:ROOM", "id": X}`` → ``subscribed``; from then on
  the connection receives what others publish to the room.
- ``{"op": "publish", "channel": "chat:ROOM", "text": …, "id": X}`` → ``{"event": "message",
  "channel", "text", "from"}`` to the room's other subscribers, ``{"event": "published",
  "id": X, "delivered": n}`` to the sender.
- ``{"op": "echo", "id": X, "payload": …}`` → ``{"event": "echo", "id": X, "payload": …}``.
- ``{"op": "close", "code": C, "reason": R}`` → the server closes with C.
- anything else → ``{"event": "error", "id": X, "error": …}``.

Server-Sent Events:

- ``/events``: several event types with ``id:`` and ``event:`` fields, JSON data (one of it
  on two ``data:`` lines), one plain-text event, comments; ends after ``done``.
- ``/events/short``: announces 5 prices (``hello`` with ``{"total": 5}``), sends 2, ends.
- ``/events/idle``: never ends; heartbeat events and keep-alive comments only.

``RealtimeServer`` runs it on a loopback port in a thread (``.base_url``, ``.ws_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.servers.loopback import AppServer

SERVICE = "goldpath-realtime"
BANNER = f"HELLO {SERVICE} v1"
CHANNELS = ["prices", "trades", "maintenance", "chat:*"]
TICKS = [("ACME", 101.25), ("INITECH", 55.5), ("ACME", 101.5), ("UMBRELLA", 12.75), ("INITECH", 55.25)]
MAINTENANCE_CLOSE = (1012, "maintenance window")


class _State:
    def __init__(self, tick_s: float, heartbeat_s: float) -> None:
        self.tick_s = tick_s
        self.heartbeat_s = heartbeat_s
        self.rooms: dict[str, set[_Connection]] = {}
        self.connections: set[_Connection] = set()
        self.stopping = asyncio.Event()
        self.counter = itertools.count(1)


STATE = web.AppKey("state", _State)


class _Connection:
    """One WebSocket client: a write lock (frames from several tasks never interleave), its
    chat rooms, and the tasks streaming to it."""

    def __init__(self, state: _State, ws: web.WebSocketResponse) -> None:
        self.state = state
        self.ws = ws
        self.name = f"c{next(state.counter)}"
        self.lock = asyncio.Lock()
        self.rooms: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, payload: dict[str, Any] | str) -> None:
        if self.ws.closed:
            return
        async with self.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                if isinstance(payload, str):
                    await self.ws.send_str(payload)
                else:
                    await self.ws.send_str(json.dumps(payload, separators=(",", ":")))

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def heartbeats(self) -> None:
        beat = 0
        while not self.ws.closed:
            await asyncio.sleep(self.state.heartbeat_s)
            beat += 1
            await self.send({"event": "heartbeat", "beat": beat, "ts": round(time.time(), 3)})

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return await self.send({"event": "error", "error": "frames are JSON objects"})
        if not isinstance(message, dict):
            return await self.send({"event": "error", "error": "frames are JSON objects"})
        op, ident = message.get("op"), message.get("id")
        if op == "echo":
            return await self.send({"event": "echo", "id": ident, "payload": message.get("payload")})
        if op == "close":
            code = message.get("code", 1000)
            if not isinstance(code, int) or not (code == 1000 or 3000 <= code <= 4999):
                return await self.send({"event": "error", "id": ident, "error": "close codes: 1000 or 3000-4999"})
            return await self.ws.close(code=code, message=str(message.get("reason", "")).encode())
        if op == "subscribe":
            return await self.subscribe(message.get("channel"), ident, message.get("count", 3))
        if op == "unsubscribe":
            channel = message.get("channel")
            self.leave(channel)
            return await self.send({"event": "unsubscribed", "channel": channel, "id": ident})
        if op == "publish":
            return await self.publish(message.get("channel"), message.get("text"), ident)
        await self.send({"event": "error", "id": ident, "error": f"unknown op {op!r}"})

    async def subscribe(self, channel: Any, ident: Any, count: Any) -> None:
        if channel == "prices":
            if not isinstance(count, int) or not 1 <= count <= 100:
                return await self.send({"event": "error", "id": ident, "error": "count: 1 to 100"})
            await self.send({"event": "subscribed", "channel": channel, "id": ident})
            return self.spawn(self.stream_prices(ident, count))
        if channel == "maintenance":
            await self.send({"event": "subscribed", "channel": channel, "id": ident})
            return self.spawn(self.maintenance())
        if isinstance(channel, str) and channel.startswith("chat:") and len(channel) > 5:
            self.rooms.add(channel)
            self.state.rooms.setdefault(channel, set()).add(self)
            return await self.send({"event": "subscribed", "channel": channel, "id": ident})
        await self.send({"event": "error", "id": ident, "error": f"unknown channel {channel!r}"})

    async def stream_prices(self, ident: Any, count: int) -> None:
        for seq in range(1, count + 1):
            symbol, price = TICKS[(seq - 1) % len(TICKS)]
            await self.send({"event": "heartbeat", "beat": 0, "ts": round(time.time(), 3)})
            await self.send({"event": "trade", "channel": "trades", "symbol": "ZZZ", "qty": seq * 10})
            await self.send({"event": "price", "channel": "prices", "symbol": symbol, "price": price, "seq": seq})
            await asyncio.sleep(self.state.tick_s)
        await self.send({"event": "snapshot_end", "channel": "prices", "id": ident, "count": count})

    async def maintenance(self) -> None:
        for n in (1, 2):
            await self.send({"event": "notice", "channel": "maintenance", "n": n, "text": "going down"})
            await asyncio.sleep(self.state.tick_s)
        code, reason = MAINTENANCE_CLOSE
        await self.ws.close(code=code, message=reason.encode())

    async def publish(self, channel: Any, text: Any, ident: Any) -> None:
        if not (isinstance(channel, str) and channel.startswith("chat:")) or not isinstance(text, str):
            return await self.send({"event": "error", "id": ident, "error": "publish: a chat:ROOM channel and text"})
        others = [c for c in self.state.rooms.get(channel, ()) if c is not self]
        frame = {"event": "message", "channel": channel, "text": text, "from": self.name}
        await asyncio.gather(*(c.send(frame) for c in others))
        await self.send({"event": "published", "id": ident, "channel": channel, "delivered": len(others)})

    def leave(self, channel: Any) -> None:
        self.rooms.discard(channel)
        members = self.state.rooms.get(channel)
        if members is not None:
            members.discard(self)
            if not members:
                del self.state.rooms[channel]

    async def finish(self) -> None:
        for room in list(self.rooms):
            self.leave(room)
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _websocket(request: web.Request, banner: str | None = None) -> web.StreamResponse:
    state = request.app[STATE]
    ws = web.WebSocketResponse(autoping=True, max_msg_size=64 * 1024)
    if not ws.can_prepare(request).ok:
        return web.json_response({"error": "expected a WebSocket upgrade"}, status=400)
    await ws.prepare(request)
    connection = _Connection(state, ws)
    state.connections.add(connection)
    try:
        if banner is not None:
            await connection.send(banner)
        await connection.send({"event": "welcome", "session": uuid.uuid4().hex, "channels": CHANNELS})
        connection.spawn(connection.heartbeats())
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await connection.handle(message.data)
            elif message.type == WSMsgType.BINARY:
                await connection.send({"event": "error", "error": "binary frames are not supported"})
            else:
                break
    finally:
        state.connections.discard(connection)
        await connection.finish()
    return ws


async def feed(request: web.Request) -> web.StreamResponse:
    return await _websocket(request)


async def legacy(request: web.Request) -> web.StreamResponse:
    return await _websocket(request, banner=BANNER)


def _sse(event: str | None = None, data: Any = None, ident: str | None = None, comment: str | None = None) -> bytes:
    lines = []
    if comment is not None:
        lines.append(f": {comment}")
    if ident is not None:
        lines.append(f"id: {ident}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


async def _open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        await response.write(b": stream opened\n\n")
    return response


async def events(request: web.Request) -> web.StreamResponse:
    """Several event types, ids, JSON and plain data, comments; ends after ``done``."""
    tick = request.app[STATE].tick_s
    response = await _open_stream(request)
    script = [
        _sse("price", {"symbol": "ACME", "price": 101.25}, "1"),
        _sse(comment="keep-alive"),
        _sse("news", {"headline": "ACME beats estimates", "tags": ["earnings", "acme"]}, "2"),
        _sse("heartbeat", {"beat": 1}),  # no id: the last event id (2) stays
        _sse("price", '{"symbol": "INITECH",\n "price": 55.5}', "3"),  # JSON on two data: lines
        _sse(None, "plain text, not JSON", "4"),  # no event field: the type is "message"
        _sse("done", {"count": 2}, "5"),
    ]
    with contextlib.suppress(ConnectionResetError):  # the client left early: its choice
        for chunk in script:
            await response.write(chunk)
            await asyncio.sleep(tick)
        await response.write_eof()
    return response


async def events_short(request: web.Request) -> web.StreamResponse:
    """Says 5 prices will come, sends 2, and ends the stream."""
    tick = request.app[STATE].tick_s
    response = await _open_stream(request)
    with contextlib.suppress(ConnectionResetError):
        await response.write(_sse("hello", {"total": 5}, "0"))
        for seq, (symbol, price) in enumerate(TICKS[:2], start=1):
            await asyncio.sleep(tick)
            await response.write(_sse("price", {"symbol": symbol, "price": price, "seq": seq}, str(seq)))
        await response.write_eof()
    return response


async def events_idle(request: web.Request) -> web.StreamResponse:
    """Never ends on its own: heartbeats and comments until the client leaves."""
    state = request.app[STATE]
    response = await _open_stream(request)
    beat = 0
    with contextlib.suppress(ConnectionResetError):
        while not state.stopping.is_set():
            beat += 1
            await response.write(_sse("heartbeat", {"beat": beat}))
            await response.write(_sse(comment="keep-alive"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.stopping.wait(), state.heartbeat_s)
    return response


async def _on_shutdown(app: web.Application) -> None:
    state = app[STATE]
    state.stopping.set()
    await asyncio.gather(
        *(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for c in list(state.connections)),
        return_exceptions=True,
    )


def build_app(tick_s: float = 0.01, heartbeat_s: float = 0.05) -> web.Application:
    app = web.Application()
    app[STATE] = _State(tick_s, heartbeat_s)
    app.router.add_get("/feed", feed)
    app.router.add_get("/legacy", legacy)
    app.router.add_get("/events", events)
    app.router.add_get("/events/short", events_short)
    app.router.add_get("/events/idle", events_idle)
    app.on_shutdown.append(_on_shutdown)
    return app


class RealtimeServer(AppServer):
    """The feed on ``127.0.0.1:<ephemeral port>`` in a background thread::

    with RealtimeServer() as feed:
        connect(feed.ws_url + "/feed")
    """

    def __init__(self, tick_s: float = 0.01, heartbeat_s: float = 0.05) -> None:
        super().__init__(build_app(tick_s, heartbeat_s))
