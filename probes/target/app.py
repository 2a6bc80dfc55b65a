"""The reference target: an imitation of an AI chat product's staging API.

Goldpath's probes need something real to talk to on loopback: HTTP endpoints
with bearer auth, and a WebSocket that streams agent events, with switchable
faults so that every failure a probe claims to detect can be produced.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import WSCloseCode, WSMsgType, web

from probes.target.faults import Faults

logger = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "goldpath-demo"
DEFAULT_CLIENT_SECRET = "demo-secret"

SERVICE_NAME = "goldpath-reference-target"
MAX_BODY_BYTES = 1024 * 1024
MAX_THREADS = 1000
MAX_MESSAGES_PER_THREAD = 100
TOKEN_TTL_S = 3600

# The agent run, as (event, nominal delay before it in seconds). Startup to completion is
# about 100 ms: well inside the suite's 200 ms message-processing target even on a busy
# machine, so the healthy target passes while slow-agent and latency faults stand out.
AGENT_EVENTS = (
    ("agent_started", 0.020),
    ("agent_thinking", 0.030),
    ("tool_executing", 0.020),
    ("tool_completed", 0.030),
    ("agent_completed", 0.020),
)
JITTER = 0.3
SLOW_AGENT_DELAY_S = 2.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class TargetState:
    """Everything the handlers share; lives on the app under ``STATE``."""

    faults: Faults
    client_id: str
    client_secret: str
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    started_at: float = field(default_factory=time.monotonic)
    # Oldest first, so the oldest thread is dropped once MAX_THREADS is hit.
    threads: OrderedDict[str, deque[dict[str, str]]] = field(default_factory=OrderedDict)
    subscribers: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    sockets: set[web.WebSocketResponse] = field(default_factory=set)


STATE = web.AppKey("state", TargetState)
SUBJECT = web.RequestKey("sub", str)


def _json_error(status: int, message: str, **kwargs: Any) -> web.Response:
    return web.json_response({"error": message}, status=status, **kwargs)


# Messages for errors raised by aiohttp itself (routing, body size, ...).
_HTTP_ERRORS = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the HTTP faults before any handler runs."""
    faults = request.app[STATE].faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if request.path in faults.http_500_paths:
        return _json_error(500, "internal server error")
    return await handler(request)


@web.middleware
async def json_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as JSON, never with aiohttp's plain-text pages."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _json_error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = _HTTP_ERRORS.get(exc.status, (exc.reason or "error").lower())
        return _json_error(exc.status, message, headers=headers)
    except Exception:
        logger.exception("Unhandled error in %s %s", request.method, request.path)
        return _json_error(500, "internal server error")


# -- auth ---------------------------------------------------------------------


def _issue_token(state: TargetState) -> str:
    now = int(time.time())
    claims = {"sub": state.client_id, "iat": now, "exp": now + TOKEN_TTL_S}
    return jwt.encode(claims, state.signing_key, algorithm="HS256")


def _authenticate(request: web.Request, *, allow_query: bool = False) -> str:
    """Return the token's subject, or raise a 401 ``ApiError``."""
    token = None
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        token = credentials.strip()
    elif allow_query:
        token = request.query.get("token") or None
    if token is None:
        raise ApiError(401, "missing bearer token")
    try:
        claims = jwt.decode(
            token,
            request.app[STATE].signing_key,
            algorithms=["HS256"],
            options={"require": ["sub", "iat", "exp"]},
        )
    except jwt.InvalidTokenError:
        raise ApiError(401, "invalid token") from None
    return claims["sub"]


