"""The data behind the trends and business pages.

Each function reads a fixed number of queries however many runs there are, aggregates in
SQL where it can, and returns plain series (lists per environment) for the charts. A value
that was not measured stays ``None`` so a chart shows a gap instead of an invented point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from runs.analysis.categories import more_categories
from runs.analysis.facts import FAILING, PASSED, SKIPPED
from runs.analysis.mrr import ImpactArea, mrr_at_risk
from runs.analysis.standing import SUSPECT, Exposure, Standing, exposure_order, headline
from runs.models import Category, Environment, ImpactTag, Measurement, Result, Run, SuiteVersion
from runs.reporting import as_ran, result_facts, stored_tags, tag_mrr
from runs.state import Pair, SuiteState, environment_mrr_at_risk, latest_states, standings

WINDOWS = (7, 30, 90)  # days offered by the pages
DEFAULT_DAYS = 30
MAX_RUNS = 100  # newest finished runs a chart shows
HEATMAP_RUNS = 50
HEATMAP_CATEGORIES = 20  # rows of the heatmap; the rest are summed up in one
STREAK_RUNS = 100  # finished runs per environment and suite looked at for "at risk since"
# What the streaks, the chart and the runs' standings read of a run; loading whole rows
# (with their suite) cost more than the query.
STREAK_FIELDS = (
    "id",
    "environment_id",
    "suite_id",
    "trigger",
    "base_url",
    "created",
    "finished_at",
    "verdict",
    "passed",
    "mrr_at_risk",
    "realness_score",
    "mock_count",
)
SCAN_FACTOR = 3  # the newest pairs × STREAK_RUNS × this many runs are ranked
COMPARISONS = {"lt": "<", "gt": ">"}


@dataclass(frozen=True)
class TrendFilter:
    environment: str = ""  # Environment.name; empty: every environment
    suite: str = ""  # Suite.name; empty: every suite
    days: int | None = DEFAULT_DAYS
    limit: int = MAX_RUNS


def finished_runs(filters: TrendFilter, now: datetime | None = None) -> list[Run]:
    """The newest ``filters.limit`` finished runs that match, oldest first. One query."""
    runs = Run.objects.state_of_environment().for_lists()
    if filters.environment:
        runs = runs.filter(environment__name=filters.environment)
    if filters.suite:
        runs = runs.filter(suite__name=filters.suite)
    if filters.days:
        runs = runs.filter(created__gte=(now or timezone.now()) - timedelta(days=filters.days))
    return list(runs.order_by("-created", "-id")[: filters.limit])[::-1]


def run_time(run: Run) -> str:
    """A run's time as the charts take it: local wall time, which plotly reads as a date."""
    return timezone.localtime(run.created).strftime("%Y-%m-%d %H:%M:%S")


def _slots(runs: Iterable[Run]) -> dict[str, int]:
    """A stable colour slot per environment name, so one environment has one colour per page."""
    return {name: i for i, name in enumerate(sorted({r.environment.name for r in runs}))}


def _per_environment(
    runs: list[Run], columns: dict[str, Callable[[Run], Any]], slots: dict[str, int] | None = None
) -> list[dict]:
    """One series per environment (by name): the run points and the given ``columns``."""
    slots = slots if slots is not None else _slots(runs)
    by_env: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_env[run.environment.name].append(run)
    series = []
    for name in sorted(by_env):
        env_runs = by_env[name]
        row = {
            "environment": name,
            "slot": slots.get(name, 0),
            "x": [run_time(r) for r in env_runs],
            "run": [r.pk for r in env_runs],
            "url": [r.get_absolute_url() for r in env_runs],
            "verdict": [r.verdict or r.status for r in env_runs],
        }
        row.update({key: [get(r) for r in env_runs] for key, get in columns.items()})
        series.append(row)
    return series


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def pass_rate_series(runs: list[Run]) -> list[dict]:
    """Per environment: the share of a run's checks that passed, in %."""
    return _per_environment(
        runs,
        {"y": lambda r: _percent(r.pass_rate), "passed": lambda r: r.passed, "total": lambda r: r.total},
    )


def mock_series(runs: list[Run]) -> list[dict]:
    """Per environment: mock indicators flagged per run and the realness score in %."""
    return _per_environment(
        runs, {"mock_count": lambda r: r.mock_count, "realness": lambda r: _percent(r.realness_score)}
    )


