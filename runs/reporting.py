"""A run as report data: one shape for the run page, `run_suite --json` and exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runs.analysis.categories import CategoryRow, category_table
from runs.analysis.facts import FAILING, PASSED, ResultFacts
from runs.models import Measurement, Result, Run


def result_facts(result: Result) -> ResultFacts:
    test_case = result.test_case
    return ResultFacts(
        name=test_case.name,
        category=test_case.category.name,
        outcome=result.outcome,
        duration_s=result.duration_s,
        critical=test_case.category.critical,
        message=result.message,
    )


@dataclass
class RunReport:
    run: Run
    results: list[Result]
    measurements: list[Measurement]
    categories: list[CategoryRow]
    total: CategoryRow

    @property
    def passing(self) -> list[Result]:
        return [r for r in self.results if r.outcome == PASSED]

    @property
    def failing(self) -> list[Result]:
        return [r for r in self.results if r.outcome in FAILING]

    @property
    def mrr_in_scope(self) -> int:
        tags = {tag.pk: tag.mrr for r in self.results for tag in r.test_case.impact_tags.all()}
        return sum(tags.values())


def build_report(run: Run) -> RunReport:
    """Load everything the report needs in a fixed number of queries."""
    results = list(run.results.select_related("test_case__category").prefetch_related("test_case__impact_tags"))
    order = list(run.suite.categories.values_list("name", flat=True))
    rows, total = category_table([result_facts(r) for r in results], order)
    return RunReport(run, results, list(run.measurements.all()), rows, total)


def report_json(report: RunReport) -> dict[str, Any]:
    """The `run_suite --json` shape."""
    run = report.run
    return {
        "run_id": run.pk,
        "status": run.status,
        "verdict": run.verdict or None,
        "status_message": run.status_message,
        "suite": run.suite.name,
        "environment": run.environment.name,
        "base_url": run.base_url,
        "trigger": run.trigger,
        "created": run.created.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "total": run.total,
        "passed": run.passed,
        "failed": run.failed + run.errors,
        "skipped": run.skipped,
        "duration_s": run.duration_s,
        "mrr_in_scope": report.mrr_in_scope,
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
                "evidence": r.evidence,
            }
            for r in report.results
        ],
        "measurements": [
            {
                "name": m.name,
                "key": m.key,
                "p50_ms": m.p50,
                "p95_ms": m.p95,
                "target_ms": m.target,
                "samples": len(m.samples),
                "ok": m.ok,
                "note": m.note,
            }
            for m in report.measurements
        ],
    }
