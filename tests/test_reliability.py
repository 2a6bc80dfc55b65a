"""Faults on the real parts: a worker killed mid-run, the reaper, queued runs nobody takes."""

import time

import pytest
from django.db import OperationalError

from runs.models import Run, RunStatus
from runs.services import reap_stale_runs
from runs.tasks import with_database_retry
from tests.conftest import isolated_env, kill_worker, manage, start_worker, stop_process

pytestmark = pytest.mark.django_db(transaction=True)

FAST_REAPER = {"GOLDPATH_STALE_AFTER": "4", "GOLDPATH_REAPER_INTERVAL": "1", "GOLDPATH_HEARTBEAT": "1"}


def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


def queue_run(env, server) -> Run:
    result = manage("run_suite", "golden-path", "--env", "reliability", "--base-url", server.base_url, env=env)
    assert result.returncode == 0, result.stderr
    return Run.objects.latest("pk")


def kill_mid_run(env, tmp_path, server, stored_at_least: int) -> tuple[Run, int]:
    """Queue a run, SIGKILL its worker once some results are stored; return the run and
    how many results it had then."""
    victim = start_worker(env, tmp_path / "victim.log")
    run = queue_run(env, server)
    wait_until(lambda: Run.objects.get(pk=run.pk).results.count() >= stored_at_least, timeout=30)
    kill_worker(victim)
    return run, Run.objects.get(pk=run.pk).results.count()


def test_it_resumes_a_run_whose_worker_was_killed(tmp_path, target_factory):
    env = isolated_env(tmp_path, **FAST_REAPER)
    run, stored = kill_mid_run(env, tmp_path, target_factory(["slow-agent"]), stored_at_least=4)
    assert stored < 12  # the WebSocket checks of slow-agent take over 2 s: killed mid-run
    rescuer = start_worker(env, tmp_path / "rescuer.log")
    try:
        run = wait_until(lambda: Run.objects.filter(pk=run.pk, status=RunStatus.FINISHED).first(), timeout=60)
    finally:
        stop_process(rescuer)
    assert run.attempts == 2
    assert run.total == 12 == run.results.count()  # the stored results were kept, the rest run once
    assert "stopped at" in run.status_message


def test_it_ends_a_run_as_error_when_its_workers_keep_dying(tmp_path, target_factory):
    env = isolated_env(tmp_path, GOLDPATH_MAX_ATTEMPTS="1", **FAST_REAPER)
    run, stored = kill_mid_run(env, tmp_path, target_factory(["slow-agent"]), stored_at_least=1)
    rescuer = start_worker(env, tmp_path / "rescuer.log")
    try:
        run = wait_until(lambda: Run.objects.filter(pk=run.pk, status=RunStatus.ERROR).first(), timeout=60)
    finally:
        stop_process(rescuer)
    assert "died or stopped answering" in run.status_message
    assert run.results.count() == stored  # nothing lost, nothing invented


def test_it_expires_a_queued_run_no_worker_takes(tmp_path, target, settings):
    run = queue_run(isolated_env(tmp_path), target)
    settings.GOLDPATH_QUEUE_TIMEOUT = 0
    assert (run.pk, "expired") in reap_stale_runs()
    run.refresh_from_db()
    assert run.status == RunStatus.ERROR
    assert "No worker took this run" in run.status_message


def test_it_leaves_runs_with_a_fresh_heartbeat_alone(tmp_path, target, settings):
    run = queue_run(isolated_env(tmp_path), target)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=run.created)
    settings.GOLDPATH_STALE_AFTER = 3600
    settings.GOLDPATH_REDISPATCH_AFTER = 3600
    assert reap_stale_runs() == []
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_a_worker_retries_a_write_while_the_database_is_unreachable(settings):
    """The outage is simulated at the edge (stopping the test database would stop the
    suite); the retry loop, reconnects and backoff are the real ones."""
    settings.GOLDPATH_DB_RETRY_FOR = 10
    calls = []

    def write(value):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OperationalError("could not connect to server")
        return value

    assert with_database_retry(write, "stored") == "stored"
    assert len(calls) == 3 and calls[2] - calls[0] >= 1.4  # waited 0.5 s, then 1 s


def test_a_worker_gives_up_after_the_retry_window(settings):
    settings.GOLDPATH_DB_RETRY_FOR = 1

    def write():
        raise OperationalError("could not connect to server")

    with pytest.raises(OperationalError):
        with_database_retry(write)


@pytest.mark.django_db
def test_a_dispatched_run_leaves_its_time_limit_to_the_worker(settings):
    """The worker's GOLDPATH_RUN_TIME_LIMIT must decide. Celery copies the sending process's
    task defaults into the message unless told not to, and a worker obeys the message: a
    web process with another limit would then set the workers' limit."""
    import os

    from celery import current_app

    from runs.services import dispatch_run
    from runs.tasks import execute_run
    from tests.factories import RunFactory

    # Bound in this process, as in a web process that imported it: with this process's limit.
    assert execute_run.soft_time_limit == settings.GOLDPATH_RUN_TIME_LIMIT
    queue = f"goldpath-limits-{os.getpid()}-{time.monotonic_ns()}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue  # runs are sent to the queue the settings name
    dispatch_run(RunFactory())
    with current_app.connection_for_read() as connection:
        message = connection.SimpleQueue(queue).get(timeout=10)
        message.ack()
    assert message.headers["task"] == "runs.execute_run"
    assert message.headers["timelimit"] in ([None, None], (None, None))