def category_heatmap(runs: list[Run], columns: int = HEATMAP_RUNS, rows: int = HEATMAP_CATEGORIES) -> dict:
    """Categories (rows, suite order) × the newest ``columns`` runs: share of checks passed.

    At most ``rows`` categories, those with the most failing checks in these runs (a file of
    10,000 one-case suites made 10,000 rows and a 56 MB page); the rest share one last row,
    "N more categories". Two queries: the runs' results are read once, counted per run and
    category in SQL (``cell_counts``), and the names and order of their suites' categories.
    A cell is ``None`` when the run executed no check of them.
    """
    recent = runs[-columns:]
    cells = cell_counts([r.pk for r in recent])
    known = {
        row["pk"]: row
        for row in Category.objects.filter(suite_id__in={r.suite_id for r in recent})
        .order_by()
        .values("pk", "name", "order", suite_name=F("suite__name"))
    }

    def place(category_id: int) -> tuple[str, int, str, int]:
        row = known[category_id]
        return (row["suite_name"], row["order"], row["name"], category_id)

    failing = {category_id: sum(c.failing for c in by_run.values()) for category_id, by_run in cells.items()}
    ranked = sorted((c for c in cells if c in known), key=lambda c: (-failing[c], *place(c)))
    shown = sorted(ranked[:rows], key=place)
    hidden = [c for c in cells if c not in shown]
    several_suites = len({known[c]["suite_name"] for c in shown}) > 1
    labels = [f"{known[c]['name']} ({known[c]['suite_name']})" if several_suites else known[c]["name"] for c in shown]
    columns_of: list[dict[int, Counts]] = [cells[c] for c in shown]
    if hidden:
        rest: dict[int, Counts] = {}
        for category_id in hidden:
            for run_id, counts in cells[category_id].items():
                before = rest.get(run_id, NO_CHECKS)
                rest[run_id] = Counts(*(a + b for a, b in zip(before, counts, strict=True)))
        labels.append(more_categories(len(hidden)))
        columns_of.append(rest)
    z, text = [], []
    for by_run, label in zip(columns_of, labels, strict=True):
        z_row: list[float | None] = []
        text_row: list[str] = []
        for run in recent:
            cell = by_run.get(run.pk)
            head = f"Run #{run.pk} · {run.environment.name} · {run_time(run)}<br>{label}: "
            if cell is None:
                z_row.append(None)
                text_row.append(head + "not run")
                continue
            executed = cell.total - cell.skipped
            z_row.append(round(cell.passed / executed, 4) if executed else None)
            skipped = f" ({cell.skipped} skipped)" if cell.skipped else ""
            text_row.append(head + f"{cell.passed} of {executed} checks passed{skipped}")
        z.append(z_row)
        text.append(text_row)
    return {
        "x": [f"#{r.pk}" for r in recent],
        "url": [r.get_absolute_url() for r in recent],
        "categories": labels,
        "more": len(hidden),
        "z": z,
        "text": text,
    }


class Counts(NamedTuple):
    """Checks run, passed, skipped and failing in one run and category (or several)."""

    total: int
    passed: int
    skipped: int
    failing: int


NO_CHECKS = Counts(0, 0, 0, 0)


def cell_counts(run_ids: list[int]) -> dict[int, dict[int, Counts]]:
    """Category id → run id → the run's counts in that category, in one aggregate query over
    the runs' results that joins only their test cases. Rows: one per run and category it
    ran, at most 201 per import (its categories are capped), however many results."""
    rows = (
        Result.objects.filter(run_id__in=run_ids)
        .order_by()  # no default-order join
        .values_list("test_case__category_id", "run_id")
        .annotate(
            total=Count("id"),
            passed=Count("id", filter=Q(outcome=PASSED)),
            skipped=Count("id", filter=Q(outcome=SKIPPED)),
            failing=Count("id", filter=Q(outcome__in=FAILING)),
        )
    )
    cells: dict[int, dict[int, Counts]] = defaultdict(dict)
    for category_id, run_id, *counts in rows:
        cells[category_id][run_id] = Counts(*counts)
    return cells


