"""What Goldpath's probe engine adds to a plain HTTP request and to a WebSocket exchange, and
how close a whole suite runs to its slowest check.

    .venv/bin/python benchmarks/probe_overhead.py [--iterations 300] [--ws-iterations 200] [--suite-runs 20]

The bundled target runs healthy in this process (``TargetServer()``, a thread, an ephemeral
loopback port; ``--target process`` runs it as ``manage.py serve_target`` in its own process
instead, so it shares no interpreter lock with the measured code). Every variant of a section
is timed in the same loop, their order rotated each round, so they share the machine's noise;
``--warmup`` rounds (10) come first and are not counted. Figures are medians and p95 in ms; a
goal is judged on the median ratio.

1. HTTP, goal engine/raw <= 1.2: ``run_check`` of a suite check with one ``request`` step
   (``GET /health``, ``expect: {status: 200}``; the engine's whole path: a new client per
   check, URL allowlist and address check, the request pinned to that address, tracing,
   evidence, redaction, the outcome) against raw httpx with the same client set-up: a new
   client from the engine's own factory, ``probes.net.new_http_client`` (timeout, no
   redirects, no proxies from the environment, the shared TLS context, ``Accept-Encoding:
   identity``), per request. For reference (not a goal): raw httpx on one shared client,
   i.e. what the new connection per request costs.
2. WebSocket, goal engine/raw <= 1.1: ``run_check`` of ``connect`` (a ``bearer`` auth
   profile) → ``send`` a user_message → ``receive`` the 5-frame agent sequence, against raw
   ``websockets.asyncio.client.connect`` (same bearer header, same connect options) + send
   + 5 ``recv`` + close. The token comes from POST /api/auth/token once, beforehand: neither
   side logs in per iteration. The target streams those 5 frames over ~100 ms by design.
3. The 12-check golden-path suite through ``run_checks`` (a worker's code path: a private
   event loop in a thread), a new ``RunTarget`` per run as on a worker (so each run logs in
   once); goal: suite wall time / its slowest check's duration <= 1.1 (median over runs).

Exit status 0 when every goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import PYTHON, TARGET_SECRET, free_port, load_line, percentile, stop_process, throwaway_env  # noqa: E402

os.environ.setdefault("GOLDPATH_TARGET_SECRET", TARGET_SECRET)  # the golden path's ${env.…} secret

from probes.channels import CLOSE_TIMEOUT_S  # noqa: E402
from probes.engine import run_check, run_checks  # noqa: E402
from probes.evidence import DEFAULT_LIMITS  # noqa: E402
from probes.net import NetworkPolicy, new_http_client  # noqa: E402
from probes.runtime import RunTarget  # noqa: E402
from probes.suite.loader import load_suite_file, parse_suite  # noqa: E402
from probes.target.server import TargetServer  # noqa: E402

HTTP_GOAL, WS_GOAL, SUITE_GOAL = 1.2, 1.1, 1.1
TIMEOUT_S = 10.0  # the checks' default timeout_s: the engine's client timeout
EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")

BENCH_SUITE = """
name: probe-overhead
vars: {token: ""}
auth:
  bearer: {type: bearer, token: "${token}"}
categories: [{name: Bench}]
checks:
  - id: http_health
    name: GET /health
    category: Bench
    steps:
      - request: {path: /health}
        expect: {status: 200}
  - id: ws_agent_run
    name: WebSocket agent run
    category: Bench
    vars: {thread: "${uuid}"}
    steps:
      - connect: {path: /ws, auth: bearer}
      - send: {json: {type: user_message, thread_id: "${thread}", content: x}}
      - receive:
          within_s: 10
          sequence:
            - {$.type: agent_started}
            - {$.type: agent_thinking}
            - {$.type: tool_executing}
            - {$.type: tool_completed}
            - {$.type: agent_completed}
