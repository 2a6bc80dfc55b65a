"""Celery tasks: take a run id, claim the run, probe, store each result as it comes."""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import partial

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from probes.base import CheckSpec, ProbeContext
from probes.engine import run_checks
from probes.suite_loader import suite_check_specs
from runs.alerts import resend_lost_deliveries
from runs.history import active_rules
from runs.models import Run, TestCase
from runs.schedules import SCHEDULED_RUN_TASK, start_scheduled_run
from runs.services import EXECUTE_RUN_TASK, claim_run, fail_run, finish_run, heartbeat, reap_stale_runs, record_result

logger = logging.getLogger(__name__)


def checks_for_run(run: Run) -> tuple[list[CheckSpec], dict[str, TestCase]]:
    """The suite's checks within the run's scope, minus any already stored (a resumed run)."""
    test_cases = {tc.node_id: tc for tc in run.suite.test_cases.filter(active=True)}
    scoped = set(run.scope_test_cases.values_list("node_id", flat=True))
    done = set(run.results.values_list("test_case__node_id", flat=True))
    specs = [
        spec
        for spec in suite_check_specs(run.suite)
        if spec.id in test_cases and (not scoped or spec.id in scoped) and spec.id not in done
    ]
    return specs, test_cases


def with_database_retry(function, *args):
    """Call ``function``; while the database is unreachable, reconnect and retry with
    backoff for up to GOLDPATH_DB_RETRY_FOR seconds, so a result measured during an
    outage is written when the database is back rather than lost."""
    deadline = time.monotonic() + settings.GOLDPATH_DB_RETRY_FOR
    delay = 0.5
    while True:
        try:
            return function(*args)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 10)


def probe_context(run: Run) -> ProbeContext:
    environment = run.environment
    return ProbeContext(
        base_url=run.base_url,
        ws_url=run.ws_url or environment.effective_ws_url,
        allowed_hosts=environment.allowed_host_set(),
        client_id=environment.client_id,
        client_secret=os.environ.get(environment.client_secret_env, "") if environment.client_secret_env else "",
        token_path=run.suite.definition.get("auth", {}).get("token_path", "/api/auth/token"),
    )


@shared_task(name=EXECUTE_RUN_TASK, bind=True, acks_late=True, ignore_result=True)
def execute_run(self, run_id: int) -> None:
    run = claim_run(run_id, self.request.hostname or "worker")
    if run is None:
        logger.info("run %s: nothing to do (deleted, cancelled or already taken)", run_id)
        return
    logger.info("run %s: started on %s", run_id, run.base_url)
    try:
        specs, test_cases = checks_for_run(run)
        rules = active_rules()
        beat = partial(heartbeat, run)
        for outcome in run_checks(specs, probe_context(run), on_idle=beat, idle_every_s=settings.GOLDPATH_HEARTBEAT):
            with_database_retry(record_result, run, test_cases[outcome.check_id], outcome, rules)
        with_database_retry(finish_run, run)
    except SoftTimeLimitExceeded:
        fail_run(
            run,
            f"The run passed its time limit (GOLDPATH_RUN_TIME_LIMIT={settings.GOLDPATH_RUN_TIME_LIMIT} s) "
            "and was stopped; the results stored so far are kept.",
        )
    except Exception as exc:
        logger.exception("run %s: internal error", run_id)
        fail_run(
            run,
            f"The worker hit an internal error ({type(exc).__name__}: {exc}); "
            "results so far are kept. Rerun to try again.",
        )
    else:
        logger.info("run %s: %s %s", run_id, run.status, run.verdict)


@shared_task(name=SCHEDULED_RUN_TASK, ignore_result=True, soft_time_limit=50, time_limit=60)
def run_scheduled(suite: str, environment: str, every_s: int) -> None:
    """Fired by celery beat; one run per schedule slot, however many beats fire it."""
    run = start_scheduled_run(suite, environment, every_s)
    if run is None:
        logger.warning("schedule of %s on %s: the suite or environment no longer exists", suite, environment)


_reaper_stop = threading.Event()


def _reap_forever() -> None:
    while not _reaper_stop.wait(settings.GOLDPATH_REAPER_INTERVAL):
        try:
            for run_id, action in reap_stale_runs():
                logger.warning("reaper: run %s %s", run_id, action)
            for delivery_id in resend_lost_deliveries():
                logger.warning("reaper: webhook delivery %s overdue; queued again", delivery_id)
        except Exception:  # the reaper must outlive a database that is down for a while
            logger.exception("reaper: pass failed; trying again in %s s", settings.GOLDPATH_REAPER_INTERVAL)
        finally:
            close_old_connections()


@worker_ready.connect
def start_reaper(**kwargs) -> None:
    """Every worker looks for runs whose worker died; conditional updates keep them from
    stepping on each other, so no run stays 'running' while any worker is alive."""
    _reaper_stop.clear()
    threading.Thread(target=_reap_forever, name="goldpath-reaper", daemon=True).start()


@worker_shutting_down.connect
def stop_reaper(**kwargs) -> None:
    _reaper_stop.set()
