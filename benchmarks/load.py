"""50 logged-in users browsing the dashboard while 5 reruns run: errors and p95 per page.

    .venv/bin/python benchmarks/load.py [--users 50] [--duration 60] [--reruns 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/goldpath_bench_load \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/11 .venv/bin/python benchmarks/load.py

Set-up on a throwaway database (a temporary GOLDPATH_DATA_DIR with SQLite and the
file-system broker unless DATABASE_URL / CELERY_BROKER_URL are given): ``migrate``,
``generate_history --runs 300``, the bundled target (``serve_target --fault
close-after-send``), one Celery worker (``--concurrency 2``), gunicorn (``-w 3``) on a free
loopback port, one real golden-path run through ``run_suite --wait`` (the parent of the
reruns) and ``--users`` Engineer logins (``create_user``).

Load: all users log in at once through the real login form (CSRF token, session cookie;
reported apart), then browse together in a loop with 0.3-1.5 s think times: overview, runs
list, runs list filtered, a run's page, a progress fragment, trends, business, compare, a
check's history. As browsing starts, ``--reruns`` of them each open the real run's page and
POST its "Rerun all" / "Rerun failed" form (with its CSRF token and request key). After
``--duration`` seconds every user stops; the script waits (bounded) for the reruns to end,
prints requests, errors (any status other than 2xx/3xx, or an exception) and p50/p95 per
page, and stops everything it started.
The load generator is asyncio + httpx in this process (no extra dependency); it shares
the machine's 2 cores with the server, so its own CPU use is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import (  # noqa: E402
    BASE_DIR,
    PYTHON,
    describe_backends,
    free_port,
    group_cpu_s,
    manage,
    percentile,
    setup_django,
    start_worker,
    stop_process,
    throwaway_env,
)

PASSWORD = "load-bench-password-1"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
REQUEST_KEY = re.compile(r'name="request_key" value="([^"]+)-all"')


class Stats:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: list[str] = []

    def record(self, page: str, ms: float, error: str | None) -> None:
        self.times[page].append(ms)
        if error:
            self.errors[page] += 1
            if len(self.samples) < 8:
                self.samples.append(f"{page}: {error}")


async def fetch(
    client: httpx.AsyncClient, stats: Stats, page: str, method: str, url: str, **kw
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        stats.record(page, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
        return None
    error = None if response.status_code < 400 else f"HTTP {response.status_code} for {url}"
    stats.record(page, (time.perf_counter() - started) * 1000, error)
    return response


async def login(client: httpx.AsyncClient, stats: Stats, username: str) -> bool:
    form = await fetch(client, stats, "login form", "GET", "/accounts/login/")
    token = CSRF.search(form.text) if form is not None else None
    if token is None:
        return False
    data = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1), "next": "/"}
    response = await fetch(client, stats, "login POST", "POST", "/accounts/login/", data=data)
    return response is not None and response.status_code == 302 and "sessionid" in client.cookies


async def rerun(client: httpx.AsyncClient, stats: Stats, parent_id: int, scope: str) -> int | None:
    page = await fetch(client, stats, "run detail", "GET", f"/runs/{parent_id}/")
    token, key = (CSRF.search(page.text), REQUEST_KEY.search(page.text)) if page is not None else (None, None)
    if not token or not key:
        stats.record("rerun POST", 0, "no rerun form on the run's page")
        return None
    data = {"csrfmiddlewaretoken": token.group(1), "scope": scope, "request_key": f"{key.group(1)}-{scope}"}
    response = await fetch(client, stats, "rerun POST", "POST", f"/runs/{parent_id}/rerun/", data=data)
    match = re.search(r"/runs/(\d+)/", response.headers.get("location", "")) if response is not None else None
    return int(match.group(1)) if match else None


async def user(client, n: int, ids: dict, stats: Stats, stop_at: float, rerun_scope: str | None, started: list):
    rng = random.Random(n)
    if rerun_scope:
        started.append(await rerun(client, stats, ids["parent"], rerun_scope))
    while time.monotonic() < stop_at:
        run_id, other = rng.choice(ids["runs"]), rng.choice(ids["runs"])
        page, url = rng.choice(
            [
                ("overview", "/"),
                ("runs list", "/runs/"),
                ("runs filtered", "/runs/?environment=env-2&verdict=PARTIAL+SUCCESS&sort=-duration_s"),
                ("run detail", f"/runs/{run_id}/"),
                ("progress fragment", f"/runs/{rng.choice(started or [run_id]) or run_id}/progress/"),
                ("trends", "/trends/"),
                ("business", "/business/"),
                ("compare", f"/compare/?a={other}&b={run_id}"),
                ("test case history", f"/cases/{rng.choice(ids['cases'])}/"),
            ]
        )
        await fetch(client, stats, page, "GET", url)
        await asyncio.sleep(rng.uniform(0.3, 1.5))


async def load(base_url: str, users: int, reruns: int, duration: float, ids: dict, cpu) -> tuple:
    """Log every user in (all at once), then let them browse together for ``duration`` s."""
    login_stats, stats, started = Stats(), Stats(), []
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False, trust_env=False) for _ in range(users)
    ]
    try:
        logged_in = await asyncio.gather(*(login(client, login_stats, f"u{n}") for n, client in enumerate(clients)))
        for n, ok in enumerate(logged_in):
            if not ok:
                login_stats.record("login POST", 0, f"u{n} could not log in")
        t0, cpu_before = time.monotonic(), cpu()
        scopes = ["all", "failed"]
        await asyncio.gather(
            *(
                user(client, n, ids, stats, t0 + duration, scopes[n % 2] if n < reruns else None, started)
                for n, client in enumerate(clients)
                if logged_in[n]
            )
        )
        elapsed, cpu_after = time.monotonic() - t0, cpu()
        return login_stats, stats, started, elapsed, {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    finally:
        for client in clients:
            await client.aclose()


def table(stats: Stats, elapsed: float | None = None) -> int:
    for page, times in sorted(stats.times.items()):
        print(
            f"{page:20} {len(times):8} {stats.errors[page]:6} {statistics.median(times):8.0f} "
            f"{percentile(times, 95):8.0f} {max(times):8.0f}"
        )
    total, errors = sum(len(v) for v in stats.times.values()), sum(stats.errors.values())
    rate = f"  ({total / elapsed:.1f} requests/s over {elapsed:.0f} s)" if elapsed else ""
    print(f"{'all':20} {total:8} {errors:6}{rate}")
    for sample in stats.samples:
        print(f"  error: {sample}")
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60, help="seconds of browsing (60)")
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument("--history", type=int, default=300, help="generated runs (300)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (3)")
    args = parser.parse_args()

    env = throwaway_env("load")
    logs = Path(tempfile.mkdtemp(prefix="goldpath-load-logs-"))
    print(f"{describe_backends(env)}; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    manage(env, "migrate", "--noinput")
    manage(env, "generate_history", "--runs", str(args.history))
    processes: list[subprocess.Popen] = []
    try:
        target_port, web_port = free_port(), free_port()
        target = subprocess.Popen(
            [PYTHON, "manage.py", "serve_target", "--port", str(target_port), "--fault", "close-after-send"],
            env=env,
            cwd=BASE_DIR,
            stdout=(logs / "target.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(target)
        worker = start_worker(env, logs / "worker.log", "load-bench", concurrency=2)
        processes.append(worker)
        web = subprocess.Popen(
            [str(BASE_DIR / ".venv" / "bin" / "gunicorn"), "dashboard.wsgi", "-b", f"127.0.0.1:{web_port}"]
            + ["-w", str(args.web_workers), "--access-logfile", str(logs / "access.log")],
            env=env,
            cwd=BASE_DIR,
            stdout=(logs / "gunicorn.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(web)
        base_url = f"http://127.0.0.1:{web_port}"
        # The reruns' parent: a real run against the bundled target, through the worker; any
        # verdict will do (run_suite exits 3 on PARTIAL SUCCESS, 2 on FAIL).
        manage(
            env,
            "run_suite",
            "golden-path",
            "--env",
            "local",
            "--base-url",
            f"http://127.0.0.1:{target_port}",
            "--wait",
            ok_codes=(0, 2, 3),
        )
        setup_django(env)
        from django.core.management import call_command

        from runs.models import Run, TestCase

        for n in range(args.users):
            call_command("create_user", f"u{n}", password=PASSWORD, role="Engineer", stdout=open(os.devnull, "w"))
        ids = {
            "parent": Run.objects.filter(environment__name="local").latest("pk").pk,
            "runs": list(Run.objects.filter(environment__name__startswith="env-").values_list("pk", flat=True)),
            "cases": list(TestCase.objects.filter(suite__name="golden-path").values_list("pk", flat=True)),
        }
        deadline = time.monotonic() + 30
        while True:  # gunicorn answers?
            try:
                httpx.get(base_url + "/accounts/login/", timeout=2, trust_env=False)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer:\n{(logs / 'gunicorn.log').read_text()[-2000:]}")
                time.sleep(0.3)
        print(
            f"history: {len(ids['runs'])} generated runs; {args.users} users, {args.reruns} reruns of run "
            f"#{ids['parent']}, {args.duration:g} s; gunicorn -w {args.web_workers}, 1 worker --concurrency 2; "
            f"logs in {logs}"
        )

        def cpu() -> dict[str, float]:
            me = resource.getrusage(resource.RUSAGE_SELF)
            return {
                "gunicorn": group_cpu_s(web.pid),
                "worker": group_cpu_s(worker.pid),
                "target": group_cpu_s(target.pid),
                "load generator": me.ru_utime + me.ru_stime,
            }

        login_stats, stats, rerun_ids, elapsed, cpu_used = asyncio.run(
            load(base_url, args.users, args.reruns, args.duration, ids, cpu)
        )
        rerun_ids = [i for i in rerun_ids if i]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not all(r.is_done for r in Run.objects.filter(pk__in=rerun_ids)):
            time.sleep(0.5)
        reruns = list(Run.objects.filter(pk__in=rerun_ids).order_by("pk"))
    finally:
        for process in reversed(processes):
            stop_process(process)

    header = f"{'page':20} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(f"\nLogins, all {args.users} users at once (PBKDF2 password hashing on the server):\n{header}")
    errors = table(login_stats)
    print(f"\nBrowsing, {args.users} logged-in users for {args.duration:g} s while the reruns run:\n{header}")
    errors += table(stats, elapsed)
    print(
        f"CPU used while browsing, in cores (of {os.cpu_count()}): "
        + ", ".join(f"{name} {seconds / elapsed:.2f}" for name, seconds in cpu_used.items())
        + f"; load average {os.getloadavg()[0]:.1f}; gunicorn CPU per request "
        f"{cpu_used['gunicorn'] / max(1, sum(len(v) for v in stats.times.values())) * 1000:.0f} ms"
    )
    finished = [r for r in reruns if r.is_done]
    print(
        f"reruns: {len(rerun_ids)} of {args.reruns} started, {len(finished)} finished: "
        + ", ".join(
            f"#{r.pk} {r.get_scope_display().lower()} {r.verdict or r.status} in {r.duration_s or 0:.1f} s"
            for r in reruns
        )
    )
    ok = errors == 0 and len(finished) == args.reruns
    print(f"goal 0 errors and all {args.reruns} reruns finished: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
