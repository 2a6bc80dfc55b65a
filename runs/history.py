"""Queries over past runs that the analysis needs: a bounded number each, no per-row queries."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection

from django.db.models import Count, Min

from runs.analysis.classification import BUILTIN_RULES, UNCLASSIFIED, Rule, backtracking_shape
from runs.analysis.flakiness import DEFAULT_WINDOW, MIN_RUNS, flip_rate, is_flaky
from runs.analysis.mock import CONSTANT_RUNS
from runs.models import FailureRule, Measurement, Result, Run, RunStatus, TestCase

log = logging.getLogger(__name__)


def active_rules() -> list[Rule]:
    """The classification rules in force: the rule table in its order (seeded with the
    built-in set, edited in the admin; a disabled row switches a rule off), then any
    built-in rule the table does not name yet (added in a later release).

    A row whose regex could backtrack is left out: the admin refuses such regexes now, but
    one saved before that check would still cost seconds per hostile message."""
    rows = list(FailureRule.objects.all())
    named = {r.name for r in rows}
    for row in rows:
        if row.enabled and row.message_regex and (problem := backtracking_shape(row.message_regex)):
            log.warning("classification rule %r is not applied: %s Edit its regex in the admin.", row.name, problem)
            row.enabled = False
    rules = [
        Rule(
            r.name,
            r.label,
            code=r.code,
            details=r.details or {},
            qualifier=r.qualifier,
            message_regex=r.message_regex,
            http_status_min=r.http_status_min,
            http_status_max=r.http_status_max,
        )
        for r in rows
        if r.enabled
    ]
    return rules + [rule for rule in BUILTIN_RULES if rule.name not in named]


def class_labels() -> dict[str, str]:
    labels = {rule.name: rule.label for rule in BUILTIN_RULES} | {UNCLASSIFIED: "Unclassified failure"}
    labels.update(FailureRule.objects.values_list("name", "label"))
    return labels


def recent_run_ids(run: Run, window: int) -> list[int]:
    """Ids of ``run`` and the finished runs of its suite and environment before it, newest
    first, ``window`` in all (``run`` itself may still be finishing)."""
    earlier = Run.objects.filter(
        suite_id=run.suite_id, environment_id=run.environment_id, status=RunStatus.FINISHED, pk__lt=run.pk
    ).order_by("-pk")
    return [run.pk, *earlier.values_list("pk", flat=True)[: window - 1]]


def measurement_history(run: Run, runs: int = CONSTANT_RUNS) -> dict[str, list[float | None]]:
    """p50 of each metric over the last ``runs`` finished runs (this one first)."""
    run_ids = recent_run_ids(run, runs)
    history: dict[str, dict[int, float | None]] = defaultdict(dict)
    for key, run_id, p50 in Measurement.objects.filter(run_id__in=run_ids).values_list("key", "run_id", "p50"):
        history[key][run_id] = p50
    return {key: [values.get(run_id) for run_id in run_ids] for key, values in history.items()}


def outcome_history(
    run: Run, window: int = DEFAULT_WINDOW, min_runs: int = 1, test_case_ids: Collection[int] | None = None
) -> dict[int, list[str]]:
    """Outcomes per test case (all of them, or those of ``test_case_ids``) over the last
    ``window`` finished runs, oldest first; only for test cases executed in at least
    ``min_runs`` of them (the database picks those, and with fewer runs than that in the
    window nothing is read, so the first runs of a large imported suite load nothing)."""
    run_ids = recent_run_ids(run, window)
    if len(run_ids) < min_runs:
        return {}
    results = Result.objects.filter(run_id__in=run_ids)
    if test_case_ids is not None:
        results = results.filter(test_case_id__in=list(test_case_ids))
    if min_runs > 1:
        enough = (
            results.exclude(outcome=Result.Outcome.SKIPPED)
            .order_by()
            .values("test_case_id")
            .annotate(runs=Count("run_id", distinct=True))
            .filter(runs__gte=min_runs)
            .values("test_case_id")
        )
        results = results.filter(test_case_id__in=enough)
    outcomes: dict[int, dict[int, str]] = defaultdict(dict)
    for test_case_id, run_id, outcome in results.values_list("test_case_id", "run_id", "outcome"):
        outcomes[test_case_id][run_id] = outcome
    return {tc: [by_run[r] for r in sorted(by_run)] for tc, by_run in outcomes.items()}


def recent_results(test_case: TestCase, limit: int, environment: str = "") -> list[Result]:
    """A check's last ``limit`` results (optionally on one environment), oldest first."""
    results = Result.objects.filter(test_case=test_case).select_related("run__environment")
    if environment:
        results = results.filter(run__environment__name=environment)
    return list(results.order_by("-run_id")[:limit])[::-1]


def flaky_test_cases(
    run: Run, window: int = DEFAULT_WINDOW, test_case_ids: Collection[int] | None = None
) -> dict[int, float]:
    """Test case id → flip rate, for the flaky ones (of all, or of ``test_case_ids``: what a
    page of results shows, so the page does not read every test case's history): those that
    flip across recent runs, and those that passed in this run only on a retry (``retries``:
    failed, then passed)."""
    history = outcome_history(run, window, min_runs=MIN_RUNS, test_case_ids=test_case_ids)
    flaky = {tc: flip_rate(outcomes) for tc, outcomes in history.items() if is_flaky(outcomes)}
    retried = run.results.filter(outcome=Result.Outcome.PASSED, attempt__gt=1)
    if test_case_ids is not None:
        retried = retried.filter(test_case_id__in=list(test_case_ids))
    for test_case_id, attempts in retried.values_list("test_case_id", "attempt"):
        flaky.setdefault(test_case_id, flip_rate([Result.Outcome.FAILED] * (attempts - 1) + [Result.Outcome.PASSED]))
    return flaky


def failure_class_history(run: Run, classes: list[str]) -> dict[str, dict]:
    """For each class: the run where it was first seen (same suite and environment) and in
    how many runs it has appeared, as of ``run``."""
    rows = (
        Result.objects.filter(
            failure_class__in=classes,
            run_id__lte=run.pk,  # as of this run: a later run does not change an older report
            run__suite_id=run.suite_id,
            run__environment_id=run.environment_id,
        )
        .order_by()  # the default ordering would add a join and split the groups
        .values("failure_class")
        .annotate(first_run=Min("run_id"), runs=Count("run_id", distinct=True))
    )
    return {row["failure_class"]: row for row in rows}
