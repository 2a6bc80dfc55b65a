"""``connect``: open a WebSocket (``as: NAME``; default ``ws``), or, with
``expect: {status: …}``, see its handshake refused.

Codes: ws.handshake_rejected, ws.handshake_accepted, auth.not_enforced, and the net.* /
timeout.* codes of the connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import Field, model_validator
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from probes.channels import CLOSE_TIMEOUT_S, WebSocketChannel, new_record
from probes.failures import StepFailed
from probes.matchers import short
from probes.steps.base import StepDone, StepKind
from probes.suite.fields import (
    ConnectionName,
    Headers,
    Seconds,
    Status,
    Strict,
    refusals_only,
    status_matches,
    status_text,
)

if TYPE_CHECKING:
    from probes.runtime import StepContext


class ConnectExpect(Strict):
    status: Status = Field(description="the handshake must be answered with this instead of 101")


class ConnectOptions(Strict):
    path: str | None = None
    url: str | None = None
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    subprotocols: list[str] = Field(default_factory=list)
    headers: Headers = Field(default_factory=dict)
    auth: str | None = None
    as_: ConnectionName = Field("ws", alias="as")
    expect: ConnectExpect | None = None
    timeout_s: Seconds | None = Field(None, description="the handshake; default: the check's timeout")

    @model_validator(mode="after")
    def _one_target(self) -> ConnectOptions:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (on the WebSocket URL's origin) and url")
        return self


class _connect(connect):
    """websockets' connect, but a redirect is answered as it is, never followed: it could
    lead outside the allowed hosts."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _with_query(url: str, query: dict[str, Any]) -> str:
    if not query:
        return url
    parts = urlsplit(url)
    extra = urlencode({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items()})
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    spec: ConnectOptions = step.connect
    options = ctx.render(spec.model_dump(by_alias=True, exclude_none=True, exclude={"auth", "as_", "expect"}))
    expected = ctx.render(spec.expect.status) if spec.expect else None
    name = spec.as_
    credentials = await ctx.credentials(spec.auth)
    url = _with_query(
        ctx.target.websocket_url(options.get("path"), options.get("url")),
        {**options.get("query", {}), **credentials.query},
    )
    host, port = ctx.target.policy.check_url(url)
    connection = ctx.evidence.add_connection(new_record(name, "websocket", url))
    connection["remote_ip"], connection["dns_ms"] = await ctx.target.policy.resolve(host, port)
    if name in ctx.channels:
        await ctx.channels.pop(name).aclose()
    timeout = min(options.get("timeout_s") or spec.timeout_s or 1e9, max(ctx.deadline - time.perf_counter(), 0.001))
    started = time.perf_counter()
    try:
        websocket = await _connect(
            url,
            additional_headers={**options.get("headers", {}), **credentials.headers},
            subprotocols=options.get("subprotocols") or None,
            open_timeout=timeout,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=ctx.limits.frame_bytes,
            ping_interval=None,
            proxy=None,
            host=connection["remote_ip"],  # the address the policy checked
            port=port,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        connection["handshake_status"] = status
        connection["handshake_ms"] = round((time.perf_counter() - started) * 1000, 3)
        record["status"] = status
        if expected is not None and status_matches(expected, status):
            if refusals_only(expected):
                ctx.evidence.auth_enforced = True
            return StepDone(f"handshake refused with {status}, as expected")
        body = short(" ".join(exc.response.body.decode("utf-8", "replace").split()), 200) if exc.response.body else ""
        location = exc.response.headers.get("Location")
        redirect = f" (a redirect to {location}: probes never follow redirects)" if location else ""
        raise StepFailed(
            "ws.handshake_rejected",
            f"WebSocket handshake rejected: HTTP {status}{redirect}"
            + (f", expected {status_text(expected)}" if expected is not None else "")
            + (f"; body: {body}" if body else ""),
            status=status,
        ) from None
    except TimeoutError:
        raise StepFailed("timeout.connect", f"the WebSocket handshake did not complete within {timeout:g} s") from None
    connection["handshake_ms"] = round((time.perf_counter() - started) * 1000, 3)
    response = websocket.response
    connection["handshake_status"] = response.status_code if response else 101
    connection["headers_seen"] = sorted(k.lower() for k in response.headers.keys())[:30] if response else []
    if websocket.subprotocol:
        connection["subprotocol"] = websocket.subprotocol
    channel = WebSocketChannel(name, websocket, connection, ctx.limits)
    if expected is not None:
        await channel.close()
        code = "auth.not_enforced" if refusals_only(expected) else "ws.handshake_accepted"
        raise StepFailed(
            code,
            f"the WebSocket handshake was accepted (101), expected {status_text(expected)}"
            + (": authentication is not enforced" if code == "auth.not_enforced" else ""),
            status=101,
            expected=expected,
        )
    ctx.channels[name] = channel
    record["connection"] = name
    return StepDone(f"connected as {name!r} in {connection['handshake_ms']:.1f} ms")


KIND = StepKind(
    name="connect",
    options=ConnectOptions,
    run=run,
    codes=("ws.handshake_rejected", "ws.handshake_accepted", "auth.not_enforced", "timeout.connect"),
    opens="websocket",
    declares="ws",
    describe=lambda options: f"{options.path or options.url} as {options.as_}",
)
