"""Open connections a check reads from: WebSockets (``connect``) and Server-Sent-Events
streams (``stream``). ``receive`` treats both alike: a message at a time, each with its raw
text and its JSON document, until a deadline that holds however fast the peer sends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from probes.evidence import Limits, record_frame
from probes.failures import StepFailed
from probes.matchers import MISSING, parse_json

YIELD_EVERY = 64  # messages handled between two forced yields to the event loop
CLOSE_TIMEOUT_S = 0.5  # a healthy peer answers a close in milliseconds
WATCH_EVERY_S = 0.2
SSE_QUEUE = 256  # events read ahead of the step that receives them


@dataclass
class Message:
    """One frame or event: ``text`` is the raw text, ``document`` its JSON (MISSING if none).
    An SSE event's document is ``{event, id, data}`` with ``data`` parsed when it is JSON."""

    text: str
    document: Any
    index: int  # 1-based, per connection


class ChannelClosed(Exception):
    """The peer (or the probe, on a protocol error) ended the connection."""

    def __init__(self, code: int | None, reason: str, initiator: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.initiator = initiator


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def new_record(name: str, kind: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "url": url,
        "frames_in": 0,
        "frames_out": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "frames": [],
        "frames_dropped": 0,
    }


class Channel:
    """What ``receive`` needs from a connection."""

    name: str
    type: str
    record: dict[str, Any]
    limits: Limits
    opened_at: float
    first_send_at: float | None = None
    received = 0
    closed: ChannelClosed | None = None

    async def receive(self, deadline: float) -> Message:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def note_close(self, closed: ChannelClosed) -> ChannelClosed:
        """Record who closed, with which code, and when relative to the first message sent."""
        self.closed = closed
        self.record.update(close_code=closed.code, close_reason=closed.reason, close_initiator=closed.initiator)
        if self.first_send_at is not None and "closed_after_send_ms" not in self.record:
            self.record["closed_after_send_ms"] = _ms_since(self.first_send_at)
        return closed

    async def _pace(self) -> None:
        """Yield to the loop now and then: buffered frames never suspend a read, and a loop
        that never suspends would starve every other check and every timeout."""
        self.received += 1
        if self.received % YIELD_EVERY == 0:
            await asyncio.sleep(0)


def closed_failure(channel: Channel, closed: ChannelClosed, before: str) -> StepFailed:
    """The failure for a connection that ended while a step still waited on it."""
    if channel.type == "websocket" and closed.initiator == "client" and closed.code == 1009:
        return StepFailed(
            "ws.too_large",
            f"a frame on {channel.name!r} is over the {channel.limits.frame_bytes}-byte cap; "
            "the probe closed the connection with code 1009",
            close_code=1009,
        )
    now = time.perf_counter()
    if channel.first_send_at is not None:
        after = f"{now - channel.first_send_at:.3f} s after the first message"
    else:
        after = f"{now - channel.opened_at:.3f} s after it opened"
    who = "by the server" if closed.initiator == "server" else "by the probe"
    with_code = (
        f" with code {closed.code} ({closed.reason or 'no reason'})"
        if closed.code is not None
        else f" ({closed.reason})"
    )
    return StepFailed(
        "sse.closed" if channel.type == "sse" else "ws.closed",
        f"connection {channel.name!r} closed {who}{with_code} {after}, {before}",
        close_code=closed.code,
        reason=closed.reason,
        initiator=closed.initiator,
        after_send=channel.first_send_at is not None,
        after_send_ms=channel.record.get("closed_after_send_ms"),
    )


class WebSocketChannel(Channel):
    type = "websocket"

    def __init__(self, name: str, connection: ClientConnection, record: dict[str, Any], limits: Limits) -> None:
        self.name = name
        self.connection = connection
        self.record = record
        self.limits = limits
        self.opened_at = time.perf_counter()
        self.watchdog = asyncio.create_task(self._watch(), name=f"ws-watch-{name}")

    async def _watch(self) -> None:
        """End a close the peer never answers. websockets waits for the peer to close TCP
        after the probe sent a close (a frame over the size cap, say); a peer that ignores it
        would keep a ``recv`` waiting until the check's timeout."""
        connection = self.connection
        while connection.state is not State.CLOSED:
            await asyncio.sleep(WATCH_EVERY_S)
            deadline = connection.close_deadline
            if deadline is not None and connection.loop.time() > deadline + CLOSE_TIMEOUT_S:
                connection.transport.abort()
                return

    def _abort(self) -> None:
        self.connection.transport.abort()
        if self.closed is None:
            self.note_close(ChannelClosed(1006, "closed by the probe (the peer did not answer its close)", "client"))

    def _closed(self, exc: ConnectionClosed) -> ChannelClosed:
        if exc.sent is not None and (exc.rcvd is None or exc.rcvd_then_sent is False):
            # the probe closed first, e.g. 1009 for a frame over the size cap
            return self.note_close(ChannelClosed(exc.sent.code, exc.sent.reason, "client"))
        if exc.rcvd is not None:
            return self.note_close(ChannelClosed(exc.rcvd.code, exc.rcvd.reason, "server"))
        return self.note_close(ChannelClosed(1006, "no close frame (abnormal closure)", "server"))

    async def send(self, text: str) -> None:
        if self.first_send_at is None:
            self.first_send_at = time.perf_counter()
        try:
            await self.connection.send(text)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        record_frame(self.record, "out", _ms_since(self.opened_at), text, self.limits)

    async def receive(self, deadline: float) -> Message:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError
        try:
            async with asyncio.timeout(remaining):
                raw = await self.connection.recv()
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        await self._pace()
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        record_frame(self.record, "in", _ms_since(self.opened_at), raw, self.limits)
        return Message(text, parse_json(text), self.record["frames_in"])

    async def ping(self, deadline: float) -> float:
        """Round trip of a protocol-level ping, in milliseconds."""
        try:
            waiter = await self.connection.ping()
            async with asyncio.timeout(max(deadline - time.perf_counter(), 0)):
                latency = await waiter
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        return round(latency * 1000, 3)

    async def wait_closed(self, deadline: float) -> ChannelClosed:
        """Read until the peer closes (frames meanwhile are evidence); TimeoutError if not."""
        while True:
            try:
                await self.receive(deadline)
            except ChannelClosed as closed:
                return closed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close, or abort the socket if the peer does not answer in time; never leave it
        open, even when cancelled."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.connection.close(code, reason)
        except TimeoutError:
            self._abort()
        except BaseException:
            self._abort()
            raise
        finally:
            self.watchdog.cancel()
        if self.closed is None and self.connection.close_code is not None:
            self.note_close(ChannelClosed(self.connection.close_code, self.connection.close_reason or "", "client"))

    async def aclose(self) -> None:
        if self.closed is None:
            await self.close()
        self.watchdog.cancel()


class EventStreamChannel(Channel):
    """An SSE response read by a task of its own into a bounded queue, so a step that
    times out never leaves the stream half-read."""

    type = "sse"

    def __init__(self, name: str, response: httpx.Response, record: dict[str, Any], limits: Limits) -> None:
        self.name = name
        self.response = response
        self.record = record
        self.limits = limits
        self.opened_at = time.perf_counter()
        self.queue: asyncio.Queue[Message | BaseException] = asyncio.Queue(SSE_QUEUE)
        self.reader = asyncio.create_task(self._read(), name=f"sse-{name}")

    async def _read(self) -> None:
        end: BaseException
        try:
            async for event in EventSource(self.response).aiter_sse():
                if event.data == "" and event.event == "message":
                    continue  # a block of comments (keep-alives) only: no event (WHATWG "dispatch")
                data = parse_json(event.data)
                document = {"event": event.event, "id": event.id, "data": event.data if data is MISSING else data}
                record_frame(self.record, "in", _ms_since(self.opened_at), event.data, self.limits)
                await self.queue.put(Message(event.data, document, self.record["frames_in"]))
            end = ChannelClosed(None, "the server ended the event stream", "server")
        except StepFailed as exc:
            end = exc
        except SSEError as exc:
            end = StepFailed("sse.not_event_stream", f"not an event stream: {exc}")
        except (httpx.HTTPError, OSError) as exc:
            end = ChannelClosed(None, f"the event stream broke ({type(exc).__name__}: {exc})", "server")
        await self.queue.put(end)

    async def receive(self, deadline: float) -> Message:
        if self.closed is not None:
            raise self.closed
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            item = await self.queue.get()
        if isinstance(item, ChannelClosed):
            raise self.note_close(item)
        if isinstance(item, BaseException):
            raise item
        await self._pace()
        return item

    async def aclose(self) -> None:
        self.reader.cancel()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.gather(self.reader, return_exceptions=True)
                await self.response.aclose()
        except TimeoutError:
            pass  # the client's own close (the end of the check) drops the connection
        if self.closed is None:
            self.note_close(ChannelClosed(None, "closed by the probe", "client"))


class CappedStream(httpx.AsyncByteStream):
    """A response body that stops with ``code`` once more than ``limit`` bytes came."""

    def __init__(self, stream: httpx.AsyncByteStream, limit: int, code: str, what: str) -> None:
        self.stream = stream
        self.limit = limit
        self.code = code
        self.what = what
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.read += len(chunk)
            if self.read > self.limit:
                raise StepFailed(
                    self.code, f"{self.what} exceeds {self.limit} bytes; stopped reading", limit=self.limit
                )
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()
