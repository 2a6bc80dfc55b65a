"""A run as report data: one shape for the run page, `run_suite --json` and exports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runs import history
from runs.analysis.categories import CategoryRow, category_table
from runs.analysis.critical_metrics import CriticalMetric, critical_metrics
from runs.analysis.facts import FAILING, PASSED, MetricFacts, ResultFacts
from runs.analysis.mock import INDICATOR_LABELS, Realness, realness
from runs.analysis.mrr import MrrAtRisk, mrr_at_risk
from runs.analysis.patterns import Pattern, failure_patterns
from runs.models import Measurement, Result, Run


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


def result_facts(result: Result, ran: AsRan | None = None) -> ResultFacts:
    test_case = result.test_case
    defined = ran.checks.get(test_case.node_id) if ran else None
    if defined:
        category, critical, impact = defined
    else:
        category, critical = test_case.category.name, test_case.category.critical
        impact = tuple(tag.name for tag in test_case.impact_tags.all())
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


def tag_mrr(results: list[Result], ran: AsRan | None = None) -> dict[str, int]:
    """MRR by impact tag name, for the tags of these results (all of one suite), as the
    version they ran defined them."""
    if ran is not None:
        return ran.tag_mrr
    return {tag.name: tag.mrr for r in results for tag in r.test_case.impact_tags.all()}


def load_results(run: Run) -> list[Result]:
    return list(run.results.select_related("test_case__category").prefetch_related("test_case__impact_tags"))


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
    flaky: dict[int, float] = field(default_factory=dict)  # test case id → flip rate

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
    facts = [result_facts(r, ran) for r in results]
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
        mrr=mrr_at_risk(facts, tag_mrr(results, ran)),
        realness=realness(facts),
        flaky=history.flaky_test_cases(run) if run.is_done else {},
    )


def report_json(report: RunReport) -> dict[str, Any]:
    """The `run_suite --json` shape."""
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
        "mrr_in_scope": report.mrr.in_scope,
        "mrr_at_risk": {
            "total": report.mrr.total,
            "at_risk": [asdict(a) for a in report.mrr.at_risk],
            "working": [asdict(a) for a in report.mrr.working],
        },
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
            "verdict": report.realness.verdict,
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
