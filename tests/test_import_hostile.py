"""The importer against files written to hurt it (issue 14): tokens expat would rescan
quadratically, text it would hold whole, messages that make regexes backtrack, thousands of
one-case suites, JSON of the wrong shapes, wide encodings and locale-written times. Each is
refused with the limit it crossed, or read as a person reading the file would read it."""

import codecs
import copy
import io
import json
import re
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runs.analysis.classification import MESSAGE_EXCERPT, RegexBudget, Rule
from runs.importers.cases import MAX_NAME, MAX_TEXT, ImportedCase, ImportFailed
from runs.importers.junit import MAX_ATTRIBUTES, MAX_DEPTH, MAX_TOKEN_BYTES, parse_junit
from runs.importers.service import PARSERS, detect_format, import_results
from runs.importers.store import MAX_CATEGORIES, OTHER_CATEGORY, capped_categories, classifier
from runs.models import Run, TestCase

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "junit"
JEST = FIXTURES / "jest-junit.xml"
PYTEST_JSON = FIXTURES / "pytest-json-report.json"


def import_bytes(data: bytes, **options) -> Run:
    return import_results(io.BytesIO(data), suite_name="ci", environment_name="ci", **options)


def junit(*testcases: str, suite: str = "s") -> bytes:
    return f'<?xml version="1.0"?>\n<testsuite name="{suite}">{"".join(testcases)}</testsuite>'.encode()


def pytest_json(*tests: object, **top: object) -> bytes:
    return json.dumps({"tests": list(tests), **top}).encode()


def refused_in(data: bytes) -> tuple[str, float]:
    """The refusal's message and the seconds it took."""
    started = time.perf_counter()
    with pytest.raises(ImportFailed) as refused:
        import_bytes(data)
    return str(refused.value), time.perf_counter() - started


# --- row 3: tokens and text expat would hold or rescan ---------------------------------------


@pytest.mark.django_db
def test_it_refuses_a_50_mib_attribute_at_the_token_limit_without_reading_it_all():
    data = b'<testsuite name="s"><testcase name="' + b"a" * (50 * 1024 * 1024) + b'" time="1"/></testsuite>'
    message, seconds = refused_in(data)
    assert message.startswith("refused: a tag, comment or processing instruction after line 1 is longer than")
    assert f"{MAX_TOKEN_BYTES:,} bytes" in message
    assert seconds < 5  # 25 s before the limit; measured 0.05 s with it (a generous guard, not a benchmark)


@pytest.mark.django_db
def test_it_refuses_a_million_empty_attributes_at_the_token_limit():
    attributes = b" ".join(b'a%d=""' % i for i in range(1_000_000))  # 10.9 MB in one tag
    message, seconds = refused_in(b'<testsuite name="s"><testcase name="t" ' + attributes + b"/></testsuite>")
    assert message.startswith("refused: a tag, comment or processing instruction")
    assert seconds < 5  # 7 s and +274 MB before


@pytest.mark.django_db
def test_it_refuses_an_element_with_more_attributes_than_the_limit():
    attributes = " ".join(f'a{i}=""' for i in range(MAX_ATTRIBUTES))  # and name: one too many
    message, _ = refused_in(junit(f'<testcase name="t" {attributes}/>'))
    assert message == f"refused: a <testcase> has {MAX_ATTRIBUTES + 1} attributes, over the limit of {MAX_ATTRIBUTES}"


@pytest.mark.django_db
def test_it_refuses_a_huge_comment_at_the_token_limit():
    message, _ = refused_in(b'<testsuite name="s"><!--' + b"x" * (2 * MAX_TOKEN_BYTES) + b"--></testsuite>")
    assert message.startswith("refused: a tag, comment or processing instruction")


@pytest.mark.django_db
def test_it_refuses_elements_nested_deeper_than_the_limit():
    nested = b"<testsuite>" * MAX_DEPTH + b"</testsuite>" * MAX_DEPTH
    message, _ = refused_in(b"<testsuites>" + nested + b"</testsuites>")
    assert message == f"refused: elements nested more than {MAX_DEPTH} deep"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["name", "classname"])
def test_it_refuses_a_junit_test_name_longer_than_the_limit(field):
    attributes = {"name": "t", "classname": "c", field: "n" * (MAX_NAME + 1)}
    message, _ = refused_in(junit(f'<testcase name="{attributes["name"]}" classname="{attributes["classname"]}"/>'))
    assert message.endswith(f"has a name or class name of {MAX_NAME + 1:,} characters, over the limit of {MAX_NAME:,}")


@pytest.mark.django_db
def test_it_refuses_a_pytest_json_test_name_longer_than_the_limit():
    message, _ = refused_in(pytest_json({"nodeid": "t.py::" + "n" * (MAX_NAME + 1), "outcome": "passed"}))
    assert message.endswith(f"over the limit of {MAX_NAME:,}")