"""


class ProcessTarget:
    """The same target in its own process (``manage.py serve_target``), as a service under
    test would be: the measured code and the target then share no interpreter lock."""

    host = TargetServer.host

    def __enter__(self) -> ProcessTarget:
        self.port = free_port()
        self.process = subprocess.Popen(
            [PYTHON, str(BASE_DIR / "manage.py"), "serve_target", "--port", str(self.port)],
            env=throwaway_env("probe-target"),
            cwd=BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.base_url + "/health", timeout=1, trust_env=False)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    stop_process(self.process)
                    raise RuntimeError("manage.py serve_target did not answer") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        stop_process(self.process)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"


def policy() -> NetworkPolicy:
    return NetworkPolicy(frozenset({TargetServer.host}))  # what an environment at http://127.0.0.1:PORT allows


async def interleaved(
    variants: dict[str, Callable[[], Awaitable[None]]], iterations: int, warmup: int
) -> dict[str, list[float]]:
    """Time each variant ``iterations`` times, rotating their order every round (ms)."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(warmup):  # imports, caches, the target's first connections
        for name in names:
            await variants[name]()
    for i in range(iterations):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            await variants[name]()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def report(times: dict[str, list[float]], goals: list[tuple[str, str, str, float | None]]) -> bool:
    """Print each variant's median and p95, then each ratio; True if every goal is met."""
    print(f"  {'variant':62} {'median ms':>9} {'p95 ms':>8}")
    for name, values in times.items():
        print(f"  {name:62} {statistics.median(values):9.3f} {percentile(values, 95):8.3f}")
    ok = True
    for label, engine, raw, goal in goals:
        median = statistics.median(times[engine]) / statistics.median(times[raw])
        p95 = percentile(times[engine], 95) / percentile(times[raw], 95)
        added = statistics.median(times[engine]) - statistics.median(times[raw])
        if goal is None:
            verdict = "reference, no goal"
        else:
            met = median <= goal
            ok &= met
            verdict = f"goal median <= {goal:g}x: {'goal met' if met else 'MISSED'}"
        print(f"  {label}: median {median:.3f}x ({added:+.3f} ms), p95 {p95:.2f}x — {verdict}")
    return ok


async def fetch_token(base_url: str) -> str:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            base_url + "/api/auth/token", json={"client_id": "goldpath-demo", "client_secret": TARGET_SECRET}
        )
        response.raise_for_status()
        return response.json()["access_token"]


async def http_and_ws(server: TargetServer | ProcessTarget, iterations: int, ws_iterations: int, warmup: int) -> bool:
    token = await fetch_token(server.base_url)
    model = parse_suite(BENCH_SUITE, "probe-overhead.yaml").model
    target = RunTarget(model, server.base_url, policy=policy(), variables={"token": token})
    http_check, ws_check = model.check("http_health"), model.check("ws_agent_run")
    url = server.base_url + "/health"

    async def engine_http() -> None:
        outcome = await run_check(http_check, target)
        assert outcome.outcome == "passed", outcome.message

    async def raw_http() -> None:
        async with new_http_client(TIMEOUT_S) as client:
            response = await client.get(url)
            assert response.status_code == 200, response.status_code

    async with new_http_client(TIMEOUT_S) as shared:

        async def raw_shared() -> None:
            response = await shared.get(url)
            assert response.status_code == 200, response.status_code

        variants = {
            "engine: run_check(request GET /health, expect 200)": engine_http,
            "raw: new httpx.AsyncClient(engine's settings).get": raw_http,
            "reference: raw httpx get on one shared client": raw_shared,
        }
        print(f"\n1. HTTP GET /health, {iterations} interleaved iterations per variant (+{warmup} warm-up)")
        times = await interleaved(variants, iterations, warmup)
    names = list(variants)
    ok = report(
        times,
        [
            ("engine/raw, a new client per request", names[0], names[1], HTTP_GOAL),
            ("raw new client/raw shared client", names[1], names[2], None),
        ],
    )

    async def engine_ws() -> None:
        outcome = await run_check(ws_check, target)
        assert outcome.outcome == "passed", outcome.message

    thread = 0

    async def raw_ws() -> None:
        nonlocal thread
        thread += 1
        async with connect(
            server.ws_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=DEFAULT_LIMITS.frame_bytes,
            ping_interval=None,
            proxy=None,
        ) as ws:
            await ws.send(json.dumps({"type": "user_message", "thread_id": f"raw-{thread}", "content": "x"}))
            for expected in EVENTS:
                frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
                assert frame["type"] == expected, frame

    variants = {
        "engine: run_check(connect bearer, send, receive 5 frames)": engine_ws,
        "raw: websockets connect + send + 5 recv + close": raw_ws,
    }
    print(f"\n2. WebSocket agent run, {ws_iterations} interleaved iterations per variant (+{warmup} warm-up)")
    ok &= report(await interleaved(variants, ws_iterations, warmup), [("engine/raw", *variants, WS_GOAL)])
    return ok


