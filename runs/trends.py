"""The data behind the trends and business pages.

Each function reads a fixed number of queries however many runs there are, aggregates in
SQL where it can, and returns plain series (lists per environment) for the charts. A value
that was not measured stays ``None`` so a chart shows a gap instead of an invented point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Max, Q, QuerySet, Value, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from runs.analysis.categories import more_categories
from runs.analysis.facts import FAILING, PASSED, SKIPPED
from runs.analysis.mrr import ImpactArea, mrr_at_risk
from runs.models import Environment, ImpactTag, Measurement, Result, Run
from runs.reporting import result_facts, tag_mrr

WINDOWS = (7, 30, 90)  # days offered by the pages
DEFAULT_DAYS = 30
MAX_RUNS = 100  # newest finished runs a chart shows
HEATMAP_RUNS = 50
HEATMAP_CATEGORIES = 20  # rows of the heatmap; the rest are summed up in one
STREAK_RUNS = 100  # finished runs per environment looked at for "at risk since"
# What the streaks and the risk cards read of a run; loading whole rows (with their suite)
# cost more than the query.
STREAK_FIELDS = ("id", "environment_id", "suite_id", "created", "finished_at", "mrr_at_risk", "verdict")
SCAN_FACTOR = 3  # the newest environments × STREAK_RUNS × this many runs are ranked
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


def mrr_series(runs: list[Run]) -> list[dict]:
    """Per environment: dollars of monthly revenue at risk per run."""
    return _per_environment(runs, {"y": lambda r: r.mrr_at_risk})


def category_heatmap(runs: list[Run], columns: int = HEATMAP_RUNS, rows: int = HEATMAP_CATEGORIES) -> dict:
    """Categories (rows, suite order) × the newest ``columns`` runs: share of checks passed.

    At most ``rows`` categories, those with the most failing checks in these runs (a file of
    10,000 one-case suites made 10,000 rows and a 56 MB page); the rest share one last row,
    "N more categories". Ranked in SQL, so no more rows are read than are drawn: four
    aggregate queries at most. A cell is ``None`` when the run executed no check of them.
    """
    recent = runs[-columns:]
    results = Result.objects.filter(run_id__in=[r.pk for r in recent]).order_by()  # no default-order join
    ranked = list(
        results.values(
            "test_case__category_id",
            category=F("test_case__category__name"),
            order=F("test_case__category__order"),
            suite=F("test_case__category__suite__name"),
        )
        .annotate(failing=Count("id", filter=Q(outcome__in=FAILING)))
        .order_by("-failing", "suite", "order", "category")[: rows + 1]
    )
    shown = sorted(ranked[:rows], key=lambda row: (row["suite"], row["order"], row["category"]))
    shown_ids = [row["test_case__category_id"] for row in shown]
    cells: dict[int | None, dict[int, dict]] = defaultdict(dict)
    for row in _pass_counts(results.filter(test_case__category_id__in=shown_ids), "test_case__category_id"):
        cells[row["test_case__category_id"]][row["run_id"]] = row
    several_suites = len({row["suite"] for row in shown}) > 1
    labels = [f"{row['category']} ({row['suite']})" if several_suites else row["category"] for row in shown]
    keys: list[int | None] = list(shown_ids)
    hidden = 0
    if len(ranked) > rows:
        hidden = results.values("test_case__category_id").distinct().count() - rows
        for row in _pass_counts(results.exclude(test_case__category_id__in=shown_ids)):
            cells[None][row["run_id"]] = row
        labels.append(more_categories(hidden))
        keys.append(None)
    z, text = [], []
    for key, label in zip(keys, labels, strict=True):
        z_row: list[float | None] = []
        text_row: list[str] = []

        for run in recent:
            cell = cells[key].get(run.pk)
            head = f"Run #{run.pk} · {run.environment.name} · {run_time(run)}<br>{label}: "
            if cell is None:
                z_row.append(None)
                text_row.append(head + "not run")
                continue
            executed = cell["total"] - cell["skipped"]
            z_row.append(round(cell["passed"] / executed, 4) if executed else None)
            skipped = f" ({cell['skipped']} skipped)" if cell["skipped"] else ""
            text_row.append(head + f"{cell['passed']} of {executed} checks passed{skipped}")
        z.append(z_row)
        text.append(text_row)
    return {
        "x": [f"#{r.pk}" for r in recent],
        "url": [r.get_absolute_url() for r in recent],
        "categories": labels,
        "more": hidden,
        "z": z,
        "text": text,
    }


def _pass_counts(results: QuerySet[Result], *by: str) -> QuerySet:
    """Checks run, passed and skipped per run (and per ``by``)."""
    return results.values("run_id", *by).annotate(
        total=Count("id"),
        passed=Count("id", filter=Q(outcome=PASSED)),
        skipped=Count("id", filter=Q(outcome=SKIPPED)),
    )


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
    """Everything the trends page draws, in 4 queries (6 when the heatmap sums categories up)."""
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
class EnvironmentRisk:
    run: Run  # the environment's latest finished run
    at_risk: list[TagAtRisk]
    working: list[ImpactArea]
    status: dict[str, str] = field(default_factory=dict)  # tag name -> "at risk" | "working"

    @property
    def environment(self) -> Environment:
        return self.run.environment

    @property
    def tag_names(self) -> list[str]:
        return [t.name for t in self.at_risk]


def recent_runs_by_environment(per_environment: int = STREAK_RUNS) -> dict[str, list[Run]]:
    """Each environment's last ``per_environment`` finished runs, newest first.

    Ranked within the newest runs overall (a slice found by one indexed query), not over
    the whole history; an environment that ran rarely since still gets its latest run (its
    streak then reads "at least"). Four queries whatever the history's size.
    """
    full = Run.objects.state_of_environment()
    environments = {e.pk: e for e in Environment.objects.all()}
    scan = per_environment * max(len(environments), 1) * SCAN_FACTOR
    floor = list(full.order_by("-pk").values_list("pk", flat=True)[scan - 1 : scan])
    recent = full.filter(pk__gte=floor[0]) if floor else full
    rank = Window(RowNumber(), partition_by=[F("environment_id")], order_by=[F("created").desc(), F("id").desc()])
    runs = list(recent.only(*STREAK_FIELDS).annotate(rank=rank).filter(rank__lte=per_environment))
    seen = {run.environment_id for run in runs}
    latest = full.values("environment_id").annotate(last=Max("pk")).order_by()
    missing = [row["last"] for row in latest if row["environment_id"] not in seen]
    runs += list(full.only(*STREAK_FIELDS).filter(pk__in=missing).annotate(rank=Value(1)))
    by_env: dict[str, list[Run]] = defaultdict(list)
    for run in runs:  # hundreds of runs, a handful of environments: no join, no copies
        run.environment = environments[run.environment_id]
    for run in sorted(runs, key=lambda r: (r.environment.name, r.rank)):
        by_env[run.environment.name].append(run)
    return dict(by_env)


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


def environment_risks(recent: dict[str, list[Run]]) -> list[EnvironmentRisk]:
    """Per environment, from its latest finished run: the tags at risk and since when.

    MRR at risk is computed by runs.analysis.mrr over the latest runs' results (loaded in
    one query plus one for the tags); the streaks come from ``tag_states``: one query.
    """
    latest = {runs[0].pk: runs[0] for runs in recent.values()}
    results = (
        Result.objects.filter(run_id__in=list(latest))
        .select_related("test_case__category")
        .prefetch_related("test_case__impact_tags")
    )
    by_run: dict[int, list[Result]] = defaultdict(list)
    for result in results:
        by_run[result.run_id].append(result)
    states = tag_states(r.pk for runs in recent.values() for r in runs)
    risks = []
    for runs in recent.values():
        run_results = by_run[runs[0].pk]
        risk = mrr_at_risk([result_facts(r) for r in run_results], tag_mrr(run_results))
        at_risk = []
        for area in risk.at_risk:
            start, at_least = streak_start(runs, states, area.name)
            at_risk.append(TagAtRisk(area.name, area.mrr, area.failing_checks, start or runs[0], at_least))
        status = {a.name: "at risk" for a in risk.at_risk} | {a.name: "working" for a in risk.working}
        risks.append(EnvironmentRisk(runs[0], at_risk, risk.working, status))
    return risks


def business_data(days: int | None = DEFAULT_DAYS, now: datetime | None = None) -> dict:
    """Everything the business page shows, in 5 queries."""
    recent = recent_runs_by_environment()
    risks = environment_risks(recent) if recent else []
    since = (now or timezone.now()) - timedelta(days=days) if days else None
    charted = sorted(
        (r for runs in recent.values() for r in runs if since is None or r.created >= since),
        key=lambda r: (r.created, r.pk),
    )
    tags = list(ImpactTag.objects.select_related("suite"))  # per suite: two may both name "Chat"
    tag_rows = [
        {"tag": tag, "environments": [(risk.environment.name, risk.status.get(tag.name, "")) for risk in risks]}
        for tag in tags
    ]
    return {
        "risks": risks,
        "any_at_risk": any(risk.at_risk for risk in risks),
        "mrr": mrr_series(charted),
        "tags": tag_rows,
        "has_runs": bool(recent),
    }