def test_it_keeps_only_the_stored_part_of_a_huge_failure_text_while_parsing(tmp_path):
    trace = tmp_path / "trace.xml"
    with trace.open("wb") as out:
        out.write(b'<testsuite name="s"><testcase name="t"><failure message="boom">')
        for _ in range(50):
            out.write(b"E" * 1024 * 1024)
        out.write(b"</failure></testcase></testsuite>")
    with trace.open("rb") as stream:
        tracemalloc.start()
        try:
            (case,) = parse_junit(stream)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert case.message.endswith(f"… [truncated: {len('boom') + 1 + 50 * 1024 * 1024} characters in all]")
    assert len(case.message) < MAX_TEXT + 100
    assert peak < 2 * 1024 * 1024  # 50 MiB of text pieces held, then joined, before


# --- row 4: classification reads a bounded excerpt of each failure, once ---------------------


@dataclass(frozen=True)
class Recording(Rule):
    """A rule that never matches and notes each text it was shown."""

    seen: list[str] = field(default_factory=list)

    def matches(self, message: str, failure: object, budget: RegexBudget | None = None) -> bool:
        self.seen.append(message)
        return False


def test_classification_reads_at_most_the_excerpt_of_each_failure_once():
    recording = Recording("recording", "recording")
    failure_class = classifier([recording], RegexBudget())
    for i in range(3):
        text = "".join(f"{i}{j} over the target missed: " for j in range(800))  # 22 KB, distinct per case
        case = ImportedCase("s", "c", f"t{i}", "failed", 1.0, message=f"{text[:2000]}\n{text}", headline=text[:2000])
        for _ in range(2):  # the same failure again: already classified
            assert failure_class(case) == "unclassified"
    assert len(recording.seen) == 6  # headline and the rest of its excerpt, for each distinct failure
    read_per_failure = [len(recording.seen[i]) + len(recording.seen[i + 1]) for i in range(0, 6, 2)]
    assert max(read_per_failure) <= MESSAGE_EXCERPT  # before: 2,000 + 10,000 characters, each rule


# --- row 5: categories per suite ------------------------------------------------------------


def test_categories_past_the_cap_share_the_other_category():
    given = capped_categories(["a", "b", "c", "a"], existing=[f"old{i}" for i in range(MAX_CATEGORIES - 2)])
    assert given["a"] == "a" and given["b"] == "b" and given["c"] == OTHER_CATEGORY
    assert given["old0"] == "old0"  # a suite's existing categories stay what they are


@pytest.mark.django_db
def test_a_file_of_10000_one_case_suites_makes_at_most_the_capped_categories():
    suites = "".join(f'<testsuite name="pkg{i}"><testcase name="t{i}" time="0.1"/></testsuite>' for i in range(10_000))
    run = import_bytes(f"<testsuites>{suites}</testsuites>".encode())
    assert run.total == 10_000
    names = list(run.suite.categories.values_list("name", flat=True))
    assert len(names) == MAX_CATEGORIES + 1
    assert names[-1] == OTHER_CATEGORY == "Other suites (past the 200-category cap)"
    assert TestCase.objects.get(node_id="t0").category.name == "pkg0"
    assert TestCase.objects.filter(category__name=OTHER_CATEGORY).count() == 10_000 - MAX_CATEGORIES


# --- row 9: pytest-json of the wrong shapes -------------------------------------------------


def test_it_refuses_json_nested_deeper_than_the_reader_allows():
    with pytest.raises(ImportFailed, match=r"^refused: the JSON nests lists or objects deeper"):
        list(PARSERS["pytest-json"](io.BytesIO(b'{"tests": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")))


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (pytest_json({"nodeid": "t.py::a", "outcome": ["failed"]}), r"^t\.py::a: unknown outcome \"\['failed'\]\"$"),
        (pytest_json({"nodeid": "t.py::a", "outcome": {"x": 1}}), r"^t\.py::a: unknown outcome \"\{'x': 1\}\"$"),
        (pytest_json({"nodeid": "t.py::a", "outcome": "failed", "call": "boom"}), r"^t\.py::a: call is text, not an"),
        (pytest_json({"nodeid": "t.py::a", "outcome": "passed", "setup": [1, 2]}), r"^t\.py::a: setup is a list, not"),
        (
            pytest_json({"nodeid": "t.py::a", "outcome": "failed", "call": {"crash": 5}}),
            r"^t\.py::a: call\.crash is a number, not an object$",
        ),
        (pytest_json(collectors=5), r'^"collectors" is a number, not a list$'),
    ],
    ids=["outcome-list", "outcome-dict", "call-text", "setup-list", "crash-number", "collectors-number"],
)
def test_it_refuses_a_pytest_json_value_of_the_wrong_shape_and_names_it(report, message):
    with pytest.raises(ImportFailed, match=message):
        list(PARSERS["pytest-json"](io.BytesIO(report)))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)


def paths(value: object, path: tuple = ()) -> Iterator[tuple]:
    """Every place in a JSON document, as the keys and indexes leading to it."""
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from paths(child, (*path, key))


REPORT = json.loads(PYTEST_JSON.read_text())
REPORT_PATHS = [path for path in paths(REPORT) if path]


def mutated(report: dict, path: tuple, value: object) -> dict:
    document = copy.deepcopy(report)
    place = document
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = value
    return document


