"""A run as report data: one shape for the run page, `run_suite --json` and exports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, NamedTuple

from runs import history
from runs.analysis.categories import CategoryRow, category_table
from runs.analysis.critical_metrics import CriticalMetric, critical_metrics
from runs.analysis.facts import FAILING, PASSED, MetricFacts, ResultFacts
from runs.analysis.mock import INDICATOR_LABELS, Realness, realness
from runs.analysis.mrr import MrrAtRisk, mrr_at_risk
from runs.analysis.patterns import Pattern, failure_patterns
from runs.analysis.standing import NOT_ASSESSED, Standing
from runs.models import Category, Measurement, Result, Run, TestCase
from runs.state import standing_of


@dataclass(frozen=True)
class AsRan:
    """What the suite version a run ran said of its checks: each one's category, whether that
    was critical, its impact tags and their MRR. A later version may change them; the run's
    report must not change with it."""

    checks: dict[str, tuple[str, bool, tuple[str, ...]]]
    tag_mrr: dict[str, int]
    categories: list[str]


def as_ran(run: Run) -> AsRan | None:
    """None for a run without a version (an import): its test cases' rows are all there is."""
    definition = run.definition
    if not definition.get("checks"):
        return None
    critical = {c["name"]: bool(c.get("critical")) for c in definition.get("categories", [])}
    return AsRan(
        {
            c["id"]: (c["category"], critical.get(c["category"], False), tuple(c.get("impact", ())))
            for c in definition["checks"]
        },
        {t["name"]: t["mrr"] for t in definition.get("impact_tags", [])},
        [c["name"] for c in definition.get("categories", [])],
    )


@dataclass(frozen=True)
class StoredTags:
    """The impact tags stored for test cases: a result's impact when the version its run ran
    does not define its check (an import has no version)."""

    of_case: dict[int, tuple[str, ...]]  # test case id → its tags' names, highest MRR first
    mrr: dict[str, int]  # tag name → MRR


def stored_tags(suite_ids: Iterable[int]) -> StoredTags:
    """The tags of these suites' test cases, in one query over the test case ↔ tag table:
    ``prefetch_related`` builds a manager and a queryset per test case, tagged or not — 4.5 s
    for two imports of 10,000 untagged test cases on the compare page."""
    through = TestCase.impact_tags.through
    rows = (
        through.objects.filter(testcase__suite_id__in=list(suite_ids))
        .order_by("testcase_id", "-impacttag__mrr", "impacttag__name")  # ImpactTag's own ordering
        .values_list("testcase_id", "impacttag__name", "impacttag__mrr")
    )
    names: dict[int, list[str]] = defaultdict(list)
    mrr = {}
    for test_case_id, name, tag_mrr_value in rows:
        names[test_case_id].append(name)
        mrr[name] = tag_mrr_value
    return StoredTags({test_case_id: tuple(tags) for test_case_id, tags in names.items()}, mrr)


def result_facts(result: Result, ran: AsRan | None, tags: StoredTags) -> ResultFacts:
    """A result as the analysis reads it: its check's category, criticality and impact as the
    version it ran defined them, else as stored (``tags``: stored_tags of its suite)."""
    test_case = result.test_case
    defined = ran.checks.get(test_case.node_id) if ran else None
    if defined:
        category, critical, impact = defined
    else:
        category, critical = test_case.category.name, test_case.category.critical
        impact = tags.of_case.get(result.test_case_id, ())
    return ResultFacts(
        name=test_case.name,
        category=category,
        outcome=result.outcome,
        duration_s=result.duration_s,
        critical=critical,
        message=result.message,
        node_id=test_case.node_id,
        declares=test_case.declares,
        impact=impact,
        failure_class=result.failure_class,
        evidence=result.evidence or {},
        started_at=result.started_at.timestamp() if result.started_at else None,
        finished_at=result.finished_at.timestamp() if result.finished_at else None,
    )


def metric_facts(measurement: Measurement) -> MetricFacts:
    m = measurement
    return MetricFacts(m.key, m.name, m.target, m.p50, m.p95, m.ok, m.unit)


def tag_mrr(ran: AsRan | None, tags: StoredTags) -> dict[str, int]:
    """MRR by impact tag name as the version a run ran defined them, else as stored; a tag no
    result names is never looked up (mrr_at_risk reads the tags of the results)."""
    return ran.tag_mrr if ran is not None else tags.mrr


