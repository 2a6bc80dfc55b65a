#!/usr/bin/env python3
"""One command for a new user: install, then run the dashboard, a worker, the bundled target
(in the seed report's failure mode) and a first golden-path run. Ctrl-C stops everything.

    python3 scripts/demo.py [--port 8000] [--target-port 8765] [--fault close-after-send]

Exit status: 0 after Ctrl-C (or SIGTERM); 1 when a port is taken, something failed to start,
or one of the processes stopped on its own. Either way every process it started is stopped,
and it says which one failed and why.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import BASE_DIR, ensure_venv  # noqa: E402

DEMO_USER = "demo"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 120  # a first start on a loaded machine imports Django, Celery and gunicorn
STOP_GRACE_S = 20  # then whatever is left of a process group is killed
LOG_TAIL_LINES = 20


class DemoError(Exception):
    """Why the demo cannot go on, in words for its user; raised once, then everything stops."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: the user asked the demo to stop."""


class Signals:
    """Raises Interrupted on SIGINT and SIGTERM, except while a child starts: a signal then
    waits until the child is on the list of what to stop, so none is ever left behind."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending = False
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.deferring:
            self.pending = True
        else:
            raise Interrupted

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            raise Interrupted

    @staticmethod
    def ignore() -> None:
        """From now on (the clean-up), a second Ctrl-C cannot cut anything short."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Child:
    """A long-running process the demo started, in a process group of its own (so that
    stopping it stops the pool processes and workers it forked), with its output in ``log``."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name  # "the Celery worker"; ``title`` starts a sentence with it
        self.title = name[:1].upper() + name[1:]
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def ended(self) -> str | None:
        """How the process ended ('exited with code 1', 'was killed by SIGKILL'), or None while
        it runs. It is not reaped, so its group id cannot be reused before ``stop`` clears it."""
        info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return f"exited with code {info.si_status}"
        return f"was killed by {signal.Signals(info.si_status).name}"

    def log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return f"The end of its log ({self.log}):\n" + "\n".join(f"  {line}" for line in lines)

    def has_logged(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def stop(self, deadline: float) -> None:
        """Let it shut down by itself until ``deadline``, then kill what is left of its group."""
        if self.ended() is None:
            os.kill(self.process.pid, signal.SIGTERM)  # not Popen.send_signal: it would reap
        while self.ended() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # a hung leader, or the orphans of a dead one
        except (ProcessLookupError, PermissionError):
            pass  # the group is empty but for the leader's zombie
        self.process.wait()


def port_taken(port: int) -> OSError | None:
    """Why ``port`` cannot be listened on (as the target and gunicorn would: SO_REUSEADDR),
    or None when it is free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            return exc
    return None


def check_ports(ports: list[tuple[str, int, str]]) -> None:
    """Refuse, before starting anything, ports that are taken: otherwise the process that
    answers there might be an earlier demo's, or anyone's. ``ports``: what would listen, on
    which port, and the option that sets it."""
    flags: dict[int, str] = {}
    for what, port, flag in ports:
        if port in flags:
            raise DemoError(f"{flags[port]} and {flag} are both {port}: give each its own port.")
        flags[port] = flag
        error = port_taken(port)
        if error is None:
            continue
        if error.errno == errno.EADDRINUSE:
            raise DemoError(
                f"Port {port} on {HOST}, for {what}, is already in use (an earlier demo still running?). "
                f"Stop what listens there, or choose another port with {flag}."
            )
        raise DemoError(f"Cannot listen on {HOST}:{port} for {what} ({flag}): {error.strerror}.")


