"""A websockets client connection that records what it sees as evidence."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from probes.base import CheckFailed, Evidence, ProbeContext, resolve

AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


class WebSocketSession:
    """``async with WebSocketSession(ctx, evidence) as ws``: connect, send, receive, close.

    Everything observed (handshake time, frames and bytes each way, events, close code and
    reason, time from the first send to the close) lands in ``evidence[key]``.
    """

    def __init__(
        self,
        ctx: ProbeContext,
        evidence: Evidence,
        *,
        key: str = "websocket",
        authenticate: bool = True,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.ctx = ctx
        self.authenticate = authenticate
        self.token = token
        self.timeout_s = timeout_s
        self.record: dict[str, Any] = {
            "url": ctx.ws_url,
            "frames_out": 0,
            "frames_in": 0,
            "bytes_out": 0,
            "bytes_in": 0,
            "events": [],
        }
        evidence[key] = self.record
        self.connection: ClientConnection | None = None
        self.first_send_at: float | None = None

    async def __aenter__(self) -> WebSocketSession:
        host = self.ctx.check_host(self.ctx.ws_url)
        parts = urlsplit(self.ctx.ws_url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        self.record["remote_ip"], self.record["dns_ms"] = await resolve(host, port, self.ctx.allowed_hosts)
        headers = {}
        if self.authenticate:
            headers["Authorization"] = f"Bearer {self.token or await self.ctx.token()}"
        started = time.perf_counter()
        try:
            self.connection = await connect(
                self.ctx.ws_url,
                additional_headers=headers,
                open_timeout=self.timeout_s,
                close_timeout=2,
                max_size=self.ctx.max_body_bytes,
                ping_interval=None,
                proxy=None,
                host=self.record["remote_ip"],  # the address resolve() checked
                port=port,
            )
        except InvalidStatus as exc:
            self.record["handshake_status"] = exc.response.status_code
            raise CheckFailed(f"WebSocket handshake rejected: HTTP {exc.response.status_code}") from None
        self.record["handshake_ms"] = round((time.perf_counter() - started) * 1000, 3)
        response = self.connection.response
        self.record["handshake_status"] = response.status_code if response else None
        self.record["headers_seen"] = sorted(k.lower() for k in response.headers.keys()) if response else []
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.connection is not None:
            await self.connection.close()
            self._record_close()

    def _record_close(self) -> None:
        assert self.connection is not None
        if "close_code" not in self.record and self.connection.close_code is not None:
            self.record["close_code"] = self.connection.close_code
            self.record["close_reason"] = self.connection.close_reason or ""
            self.record["close_initiator"] = "client"

    def _closed(self, exc: ConnectionClosed) -> CheckFailed:
        """Say who closed the connection, with which code, and when relative to the send."""
        after = ""
        if self.first_send_at is not None:
            since = time.perf_counter() - self.first_send_at
            self.record["closed_after_send_ms"] = round(since * 1000, 3)
            after = f" {since:.3f} s after the first message"
        if exc.rcvd is None and exc.sent is not None:  # we closed first, e.g. 1009 message too big
            code, reason = exc.sent.code, exc.sent.reason
            self.record.update(close_code=code, close_reason=reason, close_initiator="client")
            limit = f" (limit {self.ctx.max_body_bytes} bytes)" if code == 1009 else ""
            return CheckFailed(f"WebSocket closed by the probe with code {code} ({reason}){limit}{after}")
        code = exc.rcvd.code if exc.rcvd else 1006
        reason = exc.rcvd.reason if exc.rcvd else "no close frame (abnormal closure)"
        self.record.update(close_code=code, close_reason=reason, close_initiator="server")
        return CheckFailed(f"WebSocket closed by server with code {code} ({reason}){after}")

    async def send_json(self, payload: dict[str, Any]) -> None:
        assert self.connection is not None
        text = json.dumps(payload)
        if self.first_send_at is None:
            self.first_send_at = time.perf_counter()
        try:
            await self.connection.send(text)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        self.record["frames_out"] += 1
        self.record["bytes_out"] += len(text.encode())

    async def recv_json(self, waiting_for: str) -> dict[str, Any]:
        assert self.connection is not None
        try:
            raw = await asyncio.wait_for(self.connection.recv(), self.timeout_s)
        except TimeoutError:
            raise CheckFailed(
                f"receive timeout: no frame within {self.timeout_s:g} s while waiting for {waiting_for}"
            ) from None
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        self.record["frames_in"] += 1
        self.record["bytes_in"] += len(raw if isinstance(raw, bytes) else raw.encode())
        try:
            message = json.loads(raw)
        except ValueError:
            raise CheckFailed(f"server sent a frame that is not JSON while waiting for {waiting_for}") from None
        if isinstance(message, dict) and message.get("type") in AGENT_EVENTS:
            self.record["events"].append(message["type"])
        return message

    async def collect_agent_events(self, thread_id: str) -> list[str]:
        """Receive until ``agent_completed`` for ``thread_id``; return event names in arrival order."""
        seen: list[str] = []
        while "agent_completed" not in seen:
            message = await self.recv_json(f"agent events ({len(seen)} of {len(AGENT_EVENTS)} seen)")
            if message.get("thread_id") == thread_id and message.get("type") in AGENT_EVENTS:
                seen.append(message["type"])
        return seen

    async def ping_ms(self) -> float:
        """Round trip of a protocol-level ping, in milliseconds."""
        assert self.connection is not None
        try:
            waiter = await self.connection.ping()
            latency = await asyncio.wait_for(waiter, self.timeout_s)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        except TimeoutError:
            raise CheckFailed(f"receive timeout: no pong within {self.timeout_s:g} s") from None
        return round(latency * 1000, 3)


def check_event_order(seen: list[str]) -> None:
    missing = [name for name in AGENT_EVENTS if name not in seen]
    if missing:
        raise CheckFailed(f"expected events missing: {', '.join(missing)} (seen: {', '.join(seen) or 'none'})")
    if tuple(seen) != AGENT_EVENTS:
        raise CheckFailed(f"events out of order: got {', '.join(seen)}; expected {', '.join(AGENT_EVENTS)}")
