"""The reference target, over real loopback sockets with real clients."""

from __future__ import annotations

import asyncio
import errno
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State

from probes.target.faults import Faults, parse_faults
from probes.target.server import TargetServer

EVENTS = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


@pytest.fixture(scope="module")
def target() -> Iterator[TargetServer]:
    with TargetServer() as server:
        yield server


def _token(target: TargetServer) -> str:
    response = httpx.post(
        f"{target.base_url}/api/auth/token",
        json={"client_id": target.client_id, "client_secret": target.client_secret},
    )
    assert response.status_code == 200
    return response.json()["access_token"]


def _auth(target: TargetServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(target)}"}


async def _recv(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _run_events(ws: ClientConnection, thread_id: str = "t1") -> list[dict]:
    """Send a user message and collect frames until ``agent_completed``."""
    await ws.send(json.dumps({"type": "user_message", "thread_id": thread_id, "content": "hi"}))
    frames = [await _recv(ws)]
    while frames[-1]["type"] != "agent_completed":
        frames.append(await _recv(ws))
    return frames


def _ws(target: TargetServer) -> connect:
    return connect(target.ws_url, additional_headers=_auth(target))


# -- HTTP ---------------------------------------------------------------------


def test_it_reports_health(target: TargetServer) -> None:
    health = httpx.get(f"{target.base_url}/health")
    api_health = httpx.get(f"{target.base_url}/api/health")

    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert health.json()["service"] == "goldpath-reference-target"
    assert isinstance(health.json()["uptime_s"], float)
    assert api_health.json() == {
        "status": "ok",
        "components": {"database": "ok", "redis": "ok", "agents": "ok"},
    }


def test_it_lists_services_with_urls_of_the_request(target: TargetServer) -> None:
    services = httpx.get(f"{target.base_url}/api/discovery/services").json()

    assert services["services"] == [
        {"name": "api", "url": target.base_url},
        {"name": "websocket", "url": target.ws_url},
        {"name": "agents", "status": "ok"},
    ]


def test_it_issues_a_token_that_verifies(target: TargetServer) -> None:
    response = httpx.post(
        f"{target.base_url}/api/auth/token",
        json={"client_id": "goldpath-demo", "client_secret": "demo-secret"},
    )
    token = response.json()["access_token"]
    verify = httpx.get(
        f"{target.base_url}/api/auth/verify",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.json()["token_type"] == "bearer"
    assert response.json()["expires_in"] == 3600
    assert verify.status_code == 200
    assert verify.json() == {"valid": True, "sub": "goldpath-demo"}


def test_it_rejects_wrong_credentials(target: TargetServer) -> None:
    response = httpx.post(
        f"{target.base_url}/api/auth/token",
        json={"client_id": "goldpath-demo", "client_secret": "nope"},
    )

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


def test_it_requires_a_bearer_token(target: TargetServer) -> None:
    response = httpx.get(f"{target.base_url}/api/config/features")

    assert response.status_code == 401
    assert response.json() == {"error": "missing bearer token"}


def test_it_rejects_a_tampered_token(target: TargetServer) -> None:
    token = _token(target)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = httpx.get(
        f"{target.base_url}/api/config/features",
        headers={"Authorization": f"Bearer {tampered}"},
    )

    assert response.status_code == 401
    assert response.json() == {"error": "invalid token"}


def test_it_rejects_a_token_from_another_target(target: TargetServer) -> None:
    with TargetServer() as other:
        foreign = _token(other)
    response = httpx.get(
        f"{target.base_url}/api/auth/verify",
        headers={"Authorization": f"Bearer {foreign}"},
    )

    assert response.status_code == 401


def test_it_serves_protected_endpoints_with_a_token(target: TargetServer) -> None:
    headers = _auth(target)
    get = lambda path: httpx.get(f"{target.base_url}{path}", headers=headers)  # noqa: E731

    assert get("/api/config/features").json()["features"]["websocket_events"] is True
    assert get("/api/agents/status").json()["status"] == "ready"
    for path in ("/api/mcp/config", "/api/mcp/servers", "/api/user/profile"):
        assert get(path).status_code == 200, path


def test_it_answers_400_to_a_malformed_json_body(target: TargetServer) -> None:
    response = httpx.post(f"{target.base_url}/api/auth/token", content=b"{nope")

    assert response.status_code == 400
    assert response.json() == {"error": "malformed JSON body"}


def test_it_answers_404_as_json(target: TargetServer) -> None:
    response = httpx.get(f"{target.base_url}/no/such/path")

    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_it_answers_405_as_json(target: TargetServer) -> None:
    response = httpx.delete(f"{target.base_url}/health")

    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}
    assert "GET" in response.headers["Allow"]


def test_it_answers_413_to_an_oversized_body(target: TargetServer) -> None:
    response = httpx.post(f"{target.base_url}/api/auth/token", content=b"x" * (1024 * 1024 + 1))

    assert response.status_code == 413
    assert response.json() == {"error": "request body too large"}


def test_it_round_trips_a_thread_message(target: TargetServer) -> None:
    headers = _auth(target)
    thread = httpx.post(f"{target.base_url}/api/threads", headers=headers)
    thread_id = thread.json()["id"]
    url = f"{target.base_url}/api/threads/{thread_id}/messages"
    posted = httpx.post(url, headers=headers, json={"content": "hello"})
    listed = httpx.get(url, headers=headers)

    assert thread.status_code == 201
    assert posted.status_code == 201
    assert posted.json()["thread_id"] == thread_id
    assert posted.json()["content"] == "hello"
    assert listed.json() == {"messages": [posted.json()]}


def test_it_answers_404_for_an_unknown_thread(target: TargetServer) -> None:
    url = f"{target.base_url}/api/threads/unknown/messages"
    response = httpx.post(url, headers=_auth(target), json={"content": "hello"})

    assert response.status_code == 404
    assert response.json() == {"error": "thread not found"}


# -- WebSocket ----------------------------------------------------------------


def test_it_refuses_a_websocket_without_a_token(target: TargetServer) -> None:
    async def scenario() -> None:
        async with connect(target.ws_url):
            pass

    with pytest.raises(InvalidStatus) as raised:
        asyncio.run(scenario())
    assert raised.value.response.status_code == 401
    assert json.loads(raised.value.response.body) == {"error": "missing bearer token"}


def test_it_accepts_a_websocket_token_in_the_query(target: TargetServer) -> None:
    async def scenario() -> dict:
        async with connect(f"{target.ws_url}?token={_token(target)}") as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return await _recv(ws)

    assert asyncio.run(scenario())["type"] == "pong"


def test_it_streams_the_five_events_in_order(target: TargetServer) -> None:
    async def scenario() -> tuple[list[dict], float]:
        async with _ws(target) as ws:
            started = time.monotonic()
            frames = await _run_events(ws, "thread-a")
            return frames, time.monotonic() - started

    frames, elapsed = asyncio.run(scenario())

    assert [frame["type"] for frame in frames] == EVENTS
    assert [frame["seq"] for frame in frames] == [1, 2, 3, 4, 5]
    assert {frame["thread_id"] for frame in frames} == {"thread-a"}
    assert len({frame["run_id"] for frame in frames}) == 1
    assert 0.1 < elapsed < 1.0


def test_it_pushes_events_to_a_subscriber(target: TargetServer) -> None:
    async def scenario() -> list[dict]:
        async with _ws(target) as sender, _ws(target) as subscriber:
            await subscriber.send(json.dumps({"type": "subscribe", "thread_id": "t"}))
            assert await _recv(subscriber) == {"type": "subscribed", "thread_id": "t"}
            await _run_events(sender, "t")
            return [await _recv(subscriber) for _ in EVENTS]

    assert [frame["type"] for frame in asyncio.run(scenario())] == EVENTS


def test_it_answers_bad_messages_and_stays_open(target: TargetServer) -> None:
    async def scenario() -> list[dict]:
        async with _ws(target) as ws:
            replies = []
            for message in ("{nope", json.dumps({"type": "dance"})):
                await ws.send(message)
                replies.append(await _recv(ws))
            await ws.send(json.dumps({"type": "ping"}))
            replies.append(await _recv(ws))
            return replies

    bad_json, unknown, pong = asyncio.run(scenario())

    assert bad_json == {"type": "error", "error": "malformed JSON"}
    assert unknown["type"] == "error"
    assert pong["type"] == "pong"


def test_it_answers_protocol_pings(target: TargetServer) -> None:
    async def scenario() -> tuple[bool, State]:
        async with _ws(target) as ws:
            pong = asyncio.ensure_future(await ws.ping(b"goldpath"))  # done by the pong that echoes b"goldpath"
            done, _ = await asyncio.wait({pong}, timeout=2)
            return pong in done, ws.state

    assert asyncio.run(scenario()) == (True, State.OPEN)


def test_it_closes_open_websockets_on_stop() -> None:
    async def scenario(server: TargetServer) -> int | None:
        async with _ws(server) as ws:
            await asyncio.to_thread(server.stop)
            with pytest.raises(ConnectionClosed):
                await _recv(ws)
            return ws.close_code

    with TargetServer() as server:
        assert asyncio.run(scenario(server)) == 1001


# -- faults -------------------------------------------------------------------


def _closed_after_first_message(faults: list[str]) -> ConnectionClosed:
    async def scenario(server: TargetServer) -> None:
        async with _ws(server) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await _recv(ws)

    with TargetServer(faults) as server:
        with pytest.raises(ConnectionClosed) as raised:
            asyncio.run(scenario(server))
    return raised.value


def test_it_closes_with_1000_on_close_after_send() -> None:
    closed = _closed_after_first_message(["close-after-send"])

    assert closed.rcvd.code == 1000
    assert closed.rcvd.reason == "main cleanup"


def test_it_closes_with_1011_on_ws_1011() -> None:
    closed = _closed_after_first_message(["ws-1011"])

    assert closed.rcvd.code == 1011
    assert closed.rcvd.reason == "internal error"


def _events_with(faults: list[str]) -> list[str]:
    async def scenario(server: TargetServer) -> list[dict]:
        async with _ws(server) as ws:
            return await _run_events(ws)

    with TargetServer(faults) as server:
        return [frame["type"] for frame in asyncio.run(scenario(server))]


def test_it_never_sends_tool_completed_on_events_missing() -> None:
    assert _events_with(["events-missing"]) == [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "agent_completed",
    ]


def test_it_swaps_thinking_and_executing_on_events_out_of_order() -> None:
    assert _events_with(["events-out-of-order"]) == [
        "agent_started",
        "tool_executing",
        "agent_thinking",
        "tool_completed",
        "agent_completed",
    ]


def test_it_delays_the_first_event_on_slow_agent() -> None:
    async def scenario(server: TargetServer) -> tuple[dict, float]:
        async with _ws(server) as ws:
            message = {"type": "user_message", "thread_id": "t", "content": "hi"}
            await ws.send(json.dumps(message))
            started = time.monotonic()
            first = await _recv(ws, timeout=4)
            return first, time.monotonic() - started

    with TargetServer(["slow-agent"]) as server:
        first, elapsed = asyncio.run(scenario(server))

    assert first["type"] == "agent_started"
    assert elapsed >= 2.0


def test_it_refuses_the_handshake_with_403_on_auth_reject() -> None:
    async def scenario(server: TargetServer) -> None:
        async with _ws(server):
            pass

    with TargetServer(["auth-reject"]) as server:
        with pytest.raises(InvalidStatus) as raised:
            asyncio.run(scenario(server))
    assert raised.value.response.status_code == 403


def test_it_adds_latency_to_http_responses() -> None:
    with TargetServer(["latency=200"]) as server:
        started = time.monotonic()
        response = httpx.get(f"{server.base_url}/health")
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.2


def test_it_answers_500_on_http_500_paths() -> None:
    with TargetServer(["http-500=/api/health", "http-500=/health"]) as server:
        broken = httpx.get(f"{server.base_url}/api/health")
        also_broken = httpx.get(f"{server.base_url}/health")
        fine = httpx.get(f"{server.base_url}/api/discovery/services")

    assert broken.status_code == 500
    assert broken.json() == {"error": "internal server error"}
    assert also_broken.status_code == 500
    assert fine.status_code == 200


def test_it_combines_faults() -> None:
    faults = parse_faults(["latency=50", "events-missing", "http-500=/health"])

    assert faults == Faults(events_missing=True, latency_ms=50, http_500_paths=frozenset({"/health"}))
    assert str(faults) == "events-missing, latency=50, http-500=/health"
    assert str(parse_faults([])) == "healthy"


@pytest.mark.parametrize(
    "spec",
    ["", "nope", "latency", "latency=", "latency=-5", "latency=1.5", "http-500=x"],
)
def test_it_rejects_bad_fault_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="valid modes: healthy") as raised:
        parse_faults([spec])
    assert repr(spec) in str(raised.value)


def test_it_rejects_two_close_faults_together() -> None:
    with pytest.raises(ValueError, match="pick one"):
        parse_faults(["close-after-send", "ws-1011"])


def test_it_rejects_bad_faults_before_starting() -> None:
    with pytest.raises(ValueError):
        TargetServer(["bogus"])


def test_it_raises_when_the_target_cannot_start() -> None:
    server = TargetServer()
    server.host = "203.0.113.1"  # TEST-NET-3: never a local address

    with pytest.raises(RuntimeError, match="failed to start") as raised:
        server.start()
    assert isinstance(raised.value.__cause__, OSError) and raised.value.__cause__.errno == errno.EADDRNOTAVAIL


# -- command ------------------------------------------------------------------


def test_it_serves_from_the_command_until_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "manage.py", "serve_target", "--port=0", "--fault=latency=1"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            banner = process.stdout.readline()
            base_url = re.search(r"http://\S+", banner).group()
            health = httpx.get(f"{base_url}/health")
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=10)
        finally:
            process.kill()

    assert "faults: latency=1" in banner
    assert health.status_code == 200
    assert returncode == 0
