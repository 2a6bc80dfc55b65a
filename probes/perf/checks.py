"""The performance check: each metric sampled several times, reported as p50/p95 vs target.

A metric that cannot be measured (say the WebSocket closes before the agent starts) is
reported as not measured with the reason — never estimated.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from probes.base import (
    CheckFailed,
    CheckSpec,
    Evidence,
    MeasuredMetric,
    ProbeContext,
    http_request,
    issue_token,
    new_http_client,
)
from probes.ws.checks import user_message
from probes.ws.session import WebSocketSession


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def _sample_api_response(ctx: ProbeContext, evidence: Evidence, samples: int, path: str) -> list[float]:
    values = []
    async with new_http_client(10) as client:
        for _ in range(samples):
            sample_evidence = Evidence()
            response, _ = await http_request(ctx, sample_evidence, client, "GET", path)
            if response.status_code != 200:
                raise CheckFailed(f"GET {path} answered HTTP {response.status_code}")
            values.append(sample_evidence["requests"][0]["total_ms"])
    evidence.add_request(sample_evidence["requests"][0])
    return values


async def _sample_ws_latency(ctx: ProbeContext, evidence: Evidence, samples: int) -> list[float]:
    async with WebSocketSession(ctx, evidence, key="websocket_latency") as ws:
        return [await ws.ping_ms() for _ in range(samples)]


async def _sample_agent(ctx: ProbeContext, evidence: Evidence, samples: int) -> dict[str, list[float]]:
    """Time whole requests: token, handshake, user message, agent start and completion."""
    timings: dict[str, list[float]] = {"agent_startup": [], "message_processing": [], "total_request": []}
    for _ in range(samples):
        started = time.perf_counter()
        token = await issue_token(ctx, Evidence())  # each sample logs in, as a new session would
        async with WebSocketSession(ctx, evidence, key="websocket_agent", token=token) as ws:
            thread_id = uuid.uuid4().hex
            await ws.send_json(user_message(thread_id))
            sent = time.perf_counter()
            agent_started = agent_completed = None
            while agent_completed is None:
                message = await ws.recv_json("agent events")
                if message.get("thread_id") != thread_id:
                    continue
                if message.get("type") == "agent_started":
                    agent_started = time.perf_counter()
                elif message.get("type") == "agent_completed":
                    agent_completed = time.perf_counter()
        if agent_started is None:
            raise CheckFailed("agent_completed arrived without agent_started")
        timings["agent_startup"].append(round((agent_started - sent) * 1000, 3))
        timings["message_processing"].append(round((agent_completed - agent_started) * 1000, 3))
        timings["total_request"].append(round((agent_completed - started) * 1000, 3))
    return timings


def _metric(definition: dict[str, Any], samples: list[float] | None, note: str = "") -> MeasuredMetric:
    target = float(definition["target_ms"])
    if not samples:
        return MeasuredMetric(definition["key"], definition["name"], "ms", target, "lt", [], None, None, None, note)
    p50, p95 = round(percentile(samples, 50), 3), round(percentile(samples, 95), 3)
    return MeasuredMetric(definition["key"], definition["name"], "ms", target, "lt", samples, p50, p95, p95 < target)


async def check_performance(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    samples = int(spec.options.get("samples", 5))
    measured: dict[str, list[float]] = {}
    not_measured: dict[str, str] = {}

    async def attempt(keys: list[str], sampler: Callable[[], Awaitable[Any]]) -> None:
        try:
            values = await sampler()
        except CheckFailed as exc:
            not_measured.update({key: f"not measured: {exc}" for key in keys})
            return
        measured.update(values if isinstance(values, dict) else {keys[0]: values})

    api_path = spec.options.get("api_path", "/api/health")
    await attempt(["api_response"], lambda: _sample_api_response(ctx, evidence, samples, api_path))
    await attempt(["websocket_latency"], lambda: _sample_ws_latency(ctx, evidence, samples))
    await attempt(
        ["agent_startup", "message_processing", "total_request"],
        lambda: _sample_agent(ctx, evidence, samples),
    )

    evidence.metrics = [
        _metric(d, measured.get(d["key"]), not_measured.get(d["key"], "")) for d in spec.options["metrics"]
    ]
    taken = [m for m in evidence.metrics if m.p95 is not None]
    if not taken:
        reasons = "; ".join(sorted(set(not_measured.values()))) or "no metric defined"
        raise CheckFailed(f"no performance metric could be measured ({reasons})")
    missed = [m for m in taken if not m.ok]
    if missed:
        detail = ", ".join(f"{m.name} p95 {m.p95:.1f} ms over the {m.target:g} ms target" for m in missed)
        raise CheckFailed(f"performance target missed: {detail}")
    message = (
        f"{len(taken)} of {len(evidence.metrics)} metrics measured over {samples} samples, all within target (p95)"
    )
    unmeasured = [m.name for m in evidence.metrics if m.p95 is None]
    if unmeasured:
        message += f"; not measured: {', '.join(unmeasured)}"
    return message
