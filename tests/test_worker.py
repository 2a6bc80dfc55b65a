"""Runs go through the broker to a real Celery worker process and land in the database."""

import time

import pytest

from runs.models import Run, RunStatus
from runs.services import create_run
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_runs_the_seed_failure_through_a_worker(celery_worker, golden_path, target_factory, environment_for):
    server = target_factory(["close-after-send"])
    run = wait_for(create_run(golden_path, environment_for(server)))
    assert run.status == RunStatus.FINISHED
    assert (run.total, run.passed, run.failed) == (12, 9, 3)
    assert run.verdict == "PARTIAL SUCCESS"
    failing = run.results.exclude(outcome="passed").select_related("test_case")
    assert {r.test_case.name for r in failing} == {
        "WebSocket Message Send",
        "Agent Execution Flow",
        "Real-time Updates",
    }
    assert all("code 1000" in r.message for r in failing)
    assert run.worker.startswith("test-")


def test_it_runs_a_healthy_target_to_pass(celery_worker, golden_path, target, environment_for):
    run = wait_for(create_run(golden_path, environment_for(target)))
    failures = list(run.results.exclude(outcome="passed").values_list("test_case__name", "message"))
    assert (run.status, run.verdict, run.passed) == (RunStatus.FINISHED, "PASS", 12), failures
    assert run.measurements.filter(ok=True).count() == 5
    assert run.duration_s is not None and run.duration_s < 10


def test_it_stores_each_result_before_the_run_ends(celery_worker, golden_path, target_factory, environment_for):
    server = target_factory(["slow-agent"])  # the agent checks take 2 s; the HTTP ones do not
    run = create_run(golden_path, environment_for(server))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status == RunStatus.RUNNING and run.results.exists():
            break
        time.sleep(0.05)
    assert run.status == RunStatus.RUNNING
    assert 0 < run.results.count() < 12
    assert wait_for(run).total == 12


def test_it_runs_only_the_checks_in_scope(celery_worker, golden_path, target, environment_for):
    checks = golden_path.test_cases.filter(node_id__in=["backend_health", "websocket_connection"])
    run = wait_for(create_run(golden_path, environment_for(target), scope=Run.Scope.TEST, test_cases=checks))
    assert sorted(run.results.values_list("test_case__node_id", flat=True)) == [
        "backend_health",
        "websocket_connection",
    ]
    assert run.verdict == "PASS"
