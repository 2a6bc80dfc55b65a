"""`manage.py run_suite` as a user runs it: a child process, its exit code, stdout and stderr."""

import json
import os
import re
import time

import pytest

from runs.models import Environment, Run, RunStatus
from tests.conftest import manage, start_worker, stop_process, subprocess_env

RESULT_KEYS = {"name", "category", "outcome", "duration_s", "message", "evidence"}
CATEGORY_KEYS = {"name", "total", "passed", "failed", "duration_s"}
MEASUREMENT_KEYS = {"name", "p50_ms", "p95_ms", "target_ms", "ok"}
# run_suite --wait's documented exit codes (README, Commands; the command's help).
EXIT_PASS, EXIT_ERROR, EXIT_FAIL, EXIT_PARTIAL = 0, 1, 2, 3
SEED_CATEGORIES = [
    ("Priority 1 Critical", 1, 0, 1),
    ("WebSocket Events", 1, 0, 1),
    ("Message Flow", 3, 2, 1),
    ("Critical Path", 6, 6, 0),
    ("Connectivity", 1, 1, 0),
]


def close_codes(evidence: dict) -> set[int]:
    """The WebSocket close codes recorded anywhere in one result's evidence."""
    found = set()
    for value in evidence.values():
        if isinstance(value, dict):
            found |= close_codes(value)
    if "close_code" in evidence:
        found.add(evidence["close_code"])
    return found


@pytest.mark.django_db(transaction=True)
def test_it_prints_the_seed_failure_report_as_json(celery_worker, target_factory, relaxed_suites_dir):
    server = target_factory(["close-after-send"])
    env = subprocess_env(GOLDPATH_SUITES_DIR=str(relaxed_suites_dir))  # targets no loaded machine misses
    process = manage("run_suite", "golden-path", "--base-url", server.base_url, "--wait", "--json", env=env)
    assert process.returncode == EXIT_PARTIAL, process.stderr
    report = json.loads(process.stdout)

    assert report["run_id"] == Run.objects.get().pk
    assert (report["status"], report["verdict"]) == ("finished", "PARTIAL SUCCESS")
    assert (report["total"], report["passed"], report["failed"]) == (12, 9, 3)
    assert report["duration_s"] > 0
    assert all(CATEGORY_KEYS <= set(c) for c in report["categories"])
    assert [(c["name"], c["total"], c["passed"], c["failed"]) for c in report["categories"]] == SEED_CATEGORIES
    assert len(report["results"]) == 12 and all(RESULT_KEYS <= set(r) for r in report["results"])
    failing = [r for r in report["results"] if r["outcome"] != "passed"]
    assert {r["name"] for r in failing} == {"WebSocket Message Send", "Agent Execution Flow", "Real-time Updates"}
    assert all(close_codes(r["evidence"]) == {1000} for r in failing)
    assert len(report["measurements"]) == 5
    assert all(MEASUREMENT_KEYS <= set(m) for m in report["measurements"])


@pytest.mark.django_db(transaction=True)
def test_it_names_the_known_suites_for_an_unknown_one():
    process = manage("run_suite", "no-such-suite", "--base-url", "http://127.0.0.1:9")
    assert process.returncode != 0
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown suite 'no-such-suite'" in lines[0]
    assert "golden-path" in lines[0].partition("known suites:")[2]
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_ends_the_run_as_error_when_the_broker_is_unreachable():
    started = time.monotonic()
    process = manage(
        "run_suite",
        "golden-path",
        "--base-url",
        "http://127.0.0.1:9",
        "--wait",
        env=subprocess_env(CELERY_BROKER_URL="redis://127.0.0.1:1/0"),
        timeout=30,
    )
    assert time.monotonic() - started < 20
    assert process.returncode == EXIT_ERROR
    assert "broker at redis://127.0.0.1:1/0 could not be reached" in process.stderr
    assert "Start the broker or fix CELERY_BROKER_URL" in process.stderr
    run = Run.objects.get()
    assert run.status == RunStatus.ERROR
    assert run.status_message.startswith("Not dispatched: the task queue is not accepting work.")


@pytest.mark.django_db(transaction=True)
def test_it_says_how_to_start_a_worker_when_none_picks_the_run_up(unconsumed_broker):
    process = manage(
        "run_suite",
        "golden-path",
        "--base-url",
        "http://127.0.0.1:9",
        "--wait",
        "--pickup-timeout",
        "2",
        env=subprocess_env(**unconsumed_broker),
        timeout=30,
    )
    assert process.returncode == EXIT_ERROR
    assert "no worker picked it up" in process.stderr
    assert "celery -A dashboard worker" in process.stderr
    assert Run.objects.get().status == RunStatus.QUEUED


