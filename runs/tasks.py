"""Celery tasks, each taking an id: execute a run (its checks through the probe engine,
each result stored as it comes), fire a schedule, deliver a webhook alert. Every worker
also runs a reaper for runs and deliveries whose worker or broker lost them."""

from __future__ import annotations

import fnmatch
import logging
import socket
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from http import HTTPStatus
from typing import Any, TypeVar, TypeVarTuple
from urllib.parse import unquote, urlsplit

import httpx
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from probes.engine import run_checks
from probes.net import NetworkPolicy, netloc, refused_host
from probes.runtime import RunTarget
from probes.suite.model import Check
from probes.suite.model import Suite as SuiteModel
from runs.alerts import MAX_ATTEMPTS, TEST, resend_lost_deliveries, retry_delay
from runs.history import active_rules
from runs.models import WEBHOOK_ALLOWLIST_HINT, Run, TestCase, WebhookDelivery, mask_url, webhook_policy
from runs.schedules import SCHEDULED_RUN_TASK, start_scheduled_run
from runs.services import (
    NotRunnable,
    QueueFull,
    claim_run,
    fail_run,
    finish_run,
    heartbeat,
    reap_stale_runs,
    record_result,
)
from runs.suites import VersionCannotRun, run_model

logger = logging.getLogger(__name__)

# The names messages on the broker carry: fixed, so a rename or move of a function never
# strands messages already queued (beat's stored schedules name SCHEDULED_RUN_TASK).
EXECUTE_RUN_TASK = "runs.execute_run"
DELIVER_TASK = "runs.deliver_webhook"


def checks_for_run(run: Run, model: SuiteModel) -> tuple[list[Check], dict[str, TestCase]]:
    """The version's checks within the run's scope, minus any already stored (a resumed run)."""
    test_cases = {tc.node_id: tc for tc in run.suite.test_cases.all()}
    scoped = set(run.scope_test_cases.values_list("node_id", flat=True))
    done = set(run.results.values_list("test_case__node_id", flat=True))
    checks = [
        check
        for check in model.checks
        if check.id in test_cases and (not scoped or check.id in scoped) and check.id not in done
    ]
    return checks, test_cases


# Goldpath's own configuration: never readable by a suite, whatever GOLDPATH_SUITE_ENV says.
OWN_ENVIRONMENT = ("GOLDPATH_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "GOLDPATH_CACHE_URL")


def suite_may_read(name: str) -> bool:
    """Whether a suite may read the worker's environment variable ``name`` (${env.NAME})."""
    if name in OWN_ENVIRONMENT:
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.GOLDPATH_SUITE_ENV)


def run_target(run: Run, model: SuiteModel) -> RunTarget:
    """Where the run's probes go and with what: the URLs and variables the run was created
    with, the environment's allowed hosts, secrets from this worker's environment."""
    return RunTarget(
        model,
        base_url=run.base_url,
        ws_url=run.ws_url,
        policy=NetworkPolicy(frozenset(run.environment.allowed_host_set()), settings.GOLDPATH_ALLOW_LINK_LOCAL),
        environment=run.environment.name,
        run_id=str(run.pk),
        variables=run.variables,
        env_readable=suite_may_read,
    )


Args = TypeVarTuple("Args")
Returned = TypeVar("Returned")


def with_database_retry(function: Callable[[*Args], Returned], *args: *Args) -> Returned:
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


@shared_task(name=EXECUTE_RUN_TASK, bind=True, acks_late=True, ignore_result=True)
def execute_run(self: Task, run_id: int) -> None:
    run = claim_run(run_id, self.request.hostname or "worker")
    if run is None:
        logger.info("run %s: nothing to do (deleted, cancelled or already taken)", run_id)
        return
    logger.info("run %s: started on %s", run_id, run.base_url)
    try:
        model = run_model(run)
        checks, test_cases = checks_for_run(run, model)
        rules = active_rules()
        beat = partial(heartbeat, run)
        outcomes = run_checks(checks, run_target(run, model), on_idle=beat, idle_every_s=settings.GOLDPATH_HEARTBEAT)
        with closing(outcomes):  # however this ends, the probes stop and their sockets close
            for outcome in outcomes:
                with_database_retry(record_result, run, test_cases[outcome.check_id], outcome, rules)
        with_database_retry(finish_run, run)
    except (VersionCannotRun, NotRunnable) as exc:
        fail_run(run, f"The run could not start: {exc}.")
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
    try:
        run = start_scheduled_run(suite, environment, every_s)
    except (NotRunnable, QueueFull) as exc:  # this slot is skipped; the next one tries again
        logger.warning("schedule of %s on %s: %s", suite, environment, exc)
        return
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
def start_reaper(**kwargs: Any) -> None:
    """Every worker looks for runs whose worker died; conditional updates keep them from
    stepping on each other, so no run stays 'running' while any worker is alive."""
    _reaper_stop.clear()
    threading.Thread(target=_reap_forever, name="goldpath-reaper", daemon=True).start()


@worker_shutting_down.connect
def stop_reaper(**kwargs: Any) -> None:
    _reaper_stop.set()


# Webhook deliveries.

