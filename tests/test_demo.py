"""`scripts/demo.py` as a user runs it: a child process on real loopback ports, its exit code
and what it says, and — whatever happened — no process of it left running.

Each demo gets a data directory of its own (GOLDPATH_DATA_DIR), which every process it starts
inherits: that is how the tests find them in /proc. Its database and broker are the embedded
ones in that directory, so the demo shares nothing with the test run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.target.server import TargetServer
from tests.conftest import BASE_DIR
from tests.webserver import free_port

DEMO = BASE_DIR / "scripts" / "demo.py"
DASHED_PASSWORD = "-starts-with-a-dash"
HANG_GUARD_S = 240  # a bound on waiting, not a timing assertion: a healthy start takes a fraction


def demo_env(data_dir: Path) -> dict[str, str]:
    env = os.environ.copy()
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "GOLDPATH_CACHE_URL", "GOLDPATH_QUEUE"):
        env.pop(name, None)
    env["GOLDPATH_DATA_DIR"] = str(data_dir)
    return env


def run_demo(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        env=demo_env(data_dir),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def processes_of(data_dir: Path) -> dict[int, str]:
    """The running processes started with this GOLDPATH_DATA_DIR: pid -> command line."""
    marker = f"GOLDPATH_DATA_DIR={data_dir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def assert_nothing_left(data_dir: Path) -> None:
    """No process of the demo is running. Processes killed by the demo's last SIGKILL may
    take a moment to disappear from /proc, so this waits for that before failing."""
    deadline = time.monotonic() + 10
    while (left := processes_of(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == {}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    for pid in processes_of(path):  # a failed test leaves nothing running either
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def held_socket() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_dashboard_port_in_use_is_named_before_anything_starts(data_dir, held_socket):
    done = run_demo(data_dir, "--port", str(held_socket), "--target-port", str(free_port()))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"Port {held_socket} on 127.0.0.1, for the dashboard, is already in use (an earlier demo still "
        "running?). Stop what listens there, or choose another port with --port."
    )
    assert not data_dir.exists()  # not even the database was made
    assert_nothing_left(data_dir)


def test_an_earlier_target_on_the_port_is_refused_not_adopted(data_dir):
    """The bundled target of an earlier demo still answering on the port: this demo stops
    there instead of taking it for its own."""
    with TargetServer() as earlier:
        done = run_demo(data_dir, "--port", str(free_port()), "--target-port", str(earlier.port))
    assert done.returncode == 1, done.stderr
    assert f"Port {earlier.port} on 127.0.0.1, for the bundled target, is already in use" in done.stderr
    assert "choose another port with --target-port" in done.stderr
    assert "Goldpath is running" not in done.stdout
    assert not data_dir.exists()
    assert_nothing_left(data_dir)


def test_the_same_port_twice_is_refused(data_dir):
    port = str(free_port())
    done = run_demo(data_dir, "--port", port, "--target-port", port)
    assert done.returncode == 1
    assert done.stderr.strip() == f"--port and --target-port are both {port}: give each its own port."


def test_a_process_that_fails_to_start_is_named_and_everything_else_is_stopped(data_dir):
    done = run_demo(data_dir, "--port", str(free_port()), "--target-port", str(free_port()), "--fault", "no-such")
    assert done.returncode == 1, done.stderr
    # The three had been started; all of them were stopped.
    assert "Stopping the bundled target (manage.py serve_target), the Celery worker, the dashboard (gunicorn)" in (
        done.stderr
    )
    assert "The bundled target (manage.py serve_target) exited with code 1 while starting" in done.stderr
    assert "CommandError: invalid fault 'no-such'" in done.stderr
    assert "Goldpath is running" not in done.stdout
    assert_nothing_left(data_dir)


class RunningDemo:
    """The demo started in the background, once it says Goldpath is running."""

    def __init__(self, data_dir: Path, output: Path) -> None:
        self.port = free_port()
        self.output = output
        self.data_dir = data_dir
        with output.open("w") as sink:
            self.process = subprocess.Popen(
                [sys.executable, str(DEMO), "--port", str(self.port), "--target-port", str(free_port())],
                env=demo_env(data_dir),
                cwd=BASE_DIR,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + HANG_GUARD_S
        while "Press Ctrl-C to stop." not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo did not start:\n{self.text()}")
            time.sleep(0.2)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait(self) -> int:
        return self.process.wait(timeout=HANG_GUARD_S)


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory) -> Path:
    """One data directory for the full starts, so the second finds its database migrated;
    its demo password starts with a dash, as one of token_urlsafe's may."""
    path = tmp_path_factory.mktemp("demo") / "data"
    path.mkdir()
    (path / "demo_password").write_text(DASHED_PASSWORD)
    return path


@pytest.fixture
def running_demo(shared_data_dir, tmp_path) -> Iterator[RunningDemo]:
    demo = RunningDemo(shared_data_dir, tmp_path / "demo.out")
    yield demo
    if demo.process.poll() is None:
        demo.process.kill()
    for pid in processes_of(shared_data_dir):
        os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_everything_and_exits_0(running_demo):
    commands = processes_of(running_demo.data_dir).values()
    assert any("serve_target" in c for c in commands) and any("celery" in c for c in commands)
    assert any("gunicorn" in c for c in commands)
    with urllib.request.urlopen(f"http://127.0.0.1:{running_demo.port}/accounts/login/") as login:
        assert login.status == 200
    assert "Run #1 " in running_demo.text()  # the first golden-path run, whatever its verdict here
    assert f"login: demo / {DASHED_PASSWORD}\n" in running_demo.text()

    running_demo.process.send_signal(signal.SIGINT)
    assert running_demo.wait() == 0, running_demo.text()
    assert_nothing_left(running_demo.data_dir)


def test_a_process_that_dies_later_is_named_and_the_rest_stopped(running_demo):
    [target] = [pid for pid, command in processes_of(running_demo.data_dir).items() if "serve_target" in command]
    os.kill(target, signal.SIGKILL)
    assert running_demo.wait() == 1, running_demo.text()
    lines = running_demo.text().splitlines()
    assert (
        "The bundled target (manage.py serve_target) stopped unexpectedly: it was killed by SIGKILL. "
        f"The end of its log ({running_demo.data_dir / 'target.log'}):"
    ) in lines
    assert_nothing_left(running_demo.data_dir)
