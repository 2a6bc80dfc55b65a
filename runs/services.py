"""Runs' life, and the one place their state changes (RunStatus lists the allowed moves).

A run Goldpath's workers run: ``create_run`` (queued, then dispatched to the broker),
``claim_run`` (running, on a worker), ``record_result`` for each check, then ``finish_run``
or ``fail_run``; ``reap_stale_runs`` resumes or fails the runs whose worker died. A CI
file's run: ``start_imported_run``, then ``finish_imported_run``. A generated history:
``store_finished_runs``, runs that are over before they are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from kombu.utils.url import maybe_sanitize_url

from probes.engine import CheckOutcome
from runs import alerts, bulk, history
from runs.analysis.classification import Rule, classify
from runs.analysis.facts import ResultFacts
from runs.analysis.mock import auth_never_enforced, realness, result_indicators, round_trip_ms, run_indicators
from runs.analysis.mrr import mrr_at_risk
from runs.analysis.verdict import DEFAULT_MIN_PASS_RATE, compute_verdict
from runs.models import (
    ALLOWED_TRANSITIONS,
    Environment,
    Measurement,
    Result,
    Run,
    RunStatus,
    Suite,
    SuiteVersion,
    TestCase,
)
from runs.reporting import as_ran, load_results, result_facts, stored_tags, tag_mrr

logger = logging.getLogger(__name__)

NOT_DISPATCHED = (
    "Not dispatched: the task queue is not accepting work. Ask an operator to check the workers' "
    "broker (the server's log says why), then rerun."
)
MAX_MESSAGE_CHARS = 10_000
OUTCOME_COUNTERS: dict[str, str] = {
    Result.Outcome.PASSED: "passed",
    Result.Outcome.FAILED: "failed",
    Result.Outcome.ERROR: "errors",
    Result.Outcome.SKIPPED: "skipped",
}


class DispatchError(Exception):
    """The run could not be handed to the broker; the run was marked as error."""


class NotRunnable(ValueError):
    """A suite Goldpath cannot run: it holds imported results, or it has no version."""


class QueueFull(Exception):
    """As many runs of the suite on the environment as may wait or run at once already do."""


def not_runnable_reason(suite: Suite) -> str | None:
    """Why no run of ``suite`` can be started, or None: the one rule for every way to start
    one (page, API, schedule, command), and for whether pages offer *Run now* and *Rerun*."""
    if suite.origin == Suite.Origin.IMPORT:
        return f"suite {suite.name!r} holds results imported from CI; Goldpath has no checks of its own to run for it"
    if suite.current_version_id is None:
        return f"suite {suite.name!r} has no loaded version; load its suite file first"
    return None


def ensure_runnable(suite: Suite) -> None:
    if reason := not_runnable_reason(suite):
        raise NotRunnable(reason)


def ensure_queue_room(suite: Suite, environment: Environment) -> None:
    """At most ``GOLDPATH_MAX_QUEUED_RUNS`` runs of a suite on an environment are queued or
    running at once: each one probes the environment for real, so a token in a loop or a
    flurry of clicks must not queue forty. Called inside the transaction that creates the run,
    with the environment's row locked (on SQLite the immediate transaction already holds the
    write lock), so two requests racing for the last place cannot both take it."""
    Environment.objects.select_for_update().filter(pk=environment.pk).values_list("pk").first()
    busy = Run.objects.filter(
        suite=suite, environment=environment, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).count()
    if busy >= settings.GOLDPATH_MAX_QUEUED_RUNS:
        pair = f"of {suite.name} on {environment.name}"
        runs = f"{busy} runs {pair} are" if busy > 1 else f"A run {pair} is"
        raise QueueFull(f"{runs} already queued or running: wait for one to finish")


def transition(run: Run, to: str, **fields: Any) -> bool:
    """Move ``run`` to status ``to`` if its current status allows it (see RunStatus).

    A conditional UPDATE: when two workers or two clicks race, exactly one wins.
    """
    sources = [source for source, targets in ALLOWED_TRANSITIONS.items() if to in targets]
    changed = Run.objects.filter(pk=run.pk, status__in=sources).update(status=to, **fields)
    if changed:
        run.status = to
        for name, value in fields.items():
            setattr(run, name, value)
    return bool(changed)


def create_run(
    suite: Suite,
    environment: Environment,
    *,
    trigger: str = Run.Trigger.MANUAL,
    user: User | None = None,
    parent: Run | None = None,
    scope: str = Run.Scope.ALL,
    test_cases: Iterable[TestCase] = (),
    base_url: str | None = None,
    ws_url: str | None = None,
    request_key: str | None = None,
    version: SuiteVersion | None = None,
) -> Run:
    """Store a queued run of ``version`` (default: the suite's current one) and dispatch it
    to the workers once the row is committed.

    A ``request_key`` (one per rendered form) makes a repeated submission — a double
    click, a retried request — return the run the first one created. QueueFull when the
    pair has no room (``ensure_queue_room``).
    """
    if request_key and (existing := Run.objects.filter(request_key=request_key).first()):
        return existing
    ensure_runnable(suite)
    test_cases = list(test_cases)
    try:
        with transaction.atomic():
            ensure_queue_room(suite, environment)
            run = Run.objects.create(
                suite=suite,
                version=version or suite.current_version,
                environment=environment,
                trigger=trigger,
                triggered_by=user,
                parent=parent,
                scope=scope,
                expected=len(test_cases) or suite.test_cases.filter(active=True).count(),
                request_key=request_key or None,
                base_url=base_url or environment.base_url,
                ws_url=ws_url or environment.effective_ws_url,
                variables=environment.variables,
            )
            if test_cases:
                run.scope_test_cases.set(test_cases)
            transaction.on_commit(lambda: dispatch_run(run))
    except IntegrityError:
        if request_key:  # the twin request won the race
            return Run.objects.get(request_key=request_key)
        raise
    except QueueFull:
        if request_key and (twin := Run.objects.filter(request_key=request_key).first()):
            return twin  # the twin took the last place: this is its retry, not another run
        raise
    return run


class NothingToRerun(ValueError):
    pass


def rerun_test_cases(
    parent: Run, scope: str, *, category_id: int | None = None, test_case_id: int | None = None
) -> list[TestCase]:
    """The test cases a rerun of ``parent`` with ``scope`` covers (empty list: the whole suite)."""
    active = parent.suite.test_cases.filter(active=True)
    if scope == Run.Scope.ALL:
        return []
    if scope == Run.Scope.FAILED:
        matching = active.filter(
            results__run=parent, results__outcome__in=[Result.Outcome.FAILED, Result.Outcome.ERROR]
        )
    elif scope == Run.Scope.CATEGORY:  # no category given: nothing matches (the field is never null)
        matching = active.filter(category_id=category_id) if category_id is not None else active.none()
    elif scope == Run.Scope.TEST:
        matching = active.filter(pk=test_case_id) if test_case_id is not None else active.none()
    else:
        raise NothingToRerun(f"unknown rerun scope {str(scope)!r}")
    chosen = list(matching.distinct())
    if not chosen:
        raise NothingToRerun(f"run #{parent.pk} has nothing to rerun for scope {Run.Scope(scope).value!r}")
    return chosen


def create_rerun(
    parent: Run,
    scope: str,
    user: User,
    *,
    category_id: int | None = None,
    test_case_id: int | None = None,
    request_key: str | None = None,
) -> Run:
    """A child run of ``parent`` over ``scope`` (all, failed, a category or one test), of
    the suite version ``parent`` ran."""
    ensure_runnable(parent.suite)  # before choosing checks: an imported run has none of its own
    test_cases = rerun_test_cases(parent, scope, category_id=category_id, test_case_id=test_case_id)
    return create_run(
        parent.suite,
        parent.environment,
        trigger=Run.Trigger.RERUN,
        user=user,
        parent=parent,
        scope=scope,
        test_cases=test_cases,
        base_url=parent.base_url,
        ws_url=parent.ws_url,
        request_key=request_key,
        version=parent.version,
    )


def dispatch_run(run: Run, raise_error: bool = True) -> None:
    """Send the run to the broker; if that fails, end it as error with what to do."""
    from runs.tasks import execute_run  # here: runs.tasks imports this module

    try:
        execute_run.apply_async(
            args=(run.pk,),
            queue=settings.CELERY_TASK_DEFAULT_QUEUE,  # GOLDPATH_QUEUE as the settings say now
            # No limits in the message: the worker's GOLDPATH_RUN_TIME_LIMIT decides, not the
            # sender's (Celery would copy the sending process's task defaults into it). The
            # stubs want an int; None is Celery's "none given".
            time_limit=None,  # type: ignore[arg-type]
            soft_time_limit=None,  # type: ignore[arg-type]
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        )
    except Exception as exc:  # kombu raises OperationalError, OSError and more for a dead broker
        # The broker's address and the error (a file path on the server, a host name) are
        # for the operator's log; the run, its page and the API say what to do.
        logger.error(
            "run %s not dispatched: the Celery broker at %s could not be reached (%s). "
            "Start the broker or fix CELERY_BROKER_URL.",
            run.pk,
            maybe_sanitize_url(settings.CELERY_BROKER_URL),
            exc,
        )
        fail_run(run, NOT_DISPATCHED)
        if raise_error:
            raise DispatchError(NOT_DISPATCHED) from exc


def claim_run(run_id: int, worker: str) -> Run | None:
    """Take a queued run for this worker, or None if it is gone, cancelled or taken."""
    run = Run.objects.select_related("suite", "environment", "version").filter(pk=run_id).first()
    if run is None:
        return None
    now = timezone.now()
    claimed = transition(
        run,
        RunStatus.RUNNING,
        started_at=run.started_at or now,
        heartbeat_at=now,
        worker=worker[:200],
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    run.refresh_from_db(fields=["attempts"])
    return run


def heartbeat(run: Run) -> None:
    Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())


def reap_stale_runs() -> list[tuple[int, str]]:
    """Resume or end runs whose worker stopped answering, and runs no worker ever took.

    Safe to call from every worker at once: each change is a conditional UPDATE.
    Returns (run id, what was done) pairs.
    """
    now = timezone.now()
    done: list[tuple[int, str]] = []
    stale = Run.objects.filter(
        status=RunStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=settings.GOLDPATH_STALE_AFTER)
    )
    for run in stale.select_related("suite", "environment", "version"):
        last = run.heartbeat_at.strftime("%H:%M:%S %Z")
        if run.attempts < settings.GOLDPATH_MAX_ATTEMPTS:
            if transition(run, RunStatus.QUEUED, status_message=f"Resumed: worker {run.worker} stopped at {last}."):
                done.append((run.pk, "resumed"))
                dispatch_run(run, raise_error=False)
        elif fail_run(
            run,
            f"The worker running this run ({run.worker}) died or stopped answering (last heartbeat {last}), "
            f"after {run.attempts} attempt(s). The results stored before that are kept; rerun to try again.",
        ):
            done.append((run.pk, "failed"))
    queued = Run.objects.filter(status=RunStatus.QUEUED)
    for run in queued.filter(created__lt=now - timedelta(seconds=settings.GOLDPATH_QUEUE_TIMEOUT)):
        if fail_run(
            run,
            f"No worker took this run within {settings.GOLDPATH_QUEUE_TIMEOUT} s. "
            "Start a worker (celery -A dashboard worker) and rerun.",
        ):
            done.append((run.pk, "expired"))
    cutoff = now - timedelta(seconds=settings.GOLDPATH_REDISPATCH_AFTER)
    for run in queued.filter(created__lt=cutoff, created__gte=now - timedelta(seconds=settings.GOLDPATH_QUEUE_TIMEOUT)):
        dispatch_run(run, raise_error=False)  # the broker may have lost it; a duplicate is never run twice
        done.append((run.pk, "redispatched"))
    return done


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated: {len(text)} characters in all]"


def _aware(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def record_result(run: Run, test_case: TestCase, outcome: CheckOutcome, rules: list[Rule] | None = None) -> Result:
    """Store one check's outcome, classified if it failed, and bump the run's live
    counters. Pass ``rules`` to classify a batch with one query."""
    rules = history.active_rules() if rules is None else rules
    failing = outcome.outcome in (Result.Outcome.FAILED, Result.Outcome.ERROR)
    with transaction.atomic():
        result = Result.objects.create(
            run=run,
            test_case=test_case,
            outcome=outcome.outcome,
            duration_s=outcome.duration_s,
            message=truncate(outcome.message),
            failure_class=classify(outcome.message, outcome.failure, rules) if failing else "",
            evidence=outcome.evidence,
            attempt=outcome.attempts,
            started_at=_aware(outcome.started_at),
            finished_at=_aware(outcome.finished_at),
        )
        Measurement.objects.bulk_create(
            Measurement(
                run=run,
                test_case=test_case,
                key=metric.key,
                name=metric.name,
                unit=metric.unit,
                target=metric.target,
                comparison=metric.comparison,
                p50=metric.p50,
                p95=metric.p95,
                samples=metric.samples,
                ok=metric.ok,
                note=metric.note[:500],
                percentile=metric.percentile,
            )
            for metric in outcome.metrics
        )
        counter = OUTCOME_COUNTERS[result.outcome]
        Run.objects.filter(pk=run.pk).update(
            total=F("total") + 1, **{counter: F(counter) + 1}, heartbeat_at=timezone.now()
        )
    return result


def result_flags(facts: list[ResultFacts]) -> list[list[str]]:
    """Each result's mock indicators, in order."""
    rtt = round_trip_ms(facts)
    return [result_indicators(fact, rtt) for fact in facts]


def analyse_run(run: Run, facts: list[ResultFacts], tag_mrr: dict[str, int], flagged: int) -> dict:
    """The analysis a finished run keeps: verdict, MRR at risk, realness, indicators, flaky."""
    run_flags = run_indicators(history.measurement_history(run), auth_never_enforced(facts))
    min_pass_rate = run.definition.get("verdict", {}).get("min_pass_rate", DEFAULT_MIN_PASS_RATE)
    return {
        "verdict": compute_verdict(facts, min_pass_rate),
        "mrr_at_risk": mrr_at_risk(facts, tag_mrr).total,
        "realness_score": realness(facts).score,
        "mock_flags": run_flags,
        "mock_count": flagged + len(run_flags),
        "flaky_count": len(history.flaky_test_cases(run)),
    }


def _since(started_at: datetime | None, now: datetime) -> float | None:
    return (now - started_at).total_seconds() if started_at else None


def _finish(run: Run, facts: list[ResultFacts], flagged: int, tag_mrr: dict[str, int], **fields: Any) -> None:
    """End ``run`` as finished with the analysis of ``facts`` (one per result, ``flagged``
    of them with mock indicators) and ``fields``; once that is committed, decide its alerts."""
    counts = {name: 0 for name in OUTCOME_COUNTERS.values()}
    for fact in facts:
        counts[OUTCOME_COUNTERS[fact.outcome]] += 1
    with transaction.atomic():
        finished = transition(
            run,
            RunStatus.FINISHED,
            total=len(facts),
            **counts,
            **analyse_run(run, facts, tag_mrr, flagged),
            **fields,
        )
        if finished:  # robust: an error deciding alerts is logged, never raised into the worker or import
            transaction.on_commit(lambda: alerts.run_finished(run.pk), robust=True)


def finish_run(run: Run) -> None:
    """End a run the workers ran: read its stored results back, save each one's mock
    indicators, and finish it with their analysis; its duration is the time since it started."""
    results = load_results(run)
    ran, tags = as_ran(run), stored_tags([run.suite_id])
    facts = [result_facts(r, ran, tags) for r in results]
    for result, flags in zip(results, result_flags(facts), strict=True):
        result.mock_flags = flags
    Result.objects.bulk_update([r for r in results if r.mock_flags], ["mock_flags"], batch_size=1000)
    now = timezone.now()
    _finish(
        run,
        facts,
        sum(1 for r in results if r.mock_flags),
        tag_mrr(ran, tags),
        finished_at=now,
        duration_s=_since(run.started_at, now),
    )


def start_imported_run(
    suite: Suite, environment: Environment, user: User | None, request_key: str | None = None
) -> Run:
    """A running run for a CI file being imported (runs.importers.service): no worker runs
    it, so it never queues. The importer stores its results, then ends it with
    finish_imported_run; a refused file rolls the import's transaction, and this run, back."""
    return Run.objects.create(
        suite=suite,
        environment=environment,
        trigger=Run.Trigger.IMPORT,
        triggered_by=user,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
        base_url=environment.base_url,
        request_key=request_key,
    )


def finish_imported_run(
    run: Run, facts: list[ResultFacts], flagged: int, duration_s: float, status_message: str = ""
) -> None:
    """End an import's run with the analysis of the facts the import kept of its results
    (which it stored with their mock indicators, ``flagged`` of them with some): reading
    100,000 results back as objects would cost far more than the import. The run expected
    as many results as the file held, took the time the file says, and its impact tags are
    the suite's (an imported suite has no versions). ``status_message`` says what the
    import could not do (classification out of regex time)."""
    _finish(
        run,
        facts,
        flagged,
        dict(run.suite.impact_tags.values_list("name", "mrr")),
        expected=len(facts),
        finished_at=timezone.now(),
        duration_s=duration_s,
        status_message=status_message,
    )


# The columns of the rows store_finished_runs takes, after the run: a result's evidence is
# the number of its value in the evidence values given (see bulk.insert_rows_sharing_values).
FINISHED_RESULT_FIELDS = (
    "test_case",
    "outcome",
    "duration_s",
    "message",
    "failure_class",
    "mock_flags",
    "attempt",
    "started_at",
    "finished_at",
    "evidence",
)
FINISHED_MEASUREMENT_FIELDS = (
    "test_case",
    "key",
    "name",
    "unit",
    "target",
    "comparison",
    "p50",
    "p95",
    "samples",
    "ok",
    "note",
    "percentile",
)


@dataclass
class FinishedRun:
    """A run that is over before it is stored, with all it keeps: the unsaved Run (times,
    counters, analysis), the run it reruns (stored in the same call or before), and its
    results and measurements as rows of FINISHED_RESULT_FIELDS and
    FINISHED_MEASUREMENT_FIELDS in database form (runs.bulk)."""

    run: Run
    parent: Run | None
    results: list[tuple[Any, ...]]
    measurements: list[tuple[Any, ...]]


def store_finished_runs(finished: list[FinishedRun], evidence_values: list[str]) -> None:
    """Store finished runs with their results and measurements in one transaction of bulk
    inserts (COPY on PostgreSQL): how ``generate_history`` writes 100,000 runs in a minute
    or two, which one ``record_result`` per row could not. They go straight to finished,
    never queued or running, and decide no alerts: a generated history is not news."""
    for item in finished:
        if item.run.started_at is None or item.run.finished_at is None:
            raise ValueError("a finished run needs the times it started and finished")
        item.run.status = RunStatus.FINISHED
    with transaction.atomic():
        Run.objects.bulk_create([item.run for item in finished])
        reruns = []
        for item in finished:
            if item.parent is not None:
                item.run.parent_id = item.parent.pk
                reruns.append(item.run)
        if reruns:
            Run.objects.bulk_update(reruns, ["parent"])
        results = ((item.run.pk, *row) for item in finished for row in item.results)
        bulk.insert_rows_sharing_values(Result, ("run", *FINISHED_RESULT_FIELDS), results, evidence_values)
        measurements = ((item.run.pk, *row) for item in finished for row in item.measurements)
        bulk.insert_rows(Measurement, ("run", *FINISHED_MEASUREMENT_FIELDS), measurements)


def fail_run(run: Run, message: str) -> bool:
    """End a run as error; results already stored stay. False if it had already ended."""
    now = timezone.now()
    return transition(
        run, RunStatus.ERROR, status_message=message, finished_at=now, duration_s=_since(run.started_at, now)
    )