def load_results(run: Run) -> list[Result]:
    """The run's results with their test cases and categories (their tags: stored_tags).
    The categories are read once and shared: ``select_related`` would build one per result,
    10,000 for an import of 10,000 one-case suites in 200 categories. A result stored or a
    check moved to another category between the two queries reads its category when asked."""
    results = list(run.results.select_related("test_case"))
    categories = Category.objects.filter(pk__in=run.results.order_by().values("test_case__category_id")).order_by()
    by_id = {category.pk: category for category in categories}
    for result in results:
        if category := by_id.get(result.test_case.category_id):
            result.test_case.category = category
    return results


class ComparedResult(NamedTuple):
    """What compare_runs reads of a result."""

    name: str
    node_id: str
    outcome: str


def compared_results(run: Run) -> list[ComparedResult]:
    """The run's results as compare_runs matches them, read as plain rows in one query: a
    model instance per result, test case and category costs seconds for 10,000 results."""
    rows = run.results.values_list("test_case__name", "test_case__node_id", "outcome")
    return [ComparedResult(*row) for row in rows]


def defined_requests(run: Run) -> dict[str, int]:
    """Request steps per check of the version the run ran, times its samples."""
    return {
        c["id"]: sum(1 for step in c.get("steps", []) if "request" in step) * c.get("repeat", 1)
        for c in run.definition.get("checks", [])
    }


@dataclass
class FailureClassRow:
    name: str
    label: str
    checks: tuple[str, ...]
    summary: str
    first_run_id: int | None
    runs_since: int


@dataclass
class RunReport:
    run: Run
    results: list[Result]
    measurements: list[Measurement]
    categories: list[CategoryRow]
    total: CategoryRow
    critical_metrics: list[CriticalMetric]
    patterns: list[FailureClassRow]
    mrr: MrrAtRisk
    realness: Realness
    standing: Standing | None  # how the finished run reads on every summary; None before a verdict
    flaky: dict[int, float] = field(default_factory=dict)  # test case id → flip rate

    # Why an import's realness is not assessed, wherever a report names its realness.
    NOT_ASSESSED_BECAUSE: ClassVar[str] = "imported results — they never touched the network from Goldpath"

    @property
    def passing(self) -> list[Result]:
        return [r for r in self.results if r.outcome == PASSED]

    @property
    def failing(self) -> list[Result]:
        return [r for r in self.results if r.outcome in FAILING]

    @property
    def mrr_in_scope(self) -> int:
        return self.mrr.in_scope

    @property
    def flagged_results(self) -> list[Result]:
        return [r for r in self.results if r.mock_flags]

    @property
    def run_indicators(self) -> list[str]:
        return [describe_run_flag(flag) for flag in self.run.mock_flags]

    @property
    def realness_verdict(self) -> str:
        """REAL, SUSPECT or "not assessed", as the run's standing reads it (realness_of: any
        mock indicator makes a probe run suspect, an import's realness is not assessed); the
        evidence's own verdict while the run has none."""
        if self.standing is None:
            return self.realness.verdict
        return NOT_ASSESSED if self.standing.realness == NOT_ASSESSED else self.standing.realness.upper()

    @property
    def mrr_assessed(self) -> bool:
        """False when the probes never reached the service: its revenue was not assessed."""
        return self.standing is None or self.standing.reached


def describe_run_flag(flag: dict[str, Any]) -> str:
    label = INDICATOR_LABELS.get(flag.get("indicator", ""), flag.get("indicator", ""))
    return f"{label}: {flag['metric']}" if flag.get("metric") else label


def _pattern_rows(run: Run, patterns: list[Pattern]) -> list[FailureClassRow]:
    """Patterns with where their class was first seen; a class with no stored history
    (unclassified, or not yet saved) counts as first seen in this run."""
    seen = history.failure_class_history(run, [p.failure_class for p in patterns]) if patterns else {}
    rows = []
    for p in patterns:
        known = seen.get(p.failure_class, {})
        rows.append(
            FailureClassRow(
                p.failure_class, p.label, p.checks, p.summary, known.get("first_run", run.pk), known.get("runs", 1)
            )
        )
    return rows


