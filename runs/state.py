"""The state of a suite on an environment: the latest finished full run of that suite there
(by id, the order runs are created in) and how it stands (runs.analysis.standing).

Overview, Business, badges and the API read states from here alone. An environment's
revenue at risk is ``environment_mrr_at_risk`` over its suites' states, so a run of one
suite (a JUnit import of unit tests) never replaces, hides or zeroes another suite's risk,
and no page can show a figure another contradicts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Max

from runs.analysis.standing import Standing, run_standing
from runs.models import Environment, Result, Run, Suite

Pair = tuple[int, int]  # (environment id, suite id)


@dataclass(frozen=True)
class SuiteState:
    run: Run
    standing: Standing

    @property
    def environment(self) -> Environment:
        return self.run.environment

    @property
    def suite(self) -> Suite:
        return self.run.suite

    @property
    def mrr_at_risk(self) -> int | None:
        """The run's monthly revenue at risk, as its suite version tagged and priced its
        checks (kept with the run when it finished); None when it was not assessed because
        the probes never reached the service."""
        return self.run.mrr_at_risk if self.standing.reached else None


def environment_mrr_at_risk(states: Iterable[SuiteState]) -> int | None:
    """An environment's monthly revenue at risk: the sum over its suites' latest runs (each
    suite's impact tags are its own, and each run counts each tag once). None when no
    suite's revenue was assessed there."""
    assessed = [state.mrr_at_risk for state in states if state.mrr_at_risk is not None]
    return sum(assessed) if assessed else None


def standing_of(run: Run, outcomes: Iterable[tuple[str, str]]) -> Standing:
    """A finished run's standing, given its results' (outcome, failure class) pairs."""
    return run_standing(
        verdict=run.verdict,
        base_url=run.base_url,
        imported=run.is_imported,
        outcomes=outcomes,
        realness_score=run.realness_score,
        mock_count=run.mock_count,
    )


def standings(runs: Iterable[Run]) -> dict[int, Standing]:
    """Run id → standing, in one query at most: only a probe run in which no check passed can
    have missed the service, so only those runs' distinct outcomes are read."""
    runs = list(runs)
    candidates = [run.pk for run in runs if not run.passed and not run.is_imported]
    outcomes: dict[int, set[tuple[str, str]]] = defaultdict(set)
    if candidates:
        rows = (
            Result.objects.filter(run_id__in=candidates)
            .order_by()  # the default order joins test cases
            .values_list("run_id", "outcome", "failure_class")
            .distinct()
        )
        for run_id, outcome, failure_class in rows:
            outcomes[run_id].add((outcome, failure_class))
    return {run.pk: standing_of(run, outcomes[run.pk]) for run in runs}


def latest_states(environment: Environment | None = None, suite: Suite | None = None) -> dict[Pair, SuiteState]:
    """Every (environment, suite) pair with a finished full run → its state, optionally for
    one environment or suite. Two queries (one when no run could have missed its service)."""
    full = Run.objects.state_of_environment()
    if environment is not None:
        full = full.filter(environment=environment)
    if suite is not None:
        full = full.filter(suite=suite)
    latest_ids = full.order_by().values("environment_id", "suite_id").annotate(last=Max("pk")).values("last")
    runs = list(Run.objects.for_lists().filter(pk__in=latest_ids))
    by_run = standings(runs)
    return {(run.environment_id, run.suite_id): SuiteState(run, by_run[run.pk]) for run in runs}
