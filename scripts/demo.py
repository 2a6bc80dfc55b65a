#!/usr/bin/env python3
"""One command for a new user: install, then run the dashboard, a worker, the bundled target
(in the seed report's failure mode) and a first golden-path run. Ctrl-C stops everything.

    python3 scripts/demo.py [--port 8000] [--target-port 8765] [--fault close-after-send]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import BASE_DIR, ensure_venv  # noqa: E402

DEMO_USER = "demo"


def wait_http(url: str, what: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with code {process.returncode}; see the lines above.")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"{what} did not answer at {url} within {timeout:g} s.")


def wait_worker(log: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"The Celery worker did not start; its log:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="dashboard port (default 8000)")
    parser.add_argument("--target-port", type=int, default=8765, help="bundled target port (default 8765)")
    parser.add_argument("--fault", default="close-after-send", help="target fault mode (default close-after-send)")
    args = parser.parse_args()

    python = str(ensure_venv("requirements.txt"))
    env = os.environ.copy()
    env.setdefault("GOLDPATH_TARGET_SECRET", "demo-secret")  # the bundled target's demo credential
    env.setdefault("GOLDPATH_SITE_URL", f"http://127.0.0.1:{args.port}")
    data_dir = Path(env.get("GOLDPATH_DATA_DIR") or BASE_DIR / "var")
    data_dir.mkdir(parents=True, exist_ok=True)

    def manage(*command: str) -> None:
        subprocess.run([python, "manage.py", *command], cwd=BASE_DIR, env=env, check=True)

    manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("load_suites")
    password_file = data_dir / "demo_password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()
    manage("create_user", DEMO_USER, "--password", password, "--admin")

    worker_log = data_dir / "worker.log"
    children: list[subprocess.Popen] = []

    def start(command: list[str], **kwargs) -> subprocess.Popen:
        children.append(subprocess.Popen(command, cwd=BASE_DIR, env=env, **kwargs))
        return children[-1]

    def stop(*_: object) -> None:
        for child in reversed(children):
            child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        target = start([python, "manage.py", "serve_target", "--port", str(args.target_port), "--fault", args.fault])
        with worker_log.open("w") as log:
            worker = start([python, "-m", "celery", "-A", "dashboard", "worker", "-l", "info"], stdout=log,
                           stderr=subprocess.STDOUT)
        web = start([python, "-m", "gunicorn", "dashboard.wsgi", "-b", f"127.0.0.1:{args.port}", "-w", "2",
                     "--access-logfile", "-"], stdout=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{args.target_port}/health", "The bundled target", target)
        wait_worker(worker_log, worker)
        wait_http(f"http://127.0.0.1:{args.port}/accounts/login/", "The dashboard", web)
        print("\nRunning a first golden-path run against the bundled target …", flush=True)
        subprocess.run(
            [python, "manage.py", "run_suite", "golden-path", "--env", "local",
             "--base-url", f"http://127.0.0.1:{args.target_port}", "--wait"],
            cwd=BASE_DIR, env=env, check=False,
        )
        print(
            f"\nGoldpath is running at http://127.0.0.1:{args.port}/\n"
            f"  login: {DEMO_USER} / {password}\n"
            f"  worker log: {worker_log}\n"
            f"  bundled target: http://127.0.0.1:{args.target_port} (fault: {args.fault})\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(1)
        print("A process stopped unexpectedly; shutting down.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    stop()


if __name__ == "__main__":
    main()