def build_report(run: Run) -> RunReport:
    """Load everything the report needs in a fixed number of queries and analyse it."""
    results = load_results(run)
    measurements = list(run.measurements.all())
    ran = as_ran(run)
    tags = stored_tags([run.suite_id])
    facts = [result_facts(r, ran, tags) for r in results]
    metrics = [metric_facts(m) for m in measurements]
    order = ran.categories if ran else list(run.suite.categories.values_list("name", flat=True))
    rows, total = category_table(facts, order)
    definitions = run.definition.get("critical_metrics", [])
    return RunReport(
        run=run,
        results=results,
        measurements=measurements,
        categories=rows,
        total=total,
        critical_metrics=critical_metrics(definitions, facts, metrics, defined_requests(run)),
        patterns=_pattern_rows(run, failure_patterns(facts, history.class_labels())),
        mrr=mrr_at_risk(facts, tag_mrr(ran, tags)),
        realness=realness(facts),
        standing=standing_of(run, ((r.outcome, r.failure_class) for r in results)) if run.verdict else None,
        flaky=history.flaky_test_cases(run) if run.is_done else {},
    )


def standing_json(standing: Standing | None) -> dict[str, Any] | None:
    """A run's standing as the API and the JSON export give it: ``key`` (unreachable,
    pass-mocked, pass, partial-success or fail), ``label`` as the pages print it, whether the
    probes reached the service, realness (real, suspect, not assessed) and the notes the
    pages add (could not reach …, N mock indicators, realness not assessed …)."""
    if standing is None:
        return None
    notes = [standing.unreachable_note, standing.mock_note, standing.realness_note]
    return {
        "key": standing.key,
        "label": standing.label,
        "reached": standing.reached,
        "realness": standing.realness,
        "notes": [note for note in notes if note],
    }


def report_json(report: RunReport) -> dict[str, Any]:
    """The `run_suite --json` shape (the JSON export's, the API's run). ``mrr_at_risk`` is
    null for a run whose probes never reached the service: its revenue was not assessed."""
    run = report.run
    flaky_names = {r.test_case_id: r.test_case.name for r in report.results}
    return {
        "run_id": run.pk,
        "status": run.status,
        "verdict": run.verdict or None,
        "status_message": run.status_message,
        "suite": run.suite.name,
        "environment": run.environment.name,
        "base_url": run.base_url,
        "suite_version": run.version.number if run.version else None,
        "trigger": run.trigger,
        "imported": run.is_imported,
        "created": run.created.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "total": run.total,
        "passed": run.passed,
        "failed": run.failed + run.errors,
        "skipped": run.skipped,
        "duration_s": run.duration_s,
        "standing": standing_json(report.standing),
        "mrr_in_scope": report.mrr.in_scope,
        "mrr_at_risk": {
            "total": report.mrr.total,
            "at_risk": [asdict(a) for a in report.mrr.at_risk],
            "working": [asdict(a) for a in report.mrr.working],
        }
        if report.mrr_assessed
        else None,
        "critical_metrics": [
            {"name": m.name, "passed": m.passed, "total": m.total, "ok": m.ok, "detail": m.detail}
            for m in report.critical_metrics
        ],
        "categories": [
            {"name": c.name, "total": c.total, "passed": c.passed, "failed": c.failed, "duration_s": c.duration_s}
            for c in report.categories
        ],
        "results": [
            {
                "name": r.test_case.name,
                "node_id": r.test_case.node_id,
                "category": r.test_case.category.name,
                "outcome": r.outcome,
                "duration_s": r.duration_s,
                "message": r.message,
                "failure_class": r.failure_class or None,
                "mock_indicators": r.mock_flags,
                "evidence": r.evidence,
            }
            for r in report.results
        ],
        "patterns": [asdict(p) for p in report.patterns],
        "mock_indicators": {
            "run": run.mock_flags,
            "results": {r.test_case.node_id: r.mock_flags for r in report.flagged_results},
        },
        "realness": {
            "score": report.realness.score,
            "verdict": report.realness_verdict,
            "confirmed": report.realness.confirmed,
            "missing": report.realness.missing,
        },
        "flaky": [{"name": flaky_names.get(tc, str(tc)), "flip_rate": rate} for tc, rate in report.flaky.items()],
        "measurements": [
            {
                "name": m.name,
                "key": m.key,
                "p50_ms": m.p50,
                "p95_ms": m.p95,
                "target_ms": m.target,
                "percentile": m.percentile,
                "samples": len(m.samples),
                "ok": m.ok,
                "note": m.note,
            }
            for m in report.measurements
        ],
    }
