"""Importing results Goldpath did not run: real files from real tools (pytest, jest-junit,
gotestsum, pytest-json-report; Surefire written to its schema), hostile and malformed
files, re-imports, the analysis of imported runs, `manage.py import_results` and memory."""

import io
import json
import re
import socket
import threading
import tracemalloc
import xml.etree.ElementTree as StdlibXML
from pathlib import Path

import pytest
from django.db import connection

from runs.importers import service as importers
from runs.importers.cases import ImportFailed
from runs.importers.junit import parse_junit
from runs.importers.service import FileTooLarge, import_results
from runs.models import Category, Environment, ImpactTag, Result, Run, RunStatus, Suite, TestCase
from runs.reporting import build_report, load_results, result_facts, stored_tags, tag_mrr
from runs.services import analyse_run
from tests.conftest import manage
from tests.samples import billion_laughs, junit_written_by_pytest

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "junit"
JEST = FIXTURES / "jest-junit.xml"
GOTESTSUM = FIXTURES / "gotestsum.xml"
SUREFIRE = FIXTURES / "surefire.xml"
PYTEST_JSON = FIXTURES / "pytest-json-report.json"
PYTEST_JSON_COLLECTION_ERROR = FIXTURES / "pytest-json-report-collection-error.json"

PYTEST_MODULE = """
import time

import pytest


@pytest.fixture
def broken():
    raise RuntimeError("database unavailable")


def test_passes():
    assert 1 + 1 == 2


def test_fails():
    assert 1 == 2


def test_errors(broken):
    pass


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass


def test_slow():
    time.sleep(0.05)
"""


def import_file(path: Path, suite: str = "ci", env: str = "ci", **options) -> Run:
    with path.open("rb") as stream:
        return import_results(stream, suite_name=suite, environment_name=env, **options)


def import_bytes(data: bytes, suite: str = "ci", env: str = "ci", **options) -> Run:
    return import_results(io.BytesIO(data), suite_name=suite, environment_name=env, **options)


def counts(run: Run) -> tuple[int, int, int, int, int]:
    run.refresh_from_db()
    return run.total, run.passed, run.failed, run.errors, run.skipped


def result(run: Run, node_id: str) -> Result:
    return run.results.select_related("test_case").get(test_case__node_id=node_id)


def junit_time_sum(path: Path) -> float:
    """The sum of the <testcase time> attributes, read with the standard library."""
    return sum(float(case.get("time") or 0) for case in StdlibXML.parse(path).iter("testcase"))


def stored_rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Run, Result, TestCase, Category, Suite, Environment))


def junit(*testcases: str, suite: str = "s") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="{suite}">{"".join(testcases)}</testsuite>'.encode()
    )


