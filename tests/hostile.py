"""Hostile loopback servers for the probe engine's tests: raw asyncio TCP servers that
speak just enough HTTP, WebSocket or SSE to be connected to, then misbehave.

A server runs its event loop in a thread of its own, so a probe that starves or blocks
its own loop cannot slow the server down. Every connection it accepts is a ``Peer`` that
counts what the server read and wrote and notes when the client closed its socket.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MiB = 1024 * 1024
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHUNK = 64 * 1024
KEPT = 64 * 1024  # of what a client sends, kept for inspection


@dataclass
class Peer:
    """One client connection, as the server saw it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened_at: float = field(default_factory=time.monotonic)
    closed_at: float | None = None  # when the client's end was seen closed (EOF, reset, broken pipe)
    bytes_in: int = 0
    bytes_out: int = 0  # written and drained: what the client took
    received: bytearray = field(default_factory=bytearray)  # the start of what came after the head
    watcher: asyncio.Task | None = None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def mark_closed(self) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()

    async def request(self) -> bytes:
        """The request head (up to the blank line)."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.bytes_in += len(head)
        return head

    def watch(self) -> None:
        """Read (and discard) whatever the client sends from now on, to see it close."""

        async def drain_input() -> None:
            try:
                while chunk := await self.reader.read(CHUNK):
                    self.bytes_in += len(chunk)
                    self.received += chunk[: KEPT - len(self.received)]
            except (ConnectionError, OSError):
                pass
            self.mark_closed()

        self.watcher = asyncio.get_running_loop().create_task(drain_input())

    def close_code_from_client(self) -> int | None:
        """The code of the first close frame the client sent (WebSocket peers), if any."""
        for opcode, payload in client_frames(bytes(self.received)):
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        return None

    async def send(self, data: bytes) -> None:
        """Write and wait until the client took it; ConnectionError once it is gone."""
        if self.closed:
            raise ConnectionResetError("the client closed")
        self.writer.write(data)
        await self.writer.drain()
        self.bytes_out += len(data)

    async def until_closed(self) -> None:
        while not self.closed:
            await asyncio.sleep(0.05)


Behaviour = Callable[[Peer], Awaitable[None]]


class HostileServer:
    """A loopback TCP server whose per-connection behaviour is a coroutine of a ``Peer``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.peers: list[Peer] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="hostile-server", daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("the hostile server did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        self.peers.append(peer)
        try:
            await self.behaviour(peer)
            await peer.until_closed()  # behaviours that end early keep the socket until the client goes
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            peer.mark_closed()
        except asyncio.CancelledError:
            pass
        finally:
            if peer.watcher is not None:
                peer.watcher.cancel()
            writer.close()

    def all_closed(self) -> bool:
        return bool(self.peers) and all(peer.closed for peer in self.peers)

    def bytes_out(self) -> int:
        return sum(peer.bytes_out for peer in self.peers)

    def bytes_in(self) -> int:
        return sum(peer.bytes_in for peer in self.peers)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _shutdown(self) -> None:
        """Close the listener and end the connections still being served."""
        self.server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; its last verdict."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# --- HTTP ---------------------------------------------------------------------------------


async def never_answer(peer: Peer) -> None:
    """Accept the connection, read the request, never answer."""
    await peer.request()
    peer.watch()


async def endless_body(peer: Peer) -> None:
    """200 without a length, then bytes until the client goes."""
    await peer.request()
    peer.watch()
    await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    chunk = b"x" * CHUNK
    while True:
        await peer.send(chunk)


async def huge_body(peer: Peer) -> None:
    """A 100 MiB body with its Content-Length."""
    await peer.request()
    peer.watch()
    await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (100 * MiB))
    chunk = b"y" * CHUNK
    for _ in range(100 * MiB // CHUNK):
        await peer.send(chunk)


async def endless_headers(peer: Peer) -> None:
    """A status line, then header lines that never end."""
    await peer.request()
    peer.watch()
    await peer.send(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Padding: " + b"z" * 1000 + b"\r\n"
    while True:
        await peer.send(line * 16)


# --- WebSocket ----------------------------------------------------------------------------


def ws_frame(payload: bytes | str, opcode: int = 0x1) -> bytes:
    """One unmasked (server → client) frame."""
    data = payload.encode() if isinstance(payload, str) else payload
    n = len(data)
    if n < 126:
        header = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        header = bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)
    return header + data


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The complete (masked, client → server) frames at the start of ``data``."""
    frames, at = [], 0
    while at + 2 <= len(data):
        opcode, n = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if n == 126:
            (n,), at = struct.unpack("!H", data[at : at + 2]), at + 2
        elif n == 127:
            (n,), at = struct.unpack("!Q", data[at : at + 8]), at + 8
        mask, at = data[at : at + 4], at + 4
        if at + n > len(data):
            break
        frames.append((opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data[at : at + n]))))
        at += n
    return frames


async def ws_accept(peer: Peer) -> None:
    """Answer any WebSocket handshake with 101, then read what the client sends."""
    head = await peer.request()
    key = next(
        line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    await peer.send(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    peer.watch()


def ws_flood_of(payload: str) -> Behaviour:
    """This text frame again and again, as fast as the client takes it; never a close frame."""
    frame = ws_frame(payload)
    burst = frame * max(1, CHUNK // len(frame))

    async def behaviour(peer: Peer) -> None:
        await ws_accept(peer)
        while True:
            await peer.send(burst)

    return behaviour


ws_flood = ws_flood_of('{"type": "tick", "n": 1}')


async def ws_huge_frame(peer: Peer) -> None:
    """Announce a 100 MiB text frame and stream it."""
    await ws_accept(peer)
    await peer.send(b"\x81\x7f" + struct.pack("!Q", 100 * MiB))
    chunk = b"w" * CHUNK
    for _ in range(100 * MiB // CHUNK):
        await peer.send(chunk)


def ws_sends(*frames: bytes | str) -> Behaviour:
    """Send these text frames, then stay open (silent) until the client goes."""

    async def behaviour(peer: Peer) -> None:
        await ws_accept(peer)
        for frame in frames:
            await peer.send(ws_frame(frame))

    return behaviour


async def ws_drop_without_close_frame(peer: Peer) -> None:
    """Accept, wait a moment, then close the TCP connection without a close frame."""
    await ws_accept(peer)
    await asyncio.sleep(0.3)
    peer.writer.close()
    peer.mark_closed()


# --- Server-Sent Events -------------------------------------------------------------------

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"


async def sse_heartbeats(peer: Peer) -> None:
    """An event stream that never ends and never sends an event: comments only."""
    await peer.request()
    peer.watch()
    await peer.send(SSE_HEAD)
    while True:
        await peer.send(b": heartbeat\n\n")
        await asyncio.sleep(0.05)


async def sse_huge_event(peer: Peer) -> None:
    """One event of 100 MiB of data, over the whole stream's cap."""
    await peer.request()
    peer.watch()
    await peer.send(SSE_HEAD + b"event: big\ndata: ")
    chunk = b"e" * CHUNK
    for _ in range(100 * MiB // CHUNK):
        await peer.send(chunk)
    await peer.send(b"\n\n")


async def json_not_event_stream(peer: Peer) -> None:
    """A stream request answered with a JSON document."""
    await peer.request()
    peer.watch()
    body = b'{"status": "ok"}'
    await peer.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