def protected(handler: Handler) -> Handler:
    """Require a valid bearer token; its subject is on ``request[SUBJECT]``."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        request[SUBJECT] = _authenticate(request)
        return await handler(request)

    return wrapper


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed JSON body")
    return body


# -- HTTP handlers ------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    uptime_s = time.monotonic() - request.app[STATE].started_at
    return web.json_response({"status": "healthy", "service": SERVICE_NAME, "uptime_s": round(uptime_s, 3)})


async def api_health(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "status": "ok",
            "components": {"database": "ok", "redis": "ok", "agents": "ok"},
        }
    )


async def discovery(request: web.Request) -> web.Response:
    origin = request.url.origin()
    ws_scheme = "wss" if origin.scheme == "https" else "ws"
    return web.json_response(
        {
            "services": [
                {"name": "api", "url": str(origin)},
                {
                    "name": "websocket",
                    "url": str(origin.with_scheme(ws_scheme).with_path("/ws")),
                },
                {"name": "agents", "status": "ok"},
            ]
        }
    )


async def issue_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _json_body(request)
    client_id, client_secret = body.get("client_id"), body.get("client_secret")
    if not (
        isinstance(client_id, str)
        and isinstance(client_secret, str)
        and hmac.compare_digest(client_id.encode(), state.client_id.encode())
        and hmac.compare_digest(client_secret.encode(), state.client_secret.encode())
    ):
        raise ApiError(401, "invalid_client")
    return web.json_response(
        {
            "access_token": _issue_token(state),
            "token_type": "bearer",
            "expires_in": TOKEN_TTL_S,
        }
    )


@protected
async def verify_token(request: web.Request) -> web.Response:
    return web.json_response({"valid": True, "sub": request[SUBJECT]})


@protected
async def mcp_config(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "enabled": True,
            "transport": "websocket",
            "servers": ["filesystem", "web-search"],
            "tool_timeout_s": 30,
        }
    )


@protected
async def mcp_servers(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "servers": [
                {"name": "filesystem", "status": "connected", "tools": 4},
                {"name": "web-search", "status": "connected", "tools": 2},
            ]
        }
    )


@protected
async def agents_status(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "agents": [
                {"name": "triage", "status": "ready"},
                {"name": "research", "status": "ready"},
                {"name": "writer", "status": "ready"},
            ],
            "status": "ready",
        }
    )


@protected
async def user_profile(request: web.Request) -> web.Response:
    return web.json_response({"sub": request[SUBJECT], "display_name": "Goldpath probe", "role": "tester"})


@protected
async def features(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "features": {
                "chat": True,
                "agents": True,
                "websocket_events": True,
                "tool_execution": True,
                "realtime_updates": True,
            }
        }
    )


@protected
async def create_thread(request: web.Request) -> web.Response:
    threads = request.app[STATE].threads
    thread_id = uuid.uuid4().hex
    threads[thread_id] = deque(maxlen=MAX_MESSAGES_PER_THREAD)
    while len(threads) > MAX_THREADS:
        threads.popitem(last=False)
    return web.json_response({"id": thread_id}, status=201)


def _thread(request: web.Request) -> tuple[str, deque[dict[str, str]]]:
    thread_id = request.match_info["thread_id"]
    try:
        return thread_id, request.app[STATE].threads[thread_id]
    except KeyError:
        raise ApiError(404, "thread not found") from None


@protected
async def post_message(request: web.Request) -> web.Response:
    thread_id, messages = _thread(request)
    content = (await _json_body(request)).get("content")
    if not isinstance(content, str):
        raise ApiError(400, "content must be a string")
    message = {"id": uuid.uuid4().hex, "thread_id": thread_id, "content": content}
    messages.append(message)
    return web.json_response(message, status=201)


@protected
async def list_messages(request: web.Request) -> web.Response:
    _, messages = _thread(request)
    return web.json_response({"messages": list(messages)})


# -- WebSocket ----------------------------------------------------------------


def _agent_run(faults: Faults) -> list[tuple[str, float]]:
    """The events of one run and the delay before each, with faults applied."""
    run = [(event, delay * random.uniform(1 - JITTER, 1 + JITTER)) for event, delay in AGENT_EVENTS]
    if faults.slow_agent:
        run[0] = (run[0][0], SLOW_AGENT_DELAY_S)
    if faults.events_out_of_order:
        # Swap the events but keep the timing, so only the order is wrong.
        (thinking, d1), (executing, d2) = run[1], run[2]
        run[1], run[2] = (executing, d1), (thinking, d2)
    if faults.events_missing:
        run = [(event, delay) for event, delay in run if event != "tool_completed"]
    return run


async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
    """Send without raising: a peer that went away must not break a run."""
    if ws.closed:
        return
    try:
        await ws.send_json(payload)
    except (ConnectionError, RuntimeError) as exc:
        logger.debug("Dropped a frame to a closing WebSocket: %s", exc)


async def _stream_agent_run(state: TargetState, origin: web.WebSocketResponse, thread_id: str) -> None:
    """Stream one agent run to the sender and to the thread's subscribers."""
    run_id = uuid.uuid4().hex
    for seq, (event, delay) in enumerate(_agent_run(state.faults), start=1):
        await asyncio.sleep(delay)
        frame = {
            "type": event,
            "thread_id": thread_id,
            "run_id": run_id,
            "seq": seq,
            "ts": time.time(),
        }
        recipients = {origin, *state.subscribers.get(thread_id, ())}
        await asyncio.gather(*(_send(ws, frame) for ws in recipients))


