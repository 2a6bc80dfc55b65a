"""Shared fixtures: a real Celery worker process, the bundled target on loopback, users.

The environment is set here, before Django's settings load (so pytest.ini names no
settings module), so a test run never shares the demo's data directory, SQLite file
or file-system broker queue.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
os.environ.setdefault("GOLDPATH_DATA_DIR", tempfile.mkdtemp(prefix="goldpath-test-"))
os.environ.setdefault("GOLDPATH_TARGET_SECRET", "demo-secret")
# What the suites of the tests may read on the workers (the example suites' secrets).
os.environ.setdefault("GOLDPATH_SUITE_ENV", "GOLDPATH_TARGET_SECRET,HTTPBIN_*")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

import django  # noqa: E402

from dashboard.installation import prepare  # noqa: E402

prepare()  # as manage.py, gunicorn and the worker do: the data directory, broker folders, secret key
django.setup()

import pytest  # noqa: E402
from django.conf import settings  # noqa: E402

from probes.target.server import TargetServer  # noqa: E402
from tests.factories import EnvironmentFactory, UserFactory  # noqa: E402

WORKER_READY_TIMEOUT_S = 60


def database_url_for_subprocess() -> str:
    """The URL of the database the tests use (the test database), for child processes."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = os.environ.copy()
    env["DATABASE_URL"] = database_url_for_subprocess()
    env.update(overrides)
    return env


def wait_for(run, timeout: float = 60):
    """Poll the database until ``run`` has ended (a worker finished it); return it fresh."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_done:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run #{run.pk} still {run.status} after {timeout} s")


def isolated_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Child processes on the test database but a broker queue of their own, so the
    session's worker never takes their tasks."""
    queue = f"goldpath-isolated-{os.getpid()}-{time.monotonic_ns()}"
    return subprocess_env(GOLDPATH_DATA_DIR=str(tmp_path / "data"), GOLDPATH_QUEUE=queue, **overrides)


def manage(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, input_text: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=BASE_DIR,
        input=input_text,
    )


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start `celery -A dashboard worker` and wait until it says it is ready."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dashboard",
            "worker",
            "-l",
            "info",
            "--concurrency",
            "2",
            "-n",
            f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=BASE_DIR,
        start_new_session=True,  # its own process group, so kill_worker can take the pool too
    )
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while " ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def kill_worker(process: subprocess.Popen) -> None:
    """SIGKILL a worker and its pool processes: a machine that died, not a clean shutdown."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def unconsumed_broker(tmp_path):
    """Environment overrides for a queue that no worker consumes (emptied afterwards)."""
    queue = f"goldpath-unconsumed-{os.getpid()}-{time.monotonic_ns()}"
    yield {"GOLDPATH_DATA_DIR": str(tmp_path), "GOLDPATH_QUEUE": queue}
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        import redis

        client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real worker process on the test database and the configured broker.
    ``celery_worker.log_path`` is its log file."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    # Its reaper stays quiet: it would race pytest-django's table flushes between tests.
    # The reliability tests start workers of their own with a fast reaper.
    # Webhook receivers in tests listen on loopback, which webhooks reach only when named.
    env = subprocess_env(GOLDPATH_REAPER_INTERVAL="3600", GOLDPATH_WEBHOOK_ALLOWED_HOSTS="localhost")
    process = start_worker(env, log_path)
    process.log_path = log_path
    yield process
    stop_process(process)


@pytest.fixture
def manager(client):
    """The test client logged in as a Manager, who reads every page."""
    client.force_login(UserFactory(username="manager", role="Manager"))
    return client


@pytest.fixture
def target():
    """The bundled target on an ephemeral loopback port, healthy."""
    with TargetServer() as server:
        yield server


@pytest.fixture
def target_factory():
    """Start targets with given fault modes: ``target_factory(["close-after-send"])``."""
    servers = []

    def start(faults: list[str]) -> TargetServer:
        server = TargetServer(faults)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


GOLDEN_PATH = settings.GOLDPATH_SUITES_DIR / "golden-path.yaml"
RELAXED_TARGET_MS = 60_000


@pytest.fixture
def golden_path_as_shipped(db):
    """The golden-path suite file as shipped, with its real performance targets."""
    from runs.suites import load_suite_path

    return load_suite_path(GOLDEN_PATH)


@pytest.fixture
def golden_path(db):
    """The golden path with its performance targets raised to 60 s, so that the seed's shape
    (PARTIAL SUCCESS, 9 of 12) holds on a loaded test machine: tests never depend on the
    machine's speed. Tests of a missed target use ``golden_path_as_shipped`` with a fault
    that misses it by far."""
    from probes.suite.loader import parse_suite
    from runs.suites import store_suite

    return store_suite(parse_suite(relaxed_golden_path(), str(GOLDEN_PATH), GOLDEN_PATH.parent), str(GOLDEN_PATH))


def relaxed_golden_path() -> str:
    return re.sub(r"target_ms: \d+", f"target_ms: {RELAXED_TARGET_MS}", GOLDEN_PATH.read_text())


@pytest.fixture
def relaxed_suites_dir(tmp_path) -> Path:
    """A suites folder with the relaxed golden path, for commands in child processes."""
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "golden-path.yaml").write_text(relaxed_golden_path())
    return folder


@pytest.fixture
def environment_for():
    """An Environment that points at a running target (the golden path's variables default
    to the target's demo client; GOLDPATH_TARGET_SECRET is set above)."""

    def make(server: TargetServer, name: str = "local", **fields):
        return EnvironmentFactory(name=name, base_url=server.base_url, **fields)

    return make