def wait_until(children: list[Child], waiting_for: Child, ready: Callable[[], bool], what: str) -> None:
    """Wait until ``ready()``; fail, naming the process, as soon as any child ends or when
    ``waiting_for`` takes longer than READY_TIMEOUT_S. Readiness is read from the child's own
    output, so a process it did not start can never pass for it."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        for child in children:
            if (how := child.ended()) is not None:
                raise DemoError(f"{child.title} {how} while starting. {child.log_tail()}")
        if time.monotonic() > deadline:
            raise DemoError(f"{waiting_for.title} did not {what} within {READY_TIMEOUT_S} s. {waiting_for.log_tail()}")
        time.sleep(0.2)


def answers(url: str, child: Child) -> bool:
    """Whether the dashboard answers ``url`` (False while it cannot be reached yet)."""
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as exc:
        raise DemoError(f"{child.title} answered {url} with HTTP {exc.code}. {child.log_tail()}") from None
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="dashboard port (default 8000)")
    parser.add_argument("--target-port", type=int, default=8765, help="bundled target port (default 8765)")
    parser.add_argument("--fault", default="close-after-send", help="target fault mode (default close-after-send)")
    args = parser.parse_args()

    children: list[Child] = []
    signals = Signals()
    failure = None
    try:
        check_ports([("the dashboard", args.port, "--port"), ("the bundled target", args.target_port, "--target-port")])
        run_demo(args, children, signals)
    except DemoError as exc:
        failure = str(exc)
    except Interrupted:
        pass
    finally:
        signals.ignore()
        if children:
            print(f"\nStopping {', '.join(child.name for child in children)} …", file=sys.stderr, flush=True)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(children):
            child.stop(deadline)
    if failure is not None:
        print(f"\n{failure}", file=sys.stderr)
        return 1
    return 0


def run_demo(args: argparse.Namespace, children: list[Child], signals: Signals) -> NoReturn:
    """Set up, start the three processes (appended to ``children`` as they start), make a
    first run, then watch them until one ends: that raises DemoError, Ctrl-C Interrupted."""
    python = str(ensure_venv("requirements.txt"))
    env = os.environ.copy()
    env.setdefault("GOLDPATH_TARGET_SECRET", "demo-secret")  # the bundled target's demo credential
    env.setdefault("GOLDPATH_SITE_URL", f"http://{HOST}:{args.port}")
    data_dir = Path(env.get("GOLDPATH_DATA_DIR") or BASE_DIR / "var")
    env["GOLDPATH_DATA_DIR"] = str(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    def manage(*command: str) -> int:
        return subprocess.run([python, "manage.py", *command], cwd=BASE_DIR, env=env).returncode

    for command in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"], ["load_suites"]):
        if code := manage(*command):
            raise DemoError(f"manage.py {command[0]} exited with code {code} (its output is above).")
    password_file = data_dir / "demo_password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()
    # --password=…: a token_urlsafe password may start with "-", which argparse takes for an option.
    if code := manage("create_user", DEMO_USER, f"--password={password}", "--admin"):
        raise DemoError(f"manage.py create_user exited with code {code} (its output is above).")

    def start(name: str, command: list[str], log_name: str) -> Child:
        with signals.deferred():
            children.append(Child(name, command, data_dir / log_name, env))
        return children[-1]

    target = start(
        "the bundled target (manage.py serve_target)",
        [python, "manage.py", "serve_target", "--port", str(args.target_port), "--fault", args.fault],
        "target.log",
    )
    worker = start(
        "the Celery worker", [python, "-m", "celery", "-A", "dashboard", "worker", "-l", "info"], "worker.log"
    )
    web = start(
        "the dashboard (gunicorn)",
        [python, "-m", "gunicorn", "dashboard.wsgi", "-b", f"{HOST}:{args.port}", "-w", "2", "--access-logfile", "-"],
        "dashboard.log",
    )
    wait_until(children, target, lambda: target.has_logged(f"Reference target on http://{HOST}:"), "listen")
    wait_until(children, worker, lambda: worker.has_logged(" ready."), "say it is ready")
    wait_until(children, web, lambda: web.has_logged(f"Listening at: http://{HOST}:{args.port}"), "listen")
    login_url = f"http://{HOST}:{args.port}/accounts/login/"
    wait_until(children, web, lambda: answers(login_url, web), f"answer {login_url}")

    print("\nRunning a first golden-path run against the bundled target …", flush=True)
    target_url = f"http://{HOST}:{args.target_port}"
    code = manage("run_suite", "golden-path", "--env", "local", "--base-url", target_url, "--wait")
    if code == 1:  # 0, 2 and 3 are verdicts (PASS, FAIL, PARTIAL SUCCESS)
        print("The first run did not run (see above); the dashboard keeps running.", file=sys.stderr)
    print(
        f"\nGoldpath is running at http://{HOST}:{args.port}/\n"
        f"  login: {DEMO_USER} / {password}\n"
        f"  bundled target: {target_url} (fault: {args.fault})\n"
        f"  logs: {target.log}, {worker.log}, {web.log}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    while True:
        for child in children:
            if (how := child.ended()) is not None:
                raise DemoError(f"{child.title} stopped unexpectedly: it {how}. {child.log_tail()}")
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