class _Connection:
    """One WebSocket client: its subscriptions and its running agent runs."""

    def __init__(self, state: TargetState, ws: web.WebSocketResponse) -> None:
        self.state = state
        self.ws = ws
        self.thread_ids: set[str] = set()
        self.runs: set[asyncio.Task[None]] = set()

    async def handle(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return await self.send_error("malformed JSON")
        if not isinstance(message, dict):
            return await self.send_error("message must be a JSON object")
        kind = message.get("type")
        if kind == "ping":
            return await _send(self.ws, {"type": "pong", "ts": time.time()})
        if kind not in ("user_message", "subscribe"):
            return await self.send_error(f"unknown message type: {kind!r}")
        thread_id = message.get("thread_id")
        if not isinstance(thread_id, str) or not thread_id:
            return await self.send_error("thread_id must be a non-empty string")
        if kind == "subscribe":
            self.thread_ids.add(thread_id)
            self.state.subscribers.setdefault(thread_id, set()).add(self.ws)
            return await _send(self.ws, {"type": "subscribed", "thread_id": thread_id})
        if not isinstance(message.get("content"), str):
            return await self.send_error("content must be a string")
        run = asyncio.create_task(_stream_agent_run(self.state, self.ws, thread_id))
        self.runs.add(run)
        run.add_done_callback(self.runs.discard)

    async def send_error(self, error: str) -> None:
        await _send(self.ws, {"type": "error", "error": error})

    async def close(self) -> None:
        """Stop this client's runs and forget its subscriptions."""
        runs = list(self.runs)
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for thread_id in self.thread_ids:
            subscribers = self.state.subscribers.get(thread_id)
            if subscribers is not None:
                subscribers.discard(self.ws)
                if not subscribers:
                    del self.state.subscribers[thread_id]


def _first_message_close(faults: Faults) -> tuple[int, str] | None:
    if faults.close_after_send:
        return WSCloseCode.OK, "main cleanup"
    if faults.ws_1011:
        return WSCloseCode.INTERNAL_ERROR, "internal error"
    return None


async def websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    _authenticate(request, allow_query=True)
    if state.faults.auth_reject:
        raise ApiError(403, "forbidden")
    ws = web.WebSocketResponse(autoping=True, max_msg_size=MAX_BODY_BYTES)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "expected a WebSocket upgrade request")
    await ws.prepare(request)
    state.sockets.add(ws)
    connection = _Connection(state, ws)
    close_on_first = _first_message_close(state.faults)
    try:
        async for msg in ws:
            if close_on_first is not None:
                code, reason = close_on_first
                await ws.close(code=code, message=reason.encode())
                break
            if msg.type == WSMsgType.TEXT:
                await connection.handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await connection.send_error("expected a JSON text frame")
            else:
                break
    finally:
        state.sockets.discard(ws)
        await connection.close()
    return ws


async def _close_websockets(app: web.Application) -> None:
    """Close open WebSockets on shutdown, so the runner does not wait on them."""
    sockets = list(app[STATE].sockets)
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
        return_exceptions=True,
    )


def build_app(
    faults: Faults,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
) -> web.Application:
    """Build the target app; each app signs tokens with its own random key."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[json_error_middleware, fault_middleware],
    )
    app[STATE] = TargetState(faults=faults, client_id=client_id, client_secret=client_secret)
    app.on_shutdown.append(_close_websockets)
    app.router.add_get("/health", health)
    app.router.add_get("/api/health", api_health)
    app.router.add_get("/api/discovery/services", discovery)
    app.router.add_post("/api/auth/token", issue_token)
    app.router.add_get("/api/auth/verify", verify_token)
    app.router.add_get("/api/mcp/config", mcp_config)
    app.router.add_get("/api/mcp/servers", mcp_servers)
    app.router.add_get("/api/agents/status", agents_status)
    app.router.add_get("/api/user/profile", user_profile)
    app.router.add_get("/api/config/features", features)
    app.router.add_post("/api/threads", create_thread)
    app.router.add_post("/api/threads/{thread_id}/messages", post_message)
    app.router.add_get("/api/threads/{thread_id}/messages", list_messages)
    app.router.add_get("/ws", websocket)
    return app