TIMEOUT_S = 10.0
TIME_LIMIT_S = 60
IN_FLIGHT = timedelta(seconds=TIME_LIMIT_S + 10)  # an attempt is over by then, or its worker is gone
DUE_SLACK = timedelta(seconds=5)  # clocks of workers on other machines differ a little
USER_AGENT = "Goldpath-Webhook/1"
Status = WebhookDelivery.Status


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    delivered: bool
    retryable: bool = False
    response_code: int | None = None
    error: str = ""
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date; the backoff is used instead


def status_reason(code: int) -> str:
    """``HTTP 500 Internal Server Error``: the standard phrase, never the receiver's own words
    or body (an error page may quote its configuration, passwords and all)."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def error_kind(exc: BaseException) -> str:
    """The exception's class and the operating system's words for it (``ConnectError:
    Connection refused``); an exception's own text may quote what the receiver sent."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, OSError) and current.strerror:
            return f"{type(exc).__name__}: {current.strerror}"
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def post_json(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_S) -> Attempt:
    """POST ``payload`` to ``url`` once. The host is resolved here and the connection goes
    to the address checked (Host header and TLS name stay the original), so a DNS answer
    cannot turn the webhook toward a link-local or metadata address (``refused_host``, the
    probes' rule), nor one webhook_policy does not allow (loopback and private networks
    unless GOLDPATH_WEBHOOK_ALLOWED_HOSTS names them). No redirects, no proxy from the
    environment. Errors are Goldpath's own words (the status, the kind of network error),
    so they carry neither the URL, a secret, nor anything the receiver sent."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return Attempt(False, error="The webhook URL has a bad port; correct it on the Alerts page.")
    policy = webhook_policy()
    allow_link_local = policy.allow_link_local
    if refused_host(host, allow_link_local):  # stored before the rule, or through the admin
        return Attempt(False, error=f"Refused: {host} is a link-local or cloud-metadata address.")
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return Attempt(False, retryable=True, error=f"DNS failure: cannot resolve {host} ({reason})")
    ip = str(infos[0][4][0])
    if refused_host(ip, allow_link_local):
        return Attempt(False, error=f"Refused: {host} resolves to {ip}, a link-local or cloud-metadata address.")
    if not policy.address_allowed(ip):
        return Attempt(False, error=f"Refused: {host} resolves to {ip}, not a public address. {WEBHOOK_ALLOWLIST_HINT}")
    pinned = parts._replace(netloc=netloc(ip, port)).geturl()
    host_header = netloc(host, port)
    auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            request = client.build_request(
                "POST", pinned, json=payload, headers={"Host": host_header, "User-Agent": USER_AGENT}
            )
            if parts.scheme == "https":
                request.extensions["sni_hostname"] = host
            response = client.send(request, stream=True, auth=auth)
            response.close()  # its body is never read
    except (httpx.HTTPError, OSError, SoftTimeLimitExceeded) as exc:
        return Attempt(False, retryable=True, error=error_kind(exc))
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(True, response_code=code)
    error = status_reason(code)
    if 300 <= code < 400:
        error = f"HTTP {code}: redirects are not followed; give the final URL"
    retryable = code == 429 or code >= 500
    return Attempt(
        False,
        retryable=retryable,
        response_code=code,
        error=error,
        retry_after=_retry_after(response.headers.get("Retry-After")) if retryable else None,
    )


def deliver(delivery_id: int) -> float | None:
    """Make the next attempt at a pending delivery and log it on the row.

    Returns the seconds to wait before trying again, or None when there is nothing more
    to do (delivered, failed for good, gone, or another worker took this attempt). Network
    errors, 5xx and 429 are retried up to MAX_ATTEMPTS; any other answer fails at once.
    """
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Status.PENDING:
        return None
    now = timezone.now()
    if delivery.next_attempt_at > now + DUE_SLACK:
        return None  # an attempt is in flight, or a duplicate message came before the retry is due
    webhook = delivery.webhook
    attempt = delivery.attempts + 1
    claimed = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts)
    if not claimed.update(attempts=attempt, next_attempt_at=now + IN_FLIGHT):
        return None
    pending = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING)
    if not webhook.enabled and delivery.event != TEST:
        pending.update(status=Status.FAILED, error="The webhook was disabled before this alert went out.")
        return None
    result = post_json(webhook.url, delivery.payload)
    where = f"webhook {webhook.pk} ({mask_url(webhook.url)}) delivery {delivery.pk} {delivery.event}"
    if result.delivered:
        pending.update(
            status=Status.DELIVERED, response_code=result.response_code, error="", delivered_at=timezone.now()
        )
        logger.info("%s: delivered on attempt %d (HTTP %s)", where, attempt, result.response_code)
        return None
    if result.retryable and attempt < MAX_ATTEMPTS:
        delay = retry_delay(attempt, result.retry_after)
        pending.update(
            response_code=result.response_code,
            error=result.error,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        logger.warning("%s: attempt %d failed (%s); retrying in %.1f s", where, attempt, result.error, delay)
        return delay
    pending.update(status=Status.FAILED, response_code=result.response_code, error=result.error)
    logger.warning("%s: failed after %d attempt(s): %s", where, attempt, result.error)
    return None


@shared_task(
    name=DELIVER_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=MAX_ATTEMPTS,
    soft_time_limit=TIME_LIMIT_S - 10,
    time_limit=TIME_LIMIT_S,
)
def deliver_webhook(self: Task, delivery_id: int) -> None:
    retry_in = deliver(delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
