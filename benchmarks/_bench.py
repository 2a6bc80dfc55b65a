"""Helpers shared by the ingest, probe, scale-out and load benchmarks (not a benchmark itself).

A throwaway set-up for child processes (a temporary GOLDPATH_DATA_DIR with SQLite and the
file-system broker, or the DATABASE_URL / CELERY_BROKER_URL given), `manage.py` calls,
Celery workers and percentiles.
"""

from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGET_SECRET = "demo-secret"  # the bundled target's default client secret


def load_line() -> str:
    """CPUs and load averages (1, 5, 15 min): what else the machine was doing."""
    one, five, fifteen = os.getloadavg()
    return f"machine: {os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    params = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432, "user": parts.username or "postgres"}
    if parts.password:
        params["password"] = parts.password
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def throwaway_env(prefix: str) -> dict[str, str]:
    """Environment for child processes: a new temporary data directory (SQLite file,
    file-system broker queue, secret key; removed at exit) unless DATABASE_URL /
    CELERY_BROKER_URL are set."""
    env = os.environ.copy()
    env["GOLDPATH_DATA_DIR"] = tempfile.mkdtemp(prefix=f"goldpath-{prefix}-")
    atexit.register(shutil.rmtree, env["GOLDPATH_DATA_DIR"], ignore_errors=True)
    env.setdefault("GOLDPATH_TARGET_SECRET", TARGET_SECRET)
    env.setdefault("GOLDPATH_LOG_LEVEL", "WARNING")
    env["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    env["PYTHONPATH"] = str(BASE_DIR)
    if env.get("DATABASE_URL", "").startswith("postgres"):
        ensure_postgres_database(env["DATABASE_URL"])
    return env


def describe_backends(env: dict[str, str]) -> str:
    db = env.get("DATABASE_URL") or f"sqlite:///{env['GOLDPATH_DATA_DIR']}/goldpath.sqlite3"
    broker = env.get("CELERY_BROKER_URL") or "filesystem broker"
    return f"database {re.sub(r'//[^@/]*@', '//', db)}, broker {re.sub(r'//[^@/]*@', '//', broker)}"


def setup_django(env: dict[str, str]) -> None:
    """Point this process at ``env``'s database and set Django up."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("GOLDPATH_", "DATABASE_", "CELERY_", "DJANGO_"))})
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def manage(env: dict[str, str], *args: str, timeout: float = 600, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run ``manage.py args`` in a child process; return its stdout, raise with its output
    when it exits with a code not in ``ok_codes``."""
    done = subprocess.run(
        [PYTHON, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode not in ok_codes:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_worker(env: dict[str, str], log_path: Path, name: str, concurrency: int = 1) -> subprocess.Popen:
    """`celery -A dashboard worker` in its own process group; returns once it says ready."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "-l", "info"]
        + ["--concurrency", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        env=env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"worker {name} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group it leads (its pool or gunicorn workers too), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