def suite_runs(server: TargetServer | ProcessTarget, runs: int, warmup: int) -> bool:
    model = load_suite_file(BASE_DIR / "probes" / "suites" / "golden-path.yaml").model
    print(f"\n3. golden-path suite ({len(model.checks)} checks) through run_checks, {runs} runs (+{warmup} warm-up)")
    ratios, walls, slowest_ms, added_ms, slowest_names, cpu_ms = [], [], [], [], [], []
    for i in range(warmup + runs):
        target = RunTarget(model, server.base_url, policy=policy(), environment="bench")  # per run, as on a worker
        started, cpu = time.perf_counter(), time.process_time()
        with closing(run_checks(model.checks, target)) as outcomes:
            done = list(outcomes)
        wall = time.perf_counter() - started
        cpu_ms.append((time.process_time() - cpu) * 1000)
        failed = [o for o in done if o.outcome != "passed"]
        for o in failed:
            print(f"  run {i}: {o.check_id} did not pass against the healthy target: {o.message[:300]}")
        slowest = max(done, key=lambda o: o.duration_s)
        if i < warmup:
            continue
        ratios.append(wall / slowest.duration_s)
        walls.append(wall * 1000)
        slowest_ms.append(slowest.duration_s * 1000)
        added_ms.append((wall - slowest.duration_s) * 1000)
        slowest_names.append(slowest.check_id)
    median = statistics.median(ratios)
    met = median <= SUITE_GOAL
    print(f"  suite wall:      median {statistics.median(walls):7.1f} ms, p95 {percentile(walls, 95):7.1f} ms")
    print(
        f"  slowest check:   median {statistics.median(slowest_ms):7.1f} ms, p95 {percentile(slowest_ms, 95):7.1f} ms "
        f"(most often {max(set(slowest_names), key=slowest_names.count)})"
    )
    print(f"  wall - slowest:  median {statistics.median(added_ms):7.1f} ms, max {max(added_ms):7.1f} ms")
    print(
        f"  CPU of this process per run: median {statistics.median(cpu_ms[warmup:]):.0f} ms"
        + (" (the target's included: it is a thread here)" if isinstance(server, TargetServer) else " (engine only)")
    )
    print(
        f"  wall / slowest check: median {median:.3f}x, p95 {percentile(ratios, 95):.3f}x, max {max(ratios):.3f}x — "
        f"goal median <= {SUITE_GOAL:g}x: {'goal met' if met else 'MISSED'}"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="timed HTTP iterations per variant (300)")
    parser.add_argument("--ws-iterations", type=int, default=200, help="timed WebSocket iterations per variant (200)")
    parser.add_argument("--suite-runs", type=int, default=20, help="timed suite runs (20)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first, in each section (10)")
    parser.add_argument(
        "--target",
        choices=("thread", "process"),
        default="thread",
        help="the bundled target in a thread of this process (default) or in its own process (serve_target)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    where = "in this process (a thread)" if args.target == "thread" else "in its own process (manage.py serve_target)"
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {load_line()}; target {where}")
    with TargetServer() if args.target == "thread" else ProcessTarget() as server:
        ok = asyncio.run(http_and_ws(server, args.iterations, args.ws_iterations, args.warmup))
        ok &= suite_runs(server, args.suite_runs, min(args.warmup, 2))
    print(f"\n{load_line()} at the end; {time.monotonic() - started:.0f} s in all")
    print(f"all goals: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
