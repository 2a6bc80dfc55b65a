"""Hung and hostile targets: every check ends within its timeout and size limit, with a
clear message, and the engine stays usable for the next run."""

import asyncio
import struct
import threading
import time

import pytest

from probes.base import CheckSpec, ProbeContext
from probes.engine import run_checks
from runs.analysis.classification import classify

HTTP_CHECK = CheckSpec(
    id="health", name="Health", category="A", kind="http", timeout_s=2, options={"requests": [{"path": "/health"}]}
)
WS_CHECK = CheckSpec(id="send", name="Send", category="A", kind="ws_send", timeout_s=3)
MiB = 1024 * 1024


class HostileServer:
    """A loopback TCP server whose per-connection behaviour is an asyncio coroutine."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        try:
            await self.behaviour(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def _shutdown(self):
        """Close the listener and end the connections still being served."""
        self.server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def context(self) -> ProbeContext:
        return ProbeContext(
            base_url=f"http://127.0.0.1:{self.port}",
            ws_url=f"ws://127.0.0.1:{self.port}/ws",
            allowed_hosts={"127.0.0.1"},
            client_id="x",
            client_secret="not-needed-here",
            _token="a-token-issued-elsewhere",  # these servers only speak the one protocol under test
        )


async def never_answer(reader, writer):
    await asyncio.sleep(3600)


async def endless_bytes(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")  # no length: until close
    chunk = b"x" * 65536
    while True:
        writer.write(chunk)
        await writer.drain()


async def huge_body(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 * MiB))
    chunk = b"y" * 65536
    for _ in range(100 * MiB // len(chunk)):
        writer.write(chunk)
        await writer.drain()


async def endless_headers(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X-Padding: " + b"z" * 1000 + b"\r\n")
        await writer.drain()


async def huge_websocket_frame(reader, writer):
    """Accept any WebSocket handshake, then announce a 100 MiB text frame and stream it."""
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    import base64
    import hashlib

    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    writer.write(b"\x81\x7f" + struct.pack("!Q", 100 * MiB))
    chunk = b"w" * 65536
    for _ in range(100 * MiB // len(chunk)):
        writer.write(chunk)
        await writer.drain()


@pytest.fixture
def hostile():
    servers = []

    def start(behaviour):
        servers.append(HostileServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def probe(server, check):
    started = time.monotonic()
    [outcome] = run_checks([check], server.context())
    return outcome, time.monotonic() - started


def test_a_target_that_accepts_and_never_answers_times_out(hostile):
    outcome, took = probe(hostile(never_answer), HTTP_CHECK)
    assert outcome.outcome == "failed" and took < HTTP_CHECK.timeout_s + 2
    assert "timeout" in outcome.message
    assert classify(outcome.message, outcome.evidence) == "receive-timeout"


def test_endless_bytes_stop_at_the_size_limit(hostile):
    outcome, took = probe(hostile(endless_bytes), HTTP_CHECK)
    assert outcome.outcome == "failed" and took < HTTP_CHECK.timeout_s + 2
    assert "exceeds 1048576 bytes" in outcome.message
    assert classify(outcome.message, outcome.evidence) == "message-too-big"


def test_a_100_mb_body_stops_at_the_size_limit(hostile):
    outcome, _ = probe(hostile(huge_body), HTTP_CHECK)
    assert outcome.outcome == "failed"
    assert "exceeds 1048576 bytes" in outcome.message


def test_endless_headers_end_with_a_protocol_error(hostile):
    outcome, took = probe(hostile(endless_headers), HTTP_CHECK)
    assert outcome.outcome == "failed" and took < HTTP_CHECK.timeout_s + 2


def test_a_100_mb_websocket_frame_is_refused(hostile):
    outcome, took = probe(hostile(huge_websocket_frame), WS_CHECK)
    assert outcome.outcome == "failed" and took < WS_CHECK.timeout_s + 2
    assert outcome.message.startswith("WebSocket closed by the probe with code 1009")
    assert outcome.evidence["websocket"]["close_initiator"] == "client"
    assert classify(outcome.message, outcome.evidence) == "message-too-big"


def test_the_engine_still_works_after_hostile_targets(hostile, target):
    for behaviour in (never_answer, endless_bytes, huge_websocket_frame):
        probe(hostile(behaviour), HTTP_CHECK)
    ctx = ProbeContext(
        base_url=target.base_url,
        ws_url=target.ws_url,
        allowed_hosts={"127.0.0.1"},
        client_id=target.client_id,
        client_secret=target.client_secret,
    )
    [outcome] = run_checks([HTTP_CHECK], ctx)
    assert outcome.outcome == "passed"