@pytest.mark.parametrize("base_url", ["ftp://x", "not a url"])
@pytest.mark.django_db(transaction=True)
def test_it_refuses_an_unusable_base_url(base_url):
    process = manage("run_suite", "golden-path", "--base-url", base_url)
    assert process.returncode != 0
    assert f"{base_url!r} is not a usable URL" in process.stderr
    assert "scheme (http, https, ws or wss)" in process.stderr
    assert not Run.objects.exists()


def test_it_runs_on_the_embedded_default_sqlite_and_file_system_broker(tmp_path, target, relaxed_suites_dir):
    env = os.environ.copy()
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    env["GOLDPATH_DATA_DIR"] = str(tmp_path)
    env["GOLDPATH_SUITES_DIR"] = str(relaxed_suites_dir)
    migrated = manage("migrate", "--no-input", "-v", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        process = manage("run_suite", "golden-path", "--base-url", target.base_url, "--wait", "--json", env=env)
    finally:
        stop_process(worker)
    assert process.returncode == EXIT_PASS, process.stderr
    report = json.loads(process.stdout)
    assert (report["status"], report["verdict"]) == ("finished", "PASS")
    assert len(report["results"]) == 12 and report["passed"] == 12
    assert (tmp_path / "goldpath.sqlite3").exists()
    assert (tmp_path / "broker" / "queue").is_dir()


@pytest.mark.django_db(transaction=True)
def test_it_queues_without_waiting_and_prints_the_link(celery_worker, target, relaxed_suites_dir):
    env = subprocess_env(GOLDPATH_SUITES_DIR=str(relaxed_suites_dir))  # a PASS on a loaded machine too
    process = manage("run_suite", "golden-path", "--base-url", target.base_url, env=env)
    assert process.returncode == 0, process.stderr
    match = re.fullmatch(r"Run #(\d+) queued: (https?://\S+)\n", process.stdout)
    assert match, process.stdout
    run = Run.objects.get(pk=int(match[1]))
    assert match[2].endswith(run.get_absolute_url())
    deadline = time.monotonic() + 60  # the worker takes it, so nothing is left queued for other tests
    while not run.is_done and time.monotonic() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    assert (run.status, run.verdict) == (RunStatus.FINISHED, "PASS")


@pytest.mark.django_db(transaction=True)
def test_it_exits_with_2_when_the_run_fails(celery_worker, target_factory, relaxed_suites_dir):
    server = target_factory(["auth-reject"])  # no token: every authenticated check fails, critical ones too
    env = subprocess_env(GOLDPATH_SUITES_DIR=str(relaxed_suites_dir))
    process = manage("run_suite", "golden-path", "--base-url", server.base_url, "--wait", env=env)
    assert process.returncode == EXIT_FAIL, process.stderr
    assert process.stdout.startswith(f"Run #{Run.objects.get().pk} FAIL: ")
    assert process.stderr == ""


def test_its_help_documents_the_exit_codes():
    process = manage("run_suite", "--help")
    assert process.returncode == 0, process.stderr
    text = " ".join(process.stdout.split())  # argparse wraps lines
    assert "0 PASS, 1 error (could not run, ended in error or cancelled), 2 FAIL, 3 PARTIAL SUCCESS" in text


@pytest.mark.django_db(transaction=True)
def test_it_says_when_it_points_an_existing_environment_elsewhere(unconsumed_broker):
    env = subprocess_env(**unconsumed_broker)
    created = manage("run_suite", "golden-path", "--base-url", "http://127.0.0.1:9", env=env)
    assert created.returncode == 0, created.stderr
    assert "Changed environment" not in created.stderr  # a new one: nothing was pointed elsewhere
    moved = manage(
        "run_suite", "golden-path", "--base-url", "http://127.0.0.1:10", "--ws-url", "ws://127.0.0.1:11/ws", env=env
    )
    assert moved.returncode == 0, moved.stderr
    assert moved.stderr.splitlines() == [
        "Changed environment 'local': its base URL from http://127.0.0.1:9 to http://127.0.0.1:10 and its "
        "WebSocket URL from (from the base URL) to ws://127.0.0.1:11/ws (its later runs go there too)"
    ]
    environment = Environment.objects.get(name="local")
    assert (environment.base_url, environment.ws_url) == ("http://127.0.0.1:10", "ws://127.0.0.1:11/ws")
    again = manage(
        "run_suite", "golden-path", "--base-url", "http://127.0.0.1:10", "--ws-url", "ws://127.0.0.1:11/ws", env=env
    )
    assert again.returncode == 0, again.stderr
    assert "Changed environment" not in again.stderr
