"""Each export format of a run — Markdown (the seed report's shape), printable HTML, JSON,
CSV, JUnit XML — as a function of the run's RunReport, and ``export_run``, which renders one."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from django.template.loader import render_to_string
from django.utils import timezone

from runs.analysis.standing import NOT_ASSESSED, SUSPECT
from runs.models import Run
from runs.notes import notes_with_history
from runs.reporting import RunReport, build_report, report_json


def conclusion(report: RunReport) -> str:
    run, standing = report.run, report.standing
    if standing is None:
        return f"The run ended with status {run.status}: {run.status_message or 'no results'}."
    text = f"{run.verdict}: {run.passed} of {run.total} checks passed."
    if not standing.reached:
        text += f" The probes {standing.unreachable_note}."
    elif report.mrr.total:
        names = ", ".join(a.name for a in report.mrr.at_risk)
        text += (
            f" ${report.mrr.total:,} of monthly recurring revenue depends on capabilities"
            f" with failing checks ({names})."
        )
    else:
        text += " No revenue is at risk."
    if report.patterns:
        main = report.patterns[0]
        checks = f"{len(main.checks)} check{'s' if len(main.checks) != 1 else ''}"
        text += f" The main failure pattern is “{main.label}” in {checks}."
    if standing.realness == SUSPECT:
        text += " Caution: the evidence does not show real network traffic for much of this run."
    elif standing.imported:
        text += f" Realness: {NOT_ASSESSED} ({report.NOT_ASSESSED_BECAUSE})."
    return text


def _context(report: RunReport) -> dict:
    return {
        "run": report.run,
        "report": report,
        "notes": notes_with_history(report.run),
        "generated": timezone.now(),
        "conclusion": conclusion(report),
    }


def to_markdown(report: RunReport) -> str:
    return render_to_string("reports/run.md", _context(report))


def to_html(report: RunReport) -> str:
    return render_to_string("reports/run_print.html", _context(report))


def to_json(report: RunReport) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False)


CSV_COLUMNS = [
    "run_id",
    "imported",
    "environment",
    "suite",
    "category",
    "node_id",
    "name",
    "outcome",
    "duration_s",
    "failure_class",
    "mock_indicators",
    "message",
]


def to_csv(report: RunReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    run = report.run
    for r in report.results:
        row = [
            run.pk,
            "yes" if run.is_imported else "no",
            run.environment.name,
            run.suite.name,
            r.test_case.category.name,
            r.test_case.node_id,
            r.test_case.name,
            r.outcome,
            f"{r.duration_s:.6f}",
            r.failure_class,
            " ".join(r.mock_flags),
            r.message,
        ]
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()


CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell no spreadsheet evaluates as a formula (OWASP, CSV injection): text that starts
    with = + - @ tab or CR, also after leading whitespace (some programs trim it), gets a
    leading single quote. Every cell goes through here: test names, node ids and category
    names come from CI files as much as messages do."""
    text = str(value)
    if text.startswith(CSV_FORMULA_START) or text.lstrip().startswith(CSV_FORMULA_START):
        return "'" + text
    return text


# Characters XML 1.0 cannot hold, even as character references: C0 controls other than tab,
# LF and CR, lone surrogates, U+FFFE and U+FFFF.
XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(document: str) -> tuple[str, int]:
    """``document`` with every character XML 1.0 cannot hold replaced by U+FFFD, and how many
    were: ElementTree writes them as they are, and no parser (the importer's neither) reads
    the result. Applied to the serialized document, so no attribute or text escapes it."""
    return XML_UNSAFE.subn("\ufffd", document)


def to_junit(report: RunReport) -> str:
    """JUnit XML: one testsuite per category, so other tools can ingest Goldpath runs."""
    run = report.run
    root = ET.Element(
        "testsuites",
        name=f"{run.suite.name} on {run.environment.name}",
        tests=str(run.total),
        failures=str(run.failed),
        errors=str(run.errors),
        skipped=str(run.skipped),
        time=f"{run.duration_s or 0:.3f}",
    )
    if run.started_at:
        root.set("timestamp", run.started_at.isoformat())
    for category in report.categories:
        results = [r for r in report.results if r.test_case.category.name == category.name]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=category.name,
            tests=str(len(results)),
            failures=str(sum(r.outcome == "failed" for r in results)),
            errors=str(sum(r.outcome == "error" for r in results)),
            skipped=str(sum(r.outcome == "skipped" for r in results)),
            time=f"{category.duration_s:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("goldpath.run_id", run.pk),
            ("goldpath.environment", run.environment.name),
            ("goldpath.verdict", run.verdict),
            ("goldpath.imported", str(run.is_imported).lower()),
        ):
            ET.SubElement(properties, "property", name=name, value=str(value))
        for r in results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{run.suite.name}.{category.name}",
                name=r.test_case.name,
                time=f"{r.duration_s:.6f}",
            )
            ET.SubElement(
                ET.SubElement(case, "properties"), "property", name="goldpath.node_id", value=r.test_case.node_id
            )
            if r.outcome in ("failed", "error"):
                tag = "failure" if r.outcome == "failed" else "error"
                ET.SubElement(case, tag, message=r.message[:1000], type=r.failure_class or tag).text = r.message
            elif r.outcome == "skipped":
                ET.SubElement(case, "skipped", message=r.message[:1000])
            if r.evidence:
                ET.SubElement(case, "system-out").text = json.dumps(r.evidence, sort_keys=True)
    ET.indent(root)
    document, replaced = xml_safe(ET.tostring(root, encoding="unicode"))
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if replaced:  # said where a reader of the file sees it; the importer skips comments
        head += f"<!-- {replaced} characters XML 1.0 cannot hold (controls, lone surrogates) became U+FFFD. -->\n"
    return head + document + "\n"


@dataclass(frozen=True)
class ExportFormat:
    render: Callable[[RunReport], str]
    content_type: str
    extension: str


FORMATS: dict[str, ExportFormat] = {
    "md": ExportFormat(to_markdown, "text/markdown; charset=utf-8", "md"),
    "html": ExportFormat(to_html, "text/html; charset=utf-8", "html"),
    "json": ExportFormat(to_json, "application/json", "json"),
    "csv": ExportFormat(to_csv, "text/csv; charset=utf-8", "csv"),
    "junit": ExportFormat(to_junit, "application/xml", "xml"),
}


def export_run(run: Run, fmt: str) -> tuple[str, ExportFormat]:
    """The run rendered in ``fmt`` and that format's description; KeyError if unknown."""
    export_format = FORMATS[fmt]
    return export_format.render(build_report(run)), export_format


def filename(run: Run, export_format: ExportFormat) -> str:
    return f"goldpath-run-{run.pk}-{run.suite.name}-{run.environment.name}.{export_format.extension}"