def big_junit(path: Path, cases: int) -> Path:
    """A JUnit file of ``cases`` test cases, every tenth failing, written in chunks."""
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="big">\n')
        for i in range(cases):
            if i % 10:
                out.write(b'<testcase classname="pkg.mod%d" name="test_%d" time="0.010"/>\n' % (i // 100, i))
            else:
                out.write(
                    b'<testcase classname="pkg.mod%d" name="test_%d" time="0.010">'
                    b'<failure message="assert %d == 0">trace</failure></testcase>\n' % (i // 100, i, i)
                )
        out.write(b"</testsuite></testsuites>\n")
    return path


def parse_peak_bytes(path: Path) -> tuple[int, int]:
    """(cases seen, peak traced bytes) while consuming parse_junit over the file."""
    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            seen = sum(1 for _ in parse_junit(stream))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return seen, peak


# --- real files from real tools ---------------------------------------------------------


def test_it_imports_the_junit_file_pytest_writes(tmp_path):
    report = junit_written_by_pytest(tmp_path, PYTEST_MODULE, module="test_demo")
    run = import_file(report)
    assert counts(run) == (5, 2, 1, 1, 1)
    assert run.status == RunStatus.FINISHED and run.trigger == Run.Trigger.IMPORT
    assert result(run, "test_demo::test_fails").message.startswith("assert 1 == 2")
    assert "RuntimeError: database unavailable" in result(run, "test_demo::test_errors").message
    assert result(run, "test_demo::test_skipped").message == "not on this platform"
    assert result(run, "test_demo::test_slow").duration_s >= 0.05
    assert run.duration_s == pytest.approx(junit_time_sum(report), abs=0.0005)


def test_it_imports_a_jest_junit_file():
    run = import_file(JEST)
    assert counts(run) == (5, 3, 1, 0, 1)
    failure = result(run, "cart applies the discount::cart applies the discount")
    assert failure.outcome == "failed"
    assert failure.message.startswith("Error: expect(received).toBe(expected) // Object.is equality")
    assert "Expected: 9\nReceived: 10" in failure.message
    slow = result(run, "cart checkout waits for the payment provider::cart checkout waits for the payment provider")
    assert slow.duration_s == 0.052
    assert run.duration_s == pytest.approx(junit_time_sum(JEST), abs=0.0005) == pytest.approx(0.057)


def test_it_imports_a_gotestsum_junit_file():
    run = import_file(GOTESTSUM)
    assert counts(run) == (6, 4, 1, 0, 1)
    assert "demo_test.go:16: Add(-1, -1) = -2, want -3" in result(run, "example.com/demo::TestAddNegative").message
    assert "docker is not available" in result(run, "example.com/demo::TestNeedsDocker").message
    assert result(run, "example.com/demo::TestTable/slow").duration_s == 0.05
    assert run.duration_s == pytest.approx(junit_time_sum(GOTESTSUM), abs=0.0005) == pytest.approx(0.1)


def test_it_imports_a_surefire_report():
    run = import_file(SUREFIRE)
    assert counts(run) == (5, 2, 1, 1, 1)
    failure = result(run, "com.example.shop.CartServiceTest::appliesDiscount")
    assert failure.message.startswith("expected: <9> but was: <10>\norg.opentest4j.AssertionFailedError")
    assert result(run, "com.example.shop.CartServiceTest::loadsSavedCart").outcome == "error"
    assert result(run, "com.example.shop.CartServiceTest::shipsAbroad").message == "shipping rates not implemented yet"
    assert run.duration_s == pytest.approx(junit_time_sum(SUREFIRE), abs=0.0005) == pytest.approx(0.347)


def test_it_imports_a_pytest_json_report():
    report = json.loads(PYTEST_JSON.read_text())
    run = import_file(PYTEST_JSON)
    assert counts(run) == (6, 2, 1, 1, 2)  # the xfailed test counts as skipped
    assert result(run, "test_demo.py::test_fails").message == "assert 1 == 2"
    assert result(run, "test_demo.py::test_errors").message == "RuntimeError: database unavailable"
    assert "Skipped: not on this platform" in result(run, "test_demo.py::test_skipped").message
    assert result(run, "test_demo.py::test_slow").duration_s >= 0.05
    phases = sum(t[p]["duration"] for t in report["tests"] for p in ("setup", "call", "teardown") if p in t)
    assert run.duration_s == pytest.approx(phases, abs=0.0005)


def test_it_counts_a_module_that_failed_to_collect_as_an_error():
    run = import_file(PYTEST_JSON_COLLECTION_ERROR)  # pytest said: 1 passed, 1 error
    assert counts(run) == (2, 1, 0, 1, 0)
    assert "No module named 'nonexistent_module'" in run.results.get(outcome="error").message


def test_nul_characters_and_lone_surrogates_in_a_json_report_are_stored_as_replacement_characters():
    report = {
        "tests": [
            {"nodeid": "t.py::test_\u0000a", "outcome": "failed", "call": {"crash": {"message": "bad\ud800byte"}}},
            {"nodeid": 7, "outcome": "passed"},  # not even a string
        ]
    }
    run = import_bytes(json.dumps(report).encode())  # PostgreSQL refuses NUL in text
    failed = run.results.select_related("test_case").get(outcome="failed")
    assert (failed.test_case.node_id, failed.message) == ("t.py::test_\ufffda", "bad\ufffdbyte")
    assert run.results.get(outcome="passed").test_case.node_id == "7"


# --- history and categories ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_imports_that_create_the_same_test_cases_at_once_both_land():
    import_bytes(b'<testsuite name="s"><testcase classname="c" name="t0"/></testsuite>', suite="same-suite")
    cases = "".join(f'<testcase classname="c" name="t{i}" time="0.1"/>' for i in range(2000))
    data = f'<testsuite name="s">{cases}</testsuite>'.encode()  # 1,999 test cases new to the suite
    barrier, runs, errors = threading.Barrier(2), [], []

    def upload():
        try:
            barrier.wait()
            runs.append(import_bytes(data, suite="same-suite"))
        except Exception as exc:  # collected: an error in a thread would not fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(runs) == 2
    assert TestCase.objects.filter(suite__name="same-suite").count() == 2000
    assert Result.objects.filter(run__in=runs).count() == 4000


def test_it_continues_each_tests_history_on_reimport():
    first = import_file(JEST)
    second = import_file(JEST)
    assert TestCase.objects.filter(suite=first.suite).count() == 5
    test_case = TestCase.objects.get(suite=first.suite, node_id="cart sums prices::cart sums prices")
    assert sorted(test_case.results.values_list("run_id", flat=True)) == [first.pk, second.pk]


def test_it_continues_the_history_of_a_test_with_a_long_id():
    title = "cart " + "handles a very long behaviour description " * 7  # jest-junit: classname == name
    data = junit(f'<testcase classname="{title}" name="{title}" time="0.010"/>')
    first = import_bytes(data)
    import_bytes(data)
    assert TestCase.objects.filter(suite=first.suite).count() == 1
    assert Result.objects.filter(test_case__suite=first.suite).count() == 2


def test_it_files_each_test_under_its_files_suite_name():
    run = import_file(GOTESTSUM)
    assert set(run.results.values_list("test_case__category__name", flat=True)) == {"example.com/demo"}


def test_it_refuses_to_import_into_a_probe_suite(golden_path):
    """Results of a probe suite come only from Goldpath's own workers."""
    with pytest.raises(ImportFailed, match="'golden-path' is a probe suite: its results come only from"):
        import_file(JEST, suite="golden-path")
    assert not Run.objects.exists()
    assert golden_path.test_cases.count() == 12 and golden_path.categories.count() == 5


def test_an_import_creates_an_import_suite():
    run = import_file(JEST, suite="web")
    assert run.suite.origin == Suite.Origin.IMPORT and run.version is None


# --- hostile and malformed files ------------------------------------------------------------


def truncated_jest() -> bytes:
    return JEST.read_bytes()[:500]


REFUSED = r"^refused: the XML declares a DTD, entities or external references"
HOSTILE = [
    pytest.param(billion_laughs(), {}, REFUSED, id="billion-laughs"),
    pytest.param(
        b'<?xml version="1.0"?>\n<!DOCTYPE testsuite [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        b'<testsuite name="s"><testcase name="&x;" time="1"/></testsuite>',
        {},
        REFUSED,
        id="external-entity",
    ),
    pytest.param(
        b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd">\n'
        b'<testsuite name="s"><testcase name="t" time="1"/></testsuite>',
        {},
        REFUSED,
        id="external-dtd",
    ),
    pytest.param(truncated_jest(), {}, r"^malformed XML at line 7, column 71: no element found", id="truncated"),
    pytest.param(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="s"><testcase name="caf\xe9" time="1"/></testsuite>',
        {},
        r"^malformed XML at line 2, column 39: not well-formed \(invalid token\)",
        id="not-utf-8",
    ),
    pytest.param(
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        {},
        r"^not a JUnit XML file: the root element is <html>, not <testsuites> or <testsuite>$",
        id="html",
    ),
    pytest.param(
        junit('<testcase classname="c" name="t" time="-1.5"/>'),
        {},
        r"^testcase c::t: time '-1\.5' is not a duration between 0 and 86400 s$",
        id="negative-time",
    ),
    pytest.param(
        junit('<testcase classname="c" name="t" time="NaN"/>'),
        {},
        r"^testcase c::t: time 'NaN' is not a duration",
        id="nan-time",
    ),
    pytest.param(
        junit('<testcase classname="c" name="t" time="1e12"/>'),
        {},
        r"^testcase c::t: time '1e12' is not a duration",
        id="huge-time",
    ),
    pytest.param(
        junit('<testcase classname="c" name="ok" time="1"/><testcase classname="c" time="1"/>', suite="api"),
        {},
        r"^a <testcase> in suite 'api' has no name$",
        id="nameless-testcase",
    ),
    pytest.param(b"", {}, r"^the file is empty$", id="empty"),
    pytest.param(
        b'<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY a "'
        + b"x" * 50_000
        + b'">]>\n<testsuite name="s">'
        + b"&a;" * 1000
        + b"</testsuite>",
        {},
        REFUSED,
        id="quadratic-blowup",
    ),
    pytest.param(
        junit('<testcase classname="c" name="t" time="soon"/>'),
        {},
        r"^testcase c::t: time 'soon' is not a number$",
        id="word-time",
    ),
    pytest.param(
        junit('<testcase classname="c" name="t" time="1e400"/>'),
        {},
        r"^testcase c::t: time '1e400' is not a duration",
        id="infinite-time",
    ),
    pytest.param(b'{"tests": [{"nodeid": "t.py::a", "outcome": "pas', {}, r"^malformed JSON", id="truncated-json"),
    pytest.param(
        b'{"tests": [{"nodeid": "t.py::a", "outcome": "exploded"}]}',
        {},
        r"^t\.py::a: unknown outcome 'exploded'$",
        id="unknown-outcome",
    ),
    pytest.param(
        b'<testsuites name="ci"><testsuite name="empty"/></testsuites>',
        {},
        r"^the file holds no test cases$",
        id="no-test-cases",
    ),
    pytest.param(
        b'{"name": "web", "version": "1.0.0", "scripts": {"test": "jest"}}',
        {},
        r'^not a pytest-json-report file: no "tests" list at the top level$',
        id="json-not-pytest",
    ),
    pytest.param(JEST.read_bytes(), {"max_bytes": 1000}, r"import limit of 1,000 bytes", id="too-large-xml"),
    pytest.param(PYTEST_JSON.read_bytes(), {"max_bytes": 1000}, r"import limit of 1,000 bytes", id="too-large-json"),
    pytest.param(b"name,outcome\nlogin,passed\n", {}, r"^unknown file format", id="csv"),
    pytest.param(JEST.read_bytes(), {"fmt": "csv"}, r"^unknown format 'csv'; use one of junit, pytest-json$", id="fmt"),
]


@pytest.mark.parametrize(("data", "options", "message"), HOSTILE)
def test_it_refuses_a_hostile_or_malformed_file_and_stores_nothing(data, options, message):
    import_file(JEST)  # the suite and environment exist: the refused import must add nothing to them
    before = stored_rows()
    with pytest.raises(ImportFailed, match=message) as refused:
        import_bytes(data, **options)
    assert stored_rows() == before
    assert "\n" not in str(refused.value)


def test_it_says_which_limit_a_too_large_file_exceeds():
    with pytest.raises(FileTooLarge) as refused:
        import_file(JEST, max_bytes=1000)
    assert refused.value.limit == 1000
    assert str(refused.value) == ("the file is larger than the import limit of 1,000 bytes (GOLDPATH_IMPORT_MAX_BYTES)")


def test_it_names_the_line_and_column_where_a_truncated_file_ends():
    data = JEST.read_bytes()[:1123]
    with pytest.raises(ImportFailed) as refused:
        import_bytes(data)
    line, column = map(int, re.match(r"malformed XML at line (\d+), column (\d+)", str(refused.value)).groups())
    assert (line, column) == (data.count(b"\n") + 1, len(data.rsplit(b"\n", 1)[-1]))


def test_it_never_fetches_an_external_dtd():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    data = (
        f'<?xml version="1.0"?>\n<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:{port}/x.dtd">\n'
        '<testsuite name="s"><testcase name="t" time="1"/></testsuite>'
    ).encode()
    with listener:
        with pytest.raises(ImportFailed, match=REFUSED):
            import_bytes(data)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


def test_it_never_reads_a_local_file_named_by_an_entity():
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE testsuite [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        b'<testsuite name="s"><testcase name="t" time="1"><failure message="&x;"/></testcase></testsuite>'
    )
    with pytest.raises(ImportFailed) as refused:
        import_bytes(data)
    assert "root:" not in str(refused.value)


def test_it_says_an_empty_file_is_empty():
    with pytest.raises(ImportFailed, match="empty"):
        import_bytes(b"\n")


# --- stored text and analysis ----------------------------------------------------------------


def test_it_stores_a_huge_failure_message_truncated_with_its_full_length():
    trace = "E" * 1_000_000
    failure = f'<failure message="assert False">{trace}</failure>'
    run = import_bytes(junit(f'<testcase classname="c" name="huge" time="0.1">{failure}</testcase>'))
    message = result(run, "c::huge").message
    full = len("assert False\n") + len(trace)
    assert message.startswith("assert False\nEEEE")
    assert message.endswith(f"… [truncated: {full} characters in all]")
    assert len(message) < 10_100


def test_it_flags_a_passing_test_that_took_no_time():
    run = import_bytes(
        junit('<testcase classname="c" name="instant" time="0.000"/><testcase classname="c" name="real" time="0.250"/>')
    )
    assert result(run, "c::instant").mock_flags == ["near-zero-duration"]
    assert result(run, "c::real").mock_flags == []


def test_it_numbers_the_attempts_of_a_test_the_file_names_again_in_a_later_batch(monkeypatch):
    monkeypatch.setattr(importers, "BATCH", 2)
    names = ["a", "b", "a", "c", "a"]
    run = import_bytes(junit(*(f'<testcase classname="c" name="{n}" time="0.1"/>' for n in names)))
    stored = run.results.order_by("id").values_list("test_case__name", "attempt")
    assert list(stored) == [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3)]
    assert list(run.suite.test_cases.order_by("order").values_list("name", flat=True)) == ["a", "b", "c"]


def test_the_analysis_it_stores_is_the_one_read_from_every_result(monkeypatch):
    """An import keeps counts of what the run's analysis reads, not a fact per result
    (runs.importers.store.RunTally): the run must read as its stored results do."""
    cases = [
        '<testcase classname="cart" name="sums" time="0.2"><failure message="assert 1 == 2"/></testcase>',
        '<testcase classname="cart" name="pays" time="0.000"/>',
        '<testcase classname="cart" name="checks stock" time="0.1"><error message="Connection refused"/></testcase>',
        '<testcase classname="auth" name="logs in" time="0.1"><error message="Connection refused"/></testcase>',
        '<testcase classname="auth" name="logs out" time="0.1"><skipped/></testcase>',
        '<testcase classname="cart" name="sums" time="0.3"/>',
        *(f'<testcase classname="search" name="finds {i}" time="0.05"/>' for i in range(7)),
    ]
    data = f"<testsuites>{''.join(cases)}</testsuites>".encode()
    first = import_bytes(data)
    Category.objects.filter(suite=first.suite, name="auth").update(critical=True)
    checkout = ImpactTag.objects.create(suite=first.suite, name="Checkout", mrr=500)
    checkout.test_cases.add(*TestCase.objects.filter(suite=first.suite, name__in=["sums", "pays"]))
    monkeypatch.setattr(importers, "BATCH", 3)
    run = import_bytes(data)
    results, tags = load_results(run), stored_tags([run.suite_id])
    expected = analyse_run(
        run,
        [result_facts(r, None, tags) for r in results],
        tag_mrr(None, tags),
        sum(1 for r in results if r.mock_flags),
    )
    run.refresh_from_db()
    assert {field: getattr(run, field) for field in expected} == expected
    assert (run.verdict, run.mrr_at_risk, run.mock_count) == ("FAIL", 500, 2)
    assert counts(run) == (13, 9, 1, 2, 1) and run.expected == 13
    assert run.duration_s == round(0.2 + 0.0 + 0.1 + 0.1 + 0.1 + 0.3 + 7 * 0.05, 3)


def test_it_rates_an_imported_run_suspect_without_network_evidence():
    run = import_file(SUREFIRE)
    run.refresh_from_db()
    assert run.realness_score == 0.0
    assert build_report(run).realness.verdict == "SUSPECT"


def test_it_classifies_imported_failures():
    run = import_file(SUREFIRE)
    assert result(run, "com.example.shop.CartServiceTest::appliesDiscount").failure_class == "assertion"
    assert result(run, "com.example.shop.CartServiceTest::loadsSavedCart").failure_class == "connection-refused"
    assert result(run, "com.example.shop.CartServiceTest::sumsPrices").failure_class == ""


def test_a_junit_failure_message_outweighs_words_in_its_stack_trace():
    trace = 'File "tests/test_orders.py", line 9, in test_orders\n    r = client.get("/orders", timeout=5)'
    run = import_bytes(
        b'<testsuite name="s"><testcase classname="c" name="t">'
        b'<failure message="AssertionError: expected 200, got 500">' + trace.encode() + b"</failure>"
        b"</testcase></testsuite>"
    )
    stored = result(run, "c::t")
    assert "timeout=5" in stored.message
    assert stored.failure_class == "assertion"  # not receive-timeout, which the trace alone would give


def test_a_junit_failure_without_a_telling_message_is_classified_by_its_trace():
    run = import_file(GOTESTSUM)  # message="Failed"; the body says "… = -2, want -3"
    assert result(run, "example.com/demo::TestAddNegative").failure_class == "assertion"


def test_it_classifies_a_pytest_assert_as_an_assertion():
    run = import_file(PYTEST_JSON)
    assert result(run, "test_demo.py::test_fails").failure_class == "assertion"


# --- manage.py import_results ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_prints_the_imported_run_as_json():
    completed = manage("import_results", str(JEST), "--suite", "web", "--env", "ci", "--json")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    run = Run.objects.get(pk=report["run_id"])
    assert (report["verdict"], report["status"], report["trigger"]) == (run.verdict, "finished", "import")
    assert (report["total"], report["passed"], report["failed"], report["skipped"]) == (5, 3, 1, 1)
    assert (report["suite"], report["environment"]) == ("web", "ci")
    classes = {r["name"]: r["failure_class"] for r in report["results"]}
    assert classes["cart applies the discount"] == "assertion"
    assert classes["cart sums prices"] is None
    assert report["realness"]["verdict"] == "not assessed"  # an import never touched the network


@pytest.mark.django_db(transaction=True)
def test_it_exits_non_zero_on_a_hostile_file_and_imports_nothing(tmp_path):
    hostile = tmp_path / "lolz.xml"
    hostile.write_bytes(billion_laughs())
    completed = manage("import_results", str(hostile), "--suite", "web", "--env", "ci", "--json")
    assert completed.returncode != 0
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("; nothing was imported"), completed.stderr
    assert "refused: the XML declares a DTD" in lines[0]
    assert stored_rows()[:3] == (0, 0, 0)


# --- memory ----------------------------------------------------------------------------------


def test_it_parses_a_large_file_in_bounded_memory(tmp_path):
    seen, peak = parse_peak_bytes(big_junit(tmp_path / "big.xml", 50_000))
    assert seen == 50_000
    assert peak < 30 * 1024 * 1024


def import_peak_bytes(path: Path) -> int:
    """Peak traced bytes while importing the file (a new suite each time)."""
    tracemalloc.start()
    try:
        import_file(path, suite=path.stem)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_it_imports_four_times_the_cases_in_about_the_same_memory(tmp_path, monkeypatch):
    """Stored a batch at a time: nothing is kept per case but a bit (which test cases the
    file named) and its share of a count, so memory stays that of a batch."""
    monkeypatch.setattr(importers, "BATCH", 1_000)
    small = import_peak_bytes(big_junit(tmp_path / "small.xml", 3_000))
    large = import_peak_bytes(big_junit(tmp_path / "large.xml", 12_000))
    assert Result.objects.count() == 15_000
    assert large < 1.3 * small


def test_it_parses_four_times_the_cases_in_about_the_same_memory(tmp_path):
    _, small = parse_peak_bytes(big_junit(tmp_path / "small.xml", 10_000))
    _, large = parse_peak_bytes(big_junit(tmp_path / "large.xml", 40_000))
    assert large < 1.5 * small