def parsed(data: bytes) -> list[ImportedCase]:
    stream = io.BytesIO(data)
    return list(PARSERS[detect_format(stream)](stream))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.sampled_from(REPORT_PATHS), JSON_VALUES), min_size=1, max_size=3))
def test_no_mutated_pytest_json_report_fails_with_anything_but_import_failed(mutations):
    document = REPORT
    for path, value in mutations:
        try:
            document = mutated(document, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed that place
            continue
    try:
        parsed(json.dumps(document).encode())
    except ImportFailed:
        pass


JEST_BYTES = JEST.read_bytes()


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(JEST_BYTES)), st.integers(0, 8), st.binary(max_size=8)), min_size=1, max_size=4
    )
)
def test_no_mutated_junit_file_fails_with_anything_but_import_failed(edits):
    data = JEST_BYTES
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut :]
    try:
        parsed(data)
    except ImportFailed:
        pass


# --- row 16: encodings ---------------------------------------------------------------------


UTF16_JUNIT = '<?xml version="1.0" encoding="UTF-16"?>\n<testsuite name="s"><testcase name="café"/></testsuite>'


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        UTF16_JUNIT.encode("utf-16"),  # with its byte-order mark
        codecs.BOM_UTF16_BE + UTF16_JUNIT.encode("utf-16-be"),
        UTF16_JUNIT.encode("utf-16-be"),  # no mark: '<' as 00 3C
    ],
    ids=["utf-16-bom", "utf-16-be-bom", "utf-16-be"],
)
def test_it_detects_junit_in_the_encoding_its_bom_or_declaration_names(data):
    run = import_bytes(data)
    assert run.results.get().test_case.name == "café"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_it_detects_a_pytest_json_report_in_a_wide_encoding(encoding):
    assert detect_format(io.BytesIO(PYTEST_JSON.read_text().encode(encoding))) == "pytest-json"


@pytest.mark.django_db
def test_it_says_junit_in_utf_32_cannot_be_read():
    message, _ = refused_in(UTF16_JUNIT.replace("UTF-16", "UTF-32").encode("utf-32"))
    assert message == "JUnit XML in UTF-32 cannot be read: save it as UTF-8 or UTF-16"


# --- row 17: times written with a locale's separators --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("written", "seconds"),
    [("1,5", 1.5), ("0,001", 0.001), ("1,234.5", 1234.5), ("1.234,5", 1234.5), ("12,345.678", 12345.678)],
)
def test_it_reads_decimal_commas_and_thousands_separators(written, seconds):
    run = import_bytes(junit(f'<testcase classname="c" name="t" time="{written}"/>'))
    assert run.results.get().duration_s == seconds


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("1,234", r"^testcase c::t: time '1,234' is ambiguous \(a decimal comma or a thousands separator\?\)$"),
        ("1,2,3", r"^testcase c::t: time '1,2,3' is not a number$"),
        ("1,23.4", r"^testcase c::t: time '1,23\.4' is not a number$"),
    ],
)
def test_it_refuses_a_time_it_cannot_read_without_guessing(written, message):
    with pytest.raises(ImportFailed, match=message):
        import_bytes(junit(f'<testcase classname="c" name="t" time="{written}"/>'))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "written",
    ["1_5", "1_000", "\uff11\uff15", "\u0661\u066b\u0665", "\u0661,\u0665", "0x10", "1,2_3", "1e", "1.5.5"],
    ids=[
        "underscore",
        "underscores",
        "fullwidth",
        "arabic-indic",
        "arabic-indic-comma",
        "hex",
        "comma-underscore",
        "bare-exponent",
        "two-points",
    ],
)
def test_it_refuses_a_time_that_is_not_plain_ascii_digits(written):
    """float() reads "1_5" as 15 and "\uff11\uff15" as 15: a silent x10, or digits no tool writes."""
    with pytest.raises(ImportFailed, match=rf"^testcase c::t: time {re.escape(repr(written))} is not a number$"):
        import_bytes(junit(f'<testcase classname="c" name="t" time="{written}"/>'))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("written", "seconds"), [("1.5e3", 1500.0), (" 1.5 ", 1.5), ("1e-400", 0.0), (".5", 0.5), ("+2", 2.0), ("3.", 3.0)]
)
def test_it_still_reads_every_plain_number_float_reads(written, seconds):
    run = import_bytes(junit(f'<testcase classname="c" name="t" time="{written}"/>'))
    assert run.results.get().duration_s == seconds


def test_a_pytest_json_duration_given_as_underscored_text_is_refused():
    report = pytest_json({"nodeid": "t.py::a", "outcome": "passed", "call": {"duration": "1_5"}})
    with pytest.raises(ImportFailed, match=r"^t\.py::a: time '1_5' is not a number$"):
        list(PARSERS["pytest-json"](io.BytesIO(report)))


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["TF-8", "shift_jis"])
def test_it_says_expat_cannot_read_the_encoding_a_declaration_names(encoding):
    message, _ = refused_in(f'<?xml version="1.0" encoding="{encoding}"?><testsuite name="s"/>'.encode())
    assert message.startswith("the XML declares an encoding expat cannot read (")
