"""Exports of a run whose test names, node ids, categories and messages are hostile (a CI
file says what they are): no export evaluates, executes or breaks on them."""

import csv
import io
import json
from xml.etree import ElementTree

import markdown
import pytest

from runs.exporters.formats import export_run
from runs.importers.service import import_results
from runs.models import Run

pytestmark = pytest.mark.django_db

HOSTILE_NAMES = [
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)",
    "-2+3",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "ctl \u0001\u001b[31m red",
    "lone \ud800 surrogate",
    "cdata ]]> end",
    "quotes \" ' & end",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    "![img](x.png) <img src=x onerror=alert(1)>",
    "*em* _em_ **strong** ~~del~~ `code` | pipe \\ backslash",
    "# heading",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
LIVE_MARKUP = ("<script", "<a ", "<img", "<em>", "<del>", "javascript:alert(1)</a>", 'href="javascript')


@pytest.fixture
def hostile_run() -> Run:
    """An import whose node ids are ``name::name``: each name is also its test's category."""
    tests = [
        {
            "nodeid": f"{name}::{name}",
            "outcome": "failed",
            "call": {"crash": {"message": f"{name} ``` <b>x</b>\u0002 `tick`"}},
        }
        for name in HOSTILE_NAMES
    ]
    data = json.dumps({"tests": tests}).encode()
    return import_results(io.BytesIO(data), suite_name="hostile", environment_name="ci")


def test_no_csv_cell_starts_a_formula(hostile_run):
    rows = list(csv.DictReader(io.StringIO(export_run(hostile_run, "csv")[0], newline="")))
    assert len(rows) == len(HOSTILE_NAMES)
    for row in rows:
        for cell in row.values():
            assert not cell.lstrip().startswith(FORMULA_START) and not cell.startswith(FORMULA_START)
    first = rows[0]
    name = "=cmd|' /C calc'!A0"
    assert (first["name"], first["category"], first["node_id"]) == (f"'{name}", f"'{name}", f"'{name}::{name}")
    assert {row["name"] for row in rows} >= {"'\t=1+1", "'\r=1+1", "'  =1+1", "'-2+3", "'@SUM(1)"}


def test_the_junit_export_is_well_formed_and_imports_again(hostile_run):
    xml = export_run(hostile_run, "junit")[0]
    ElementTree.fromstring(xml)  # the standard library's parser, as strict as any CI tool's
    assert "characters XML 1.0 cannot hold (controls, lone surrogates) became U+FFFD" in xml
    again = import_results(io.BytesIO(xml.encode()), suite_name="hostile-again", environment_name="ci")

    def cases(run: Run) -> list[tuple[str, str, str]]:
        return sorted(
            (r.test_case.name, r.test_case.category.name, r.outcome)
            for r in run.results.select_related("test_case__category")
        )

    def in_xml(text: str) -> str:
        return text.replace("\u0001", "\ufffd").replace("\u001b", "\ufffd")

    stored = cases(hostile_run)  # the importer stores a lone surrogate as U+FFFD, controls as they are
    assert [name for name, _, _ in stored] == sorted(name.replace("\ud800", "\ufffd") for name in HOSTILE_NAMES)
    assert cases(again) == sorted((in_xml(name), in_xml(category), outcome) for name, category, outcome in stored)
    script = again.results.get(test_case__name="<script>alert(1)</script>")
    assert script.message.startswith("<script>alert(1)</script> ``` <b>x</b>\ufffd `tick`")


def test_no_export_renders_live_html_links_or_emphasis(hostile_run):
    text = export_run(hostile_run, "md")[0]
    assert "\u001b" not in text  # a terminal showing the file runs no escape sequence
    rendered = markdown.markdown(text, extensions=["tables"])
    for markup in LIVE_MARKUP:
        assert markup not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt; ``` &lt;b&gt;x&lt;/b&gt;" in rendered  # the message
    assert "[click](javascript:alert(1))" in rendered and rendered.count("<h1") == 1  # as text
    html = export_run(hostile_run, "html")[0]
    for markup in LIVE_MARKUP:
        assert markup not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
