"""What Goldpath's probe engine adds to a plain HTTP request or WebSocket ping, and how close a
whole suite runs to its slowest check.

    .venv/bin/python benchmarks/probe_overhead.py [--iterations 300] [--suite-runs 20]

The bundled target runs healthy in this process (``TargetServer()``, ephemeral loopback port).

1. HTTP: ``GET /health`` through the engine (``run_check`` of an ``http`` check: a new client
   per check, evidence, tracing, DNS/allowlist check, redaction) against raw httpx with the
   same connection policy (a new ``AsyncClient`` per request, same TLS context and settings).
   For reference also ``http_request`` and raw httpx on one shared client, and raw httpx with
   ``AsyncClient()`` defaults (which builds a TLS context per client).
2. WebSocket: connect + ping + close through ``WebSocketSession`` against raw
   ``websockets.asyncio.client.connect`` + ping + close (same bearer token header).
   The variants are interleaved (rotated every iteration) so they share the machine's noise.
   Goal: engine/raw median ratio <= 1.2.
3. The 12-check golden-path suite through ``run_checks`` (the worker's code path, a new
   context and token per run as on a worker): suite wall time / its slowest check's duration.
   Goal: median <= 1.3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import percentile, setup_django, throwaway_env  # noqa: E402


def context(target):
    from probes.base import ProbeContext

    return ProbeContext(
        base_url=target.base_url,
        ws_url=target.ws_url,
        allowed_hosts={"127.0.0.1"},  # what an environment at http://127.0.0.1:PORT allows
        client_id=target.client_id,
        client_secret=target.client_secret,
    )


async def interleaved(variants: dict[str, Callable[[], Awaitable]], iterations: int) -> dict[str, list[float]]:
    """Time each variant ``iterations`` times, rotating their order every round (ms)."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(10):  # warm-up: connections, imports, caches
        for name in names:
            await variants[name]()
    for i in range(iterations):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            await variants[name]()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def report(times: dict[str, list[float]], pairs: list[tuple[str, str, str]]) -> None:
    print(f"  {'variant':52} {'median ms':>9} {'p95 ms':>8}")
    for name, values in times.items():
        print(f"  {name:52} {statistics.median(values):9.3f} {percentile(values, 95):8.3f}")
    for label, engine, raw in pairs:
        median = statistics.median(times[engine]) / statistics.median(times[raw])
        p95 = percentile(times[engine], 95) / percentile(times[raw], 95)
        goal = f"goal <= 1.2: {'met' if median <= 1.2 else 'MISSED'}" if label.startswith("overhead") else "reference"
        print(f"  {label}: median {median:.2f}x, p95 {p95:.2f}x ({goal})")


async def http_and_ws(target, iterations: int) -> None:
    from probes.base import CheckSpec, Evidence, _tls_context, http_request, new_http_client
    from probes.engine import run_check
    from probes.ws.session import WebSocketSession

    ctx = context(target)
    spec = CheckSpec(
        id="health", name="Health", category="bench", kind="http", options={"requests": [{"path": "/health"}]}
    )
    url = target.base_url + "/health"
    tls = _tls_context()  # the TLS context every engine client shares

    async def engine_check():
        outcome = await run_check(spec, ctx)
        assert outcome.outcome == "passed", outcome.message

    async def raw_new_client():
        async with httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False, verify=tls) as client:
            (await client.get(url)).raise_for_status()

    async def raw_default_client():
        async with httpx.AsyncClient() as client:
            (await client.get(url)).raise_for_status()

    async with new_http_client(10) as engine_client, httpx.AsyncClient(trust_env=False, verify=tls) as raw_client:

        async def engine_shared():
            response, _ = await http_request(ctx, Evidence(), engine_client, "GET", "/health")
            assert response.status_code == 200

        async def raw_shared():
            (await raw_client.get(url)).raise_for_status()

        variants = {
            "engine: run_check(http GET /health), new client": engine_check,
            "raw: httpx.AsyncClient(same settings).get, new client": raw_new_client,
            "engine: http_request on a shared client": engine_shared,
            "raw: httpx get on a shared client": raw_shared,
            "raw: httpx.AsyncClient() defaults, new client": raw_default_client,
        }
        print(f"\n1. HTTP GET /health, {iterations} interleaved iterations per variant")
        times = await interleaved(variants, iterations)
    report(
        times,
        [
            ("overhead engine/raw, new client per request", *list(variants)[:2]),
            ("engine/raw on a shared client", *list(variants)[2:4]),
        ],
    )

    token = await ctx.token()

    async def engine_ws():
        async with WebSocketSession(ctx, Evidence(), timeout_s=10) as ws:
            await ws.ping_ms()

    async def raw_ws():
        async with connect(
            target.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None, proxy=None
        ) as ws:
            await asyncio.wait_for(await ws.ping(), 10)

    variants = {
        "engine: WebSocketSession connect + ping + close": engine_ws,
        "raw: websockets connect + ping + close": raw_ws,
    }
    print(f"\n2. WebSocket connect + ping round trip, {iterations} interleaved iterations per variant")
    report(await interleaved(variants, iterations), [("overhead engine/raw", *variants)])


def suite_runs(target, runs: int) -> None:
    from django.conf import settings

    from probes.base import CheckSpec
    from probes.engine import run_checks
    from probes.suite_loader import parse_suite_file

    definition = parse_suite_file(settings.GOLDPATH_SUITES_DIR / "golden-path.yaml")
    specs = [CheckSpec.from_definition(check) for check in definition["checks"]]
    print(f"\n3. golden-path suite ({len(specs)} checks) through run_checks, {runs} runs")
    ratios, walls, slowest_checks, slowest_names = [], [], [], []
    for i in range(runs + 1):
        ctx = context(target)  # a new context (and token) per run, as on a worker
        started = time.perf_counter()
        outcomes = list(run_checks(specs, ctx))
        wall = time.perf_counter() - started
        failed = [o.check_id for o in outcomes if o.outcome != "passed"]
        if failed:
            print(f"  run {i}: not all checks passed against the healthy target: {failed}")
            for o in outcomes:
                if o.outcome != "passed":
                    print(f"    {o.check_id}: {o.message[:300]}")
        slowest = max(outcomes, key=lambda o: o.duration_s)
        if i == 0:
            continue  # warm-up
        ratios.append(wall / slowest.duration_s)
        walls.append(wall * 1000)
        slowest_checks.append(slowest.duration_s * 1000)
        slowest_names.append(slowest.check_id)
    median = statistics.median(ratios)
    print(f"  suite wall: median {statistics.median(walls):.1f} ms, p95 {percentile(walls, 95):.1f} ms")
    print(
        f"  slowest check: median {statistics.median(slowest_checks):.1f} ms "
        f"(most often {max(set(slowest_names), key=slowest_names.count)})"
    )
    print(
        f"  wall / slowest check: median {median:.2f}, p95 {percentile(ratios, 95):.2f}, max {max(ratios):.2f} "
        f"(goal median <= 1.3: {'met' if median <= 1.3 else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="timed iterations per variant (300)")
    parser.add_argument("--suite-runs", type=int, default=20, help="timed suite runs (20)")
    args = parser.parse_args()
    setup_django(throwaway_env("probes"))  # settings only; no database is used
    from probes.target.server import TargetServer

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; target in this process (a thread)")
    with TargetServer() as target:
        asyncio.run(http_and_ws(target, args.iterations))
        suite_runs(target, args.suite_runs)


if __name__ == "__main__":
    main()