def metric_series(runs: list[Run]) -> list[dict]:
    """One chart's data per metric key found in the runs' Measurement rows. One query.

    Per environment, p50 and p95 for every run of a suite that measures the metric: ``None``
    where the run did not measure it. The target line follows the stored targets.
    """
    run_by_id = {r.pk: r for r in runs}
    by_key: dict[str, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for row in (
        Measurement.objects.filter(run_id__in=list(run_by_id))
        .order_by("id")
        .values("run_id", "key", "name", "unit", "target", "comparison", "p50", "p95")
    ):
        by_key[row["key"]][row["run_id"]] = row
    slots = _slots(runs)
    metrics = []
    for key, rows in by_key.items():
        latest = rows[max(rows, key=lambda run_id: (run_by_id[run_id].created, run_id))]
        suites = {run_by_id[run_id].suite_id for run_id in rows}
        measured_in = [r for r in runs if r.suite_id in suites]
        with_row = [r for r in measured_in if r.pk in rows]
        metrics.append(
            {
                "key": key,
                "name": latest["name"],
                "unit": latest["unit"],
                "comparison": COMPARISONS.get(latest["comparison"], latest["comparison"]),
                "target": latest["target"],
                "series": _per_environment(
                    measured_in,
                    {
                        "p50": _row_value(rows, "p50"),
                        "p95": _row_value(rows, "p95"),
                    },
                    slots,
                ),
                "target_line": {
                    "x": [run_time(r) for r in with_row],
                    "y": [rows[r.pk]["target"] for r in with_row],
                },
            }
        )
    return metrics


def _row_value(rows: Mapping[int, Mapping[str, Any]], name: str) -> Callable[[Run], Any]:
    """A series column: ``name`` in the run's row, None for a run without one."""
    return lambda run: (rows.get(run.pk) or {}).get(name)


def trends_data(filters: TrendFilter, now: datetime | None = None) -> dict:
    """Everything the trends page draws, in 4 queries."""
    runs = finished_runs(filters, now)
    return {
        "runs": runs,
        "capped": len(runs) == filters.limit,
        "pass_rate": pass_rate_series(runs),
        "heatmap": category_heatmap(runs),
        "metrics": metric_series(runs),
        "mock": mock_series(runs),
    }


# --- business view -------------------------------------------------------------------------


@dataclass(frozen=True)
class TagAtRisk:
    name: str
    mrr: int
    failing_checks: tuple[str, ...]
    since: Run  # the first run of the current unbroken streak in which the tag was at risk
    since_at_least: bool  # the streak reaches back past the runs looked at


@dataclass
class SuiteRisk:
    """A revenue-carrying suite on one environment, as of its latest finished run. A run
    that never reached the service has neither tags at risk nor working: not assessed."""

    state: SuiteState
    at_risk: list[TagAtRisk]
    working: list[ImpactArea]
    not_assessed: list[str] = field(default_factory=list)  # its tags' names, when never reached

    @property
    def run(self) -> Run:
        return self.state.run


@dataclass
class EnvironmentRisk:
    environment: Environment
    suites: list[SuiteRisk]  # the revenue-carrying suites that finished a run here, by name

    @property
    def mrr_at_risk(self) -> int | None:
        return environment_mrr_at_risk(s.state for s in self.suites)

    @property
    def at_risk(self) -> list[TagAtRisk]:
        return [tag for s in self.suites for tag in s.at_risk]

    @property
    def working(self) -> list[ImpactArea]:
        return [area for s in self.suites for area in s.working]

    @property
    def unreachable(self) -> list[SuiteState]:
        return [s.state for s in self.suites if not s.state.standing.reached]

    @property
    def in_doubt(self) -> list[SuiteState]:
        """Suites whose latest run reached the service with realness in doubt (mock
        indicators, or a low score): their "working" features may never have been tested."""
        return [s.state for s in self.suites if s.state.standing.reached and s.state.standing.realness == SUSPECT]

    @property
    def tag_names(self) -> list[str]:
        return [t.name for t in self.at_risk]

    @property
    def status(self) -> dict[tuple[int, str], str]:
        """(suite id, impact tag name) → "at risk", "working", "mocked?" (working as far as
        a run in doubt shows) or "not assessed"."""
        status: dict[tuple[int, str], str] = {}
        for s in self.suites:
            working = "mocked?" if s.state.standing.realness == SUSPECT else "working"
            status |= {(s.run.suite_id, name): "not assessed" for name in s.not_assessed}
            status |= {(s.run.suite_id, a.name): working for a in s.working}
            status |= {(s.run.suite_id, t.name): "at risk" for t in s.at_risk}
        return status

    @property
    def exposure(self) -> Exposure:
        return Exposure(self.environment.name, self.mrr_at_risk or 0, bool(self.unreachable))


def recent_runs_by_pair(pairs: Collection[Pair], per_pair: int = STREAK_RUNS) -> dict[Pair, list[Run]]:
    """The last ``per_pair`` finished full runs of each (environment, suite) pair, newest
    first, for the pairs given.

    Ranked within the newest runs of those suites (a slice found by one indexed query), not
    over the whole history; a pair that ran rarely since gets fewer runs (its caller adds the
    latest). Two queries whatever the history's size.
    """
    full = Run.objects.state_of_environment().filter(suite_id__in={suite for _, suite in pairs})
    scan = per_pair * max(len(pairs), 1) * SCAN_FACTOR
    floor = list(full.order_by("-pk").values_list("pk", flat=True)[scan - 1 : scan])
    recent = full.filter(pk__gte=floor[0]) if floor else full
    rank = Window(RowNumber(), partition_by=[F("environment_id"), F("suite_id")], order_by=[F("id").desc()])
    runs = recent.only(*STREAK_FIELDS).annotate(rank=rank).filter(rank__lte=per_pair)
    by_pair: dict[Pair, list[Run]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.rank):
        if (run.environment_id, run.suite_id) in pairs:
            by_pair[(run.environment_id, run.suite_id)].append(run)
    return dict(by_pair)


def tag_states(run_ids: Iterable[int]) -> dict[int, dict[str, bool]]:
    """Run id → {impact tag name: at risk?} for the tags a run checked (skips do not count).

    One aggregate query; "at risk" means at least one failing check, as in mrr_at_risk.
    """
    rows = (
        Result.objects.filter(run_id__in=list(run_ids), test_case__impact_tags__isnull=False)
        .exclude(outcome=SKIPPED)
        .values("run_id", tag=F("test_case__impact_tags__name"))
        .annotate(failing=Count("id", filter=Q(outcome__in=FAILING)))
        .order_by()
    )
    states: dict[int, dict[str, bool]] = defaultdict(dict)
    for row in rows:
        states[row["run_id"]][row["tag"]] = row["failing"] > 0
    return states


def streak_start(runs: list[Run], states: dict[int, dict[str, bool]], tag: str) -> tuple[Run | None, bool]:
    """The oldest run of the unbroken streak, from the newest run back, in which ``tag`` was
    at risk, and whether the streak may reach back further than ``runs``. Runs that did not
    check the tag neither break nor extend the streak."""
    start = None
    for run in runs:
        state = states.get(run.pk, {}).get(tag)
        if state is None:
            continue
        if not state:
            return start, False
        start = run
    return start, len(runs) >= STREAK_RUNS


def suite_risks(
    history: Mapping[Pair, list[Run]], by_run: Mapping[int, Standing], tag_names: Mapping[int, list[str]]
) -> dict[Pair, SuiteRisk]:
    """Per pair, from its latest run (``history[pair][0]``, of that pair's state): the tags at
    risk, since when, and those working.

    The tags and their MRR are those of the suite version the run ran, as in the MRR kept
    with the run (loaded in two queries, plus one for the versions); the streaks come from
    ``tag_states`` (one query) over the pair's runs that reached the service: a run that
    never did checked nothing, so it neither breaks nor extends a streak.
    """
    latest = {runs[0].pk: runs[0] for runs in history.values() if by_run[runs[0].pk].reached}
    versions = SuiteVersion.objects.in_bulk({run.version_id for run in latest.values() if run.version_id})
    for run in latest.values():
        run.version = versions.get(run.version_id) if run.version_id else None
    results = (
        Result.objects.filter(run_id__in=list(latest))
        .order_by("run_id", "test_case__order", "id")
        .select_related("test_case__category")
    )
    tags = stored_tags({run.suite_id for run in latest.values()})
    by_result_run: dict[int, list[Result]] = defaultdict(list)
    for result in results:
        by_result_run[result.run_id].append(result)
    states = tag_states(r.pk for runs in history.values() for r in runs if by_run[r.pk].reached)
    risks = {}
    for pair, runs in history.items():
        head = runs[0]
        if head.pk not in latest:
            risks[pair] = SuiteRisk(SuiteState(head, by_run[head.pk]), [], [], tag_names.get(head.suite_id, []))
            continue
        ran = as_ran(head)
        run_results = by_result_run[head.pk]
        risk = mrr_at_risk([result_facts(r, ran, tags) for r in run_results], tag_mrr(ran, tags))
        reached = [r for r in runs if by_run[r.pk].reached]
        at_risk = []
        for area in risk.at_risk:
            start, at_least = streak_start(reached, states, area.name)
            at_risk.append(TagAtRisk(area.name, area.mrr, area.failing_checks, start or head, at_least))
        risks[pair] = SuiteRisk(SuiteState(head, by_run[head.pk]), at_risk, risk.working)
    return risks


def mrr_series(runs: list[Run], by_run: Mapping[int, Standing], since: datetime | None = None) -> list[dict]:
    """Per environment, its monthly revenue at risk after each run of a revenue-carrying
    suite (oldest first) since ``since``: ``environment_mrr_at_risk`` of each suite's latest
    run at that point, so two suites' runs do not zigzag, an import of unit tests does not
    drop the line to $0, and a run that never reached the service leaves its suite out; a
    gap where no suite's revenue was assessed."""
    latest: dict[int, dict[int, SuiteState]] = defaultdict(dict)
    totals: dict[int, int | None] = {}
    for run in runs:
        suites = latest[run.environment_id]
        suites[run.suite_id] = SuiteState(run, by_run[run.pk])
        totals[run.pk] = environment_mrr_at_risk(suites.values())
    charted = [run for run in runs if since is None or run.created >= since]
    return _per_environment(charted, {"y": lambda r: totals[r.pk]})


def business_headline(risks: list[EnvironmentRisk]) -> str:
    """The headline over the environments' exposures (runs.analysis.standing.headline), then
    how many look mocked: a revenue-carrying suite's latest run there reached the service
    with its realness in doubt, so "nothing at risk" is not proven there."""
    text = headline([risk.exposure for risk in risks])
    mocked = sum(1 for risk in risks if risk.in_doubt)
    if not mocked:
        return text
    return f"{text} · {mocked} environment{' looks' if mocked == 1 else 's look'} mocked"


def business_data(days: int | None = DEFAULT_DAYS, now: datetime | None = None) -> dict:
    """Everything the business page shows, in 10 queries at most.

    The state of an environment is that of each of its suites that carry revenue (impact
    tags), each from its own latest finished run (runs.state): a run of another suite never
    replaces it.
    """
    states = latest_states()
    tags = list(ImpactTag.objects.select_related("suite"))  # per suite: two may both name "Chat"
    tag_names: dict[int, list[str]] = defaultdict(list)
    for tag in tags:
        tag_names[tag.suite_id].append(tag.name)
    revenue = {pair: state for pair, state in states.items() if tag_names.get(pair[1]) or state.run.mrr_at_risk}
    recent = recent_runs_by_pair(revenue) if revenue else {}
    environments = {state.run.environment_id: state.run.environment for state in states.values()}
    history: dict[Pair, list[Run]] = {}
    for pair, state in revenue.items():
        # The state's run heads the list: a run that finished since it was read is left out.
        older = [run for run in recent.get(pair, []) if run.pk < state.run.pk]
        for run in older:
            run.environment = environments[run.environment_id]
        history[pair] = [state.run, *older]
    older_runs = [run for runs in history.values() for run in runs[1:]]
    by_run = standings(older_runs) | {state.run.pk: state.standing for state in revenue.values()}
    risks_by_pair = suite_risks(history, by_run, tag_names) if history else {}
    per_environment: dict[int, list[SuiteRisk]] = {pk: [] for pk in environments}
    for pair, risk in sorted(risks_by_pair.items(), key=lambda item: item[1].run.suite.name):
        per_environment[pair[0]].append(risk)
    risks = sorted(
        (EnvironmentRisk(environments[pk], suites) for pk, suites in per_environment.items()),
        key=lambda risk: exposure_order(risk.exposure),
    )
    since = (now or timezone.now()) - timedelta(days=days) if days else None
    runs = sorted((run for runs in history.values() for run in runs), key=lambda r: r.pk)
    tag_rows = [
        {
            "tag": tag,
            "environments": [(risk.environment.name, risk.status.get((tag.suite_id, tag.name), "")) for risk in risks],
        }
        for tag in tags
    ]
    return {
        "risks": risks,
        "headline": business_headline(risks),
        "total_at_risk": sum(risk.mrr_at_risk or 0 for risk in risks),
        "any_at_risk": any(risk.at_risk for risk in risks),
        "any_unreachable": any(risk.unreachable for risk in risks),
        "any_in_doubt": any(risk.in_doubt for risk in risks),
        "mrr": mrr_series(runs, by_run, since),
        "tags": tag_rows,
        "has_runs": bool(states),
    }
