"""pytest-json-report files are read as a stream (issue 14, F1): whatever a file holds where
the importer does not look (30 million empty objects, 50 million zeros, a million keys) or how
many tests it has, the parser holds one chunk's events and one test at a time; a token past
the limit is refused once read, not after the whole file; and what json.load read the same
way (lone surrogates, UTF-16, a BOM, huge numbers) still reads the same, at any chunk edge.

Memory is Python's own, traced by tracemalloc in the test's process: the peak while a file
of size N is parsed, against one of size 3 N. Read whole, the larger one costs three times
the smaller one (tens of MB); streamed, both cost the same few MB."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
from collections.abc import Callable

import pytest

from runs.importers.cases import MAX_DEPTH, ImportedCase, ImportFailed
from runs.importers.pytest_json import CHUNK, MAX_TOKEN_BYTES, parse_pytest_json
from runs.importers.service import import_results
from runs.models import Run

MB = 1_000_000
ONE_TEST = b'{"tests": [{"nodeid": "t.py::a", "outcome": "passed"}], '


def empty_objects(n: int) -> bytes:
    return ONE_TEST + b'"environment": {"x": [' + b"{}," * n + b"{}]}}"


def zeros(n: int) -> bytes:
    return ONE_TEST + b'"x": [' + b"0," * n + b"0]}"


def keys(n: int) -> bytes:
    return ONE_TEST + b'"x": {' + b",".join(b'"k%d": 0' % i for i in range(n)) + b"}}"


TEST = (
    '{"nodeid": "tests/test_mod.py::test_%d", "outcome": "failed", "keywords": ["test_%d", "tests"], '
    '"setup": {"duration": 0.0001, "outcome": "passed"}, '
    '"call": {"duration": 0.001, "outcome": "failed", "crash": {"message": "assert 1 == 2"}, '
    '"longrepr": "def test():\\n>       assert 1 == 2\\nE       assert 1 == 2", "stdout": "%s"}, '
    '"teardown": {"duration": 0.0001, "outcome": "passed"}}'
)


def many_tests(n: int) -> bytes:
    return ('{"tests": [' + ",".join(TEST % (i, i, "o" * 200) for i in range(n)) + "]}").encode()


def parsing_peak(data: bytes) -> tuple[int, int]:
    """Cases parsed (none kept) and the peak of Python memory while parsing ``data``."""
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        parsed = sum(1 for _ in parse_pytest_json(stream))
        return parsed, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("shape", "n", "cases"),
    [
        pytest.param(empty_objects, 100_000, lambda n: 1, id="empty-objects-under-an-ignored-key"),
        pytest.param(zeros, 300_000, lambda n: 1, id="zeros-under-an-ignored-key"),
        pytest.param(keys, 100_000, lambda n: 1, id="keys-of-an-ignored-object"),
        pytest.param(many_tests, 3_000, lambda n: n, id="real-tests"),
    ],
)
def test_parsing_holds_the_same_few_mb_whatever_the_size_of_the_file(
    shape: Callable[[int], bytes], n: int, cases: Callable[[int], int]
) -> None:
    parsed, small_peak = parsing_peak(shape(n))
    parsed_3n, large_peak = parsing_peak(shape(3 * n))
    assert (parsed, parsed_3n) == (cases(n), cases(3 * n))
    assert large_peak < 6 * MB  # json.load: 22-35 MB for the files of 3 N, and three times that for 9 N
    assert large_peak - small_peak < MB // 2  # nothing grows with the file


def test_the_bound_above_is_one_that_reading_the_file_whole_would_break() -> None:
    """The files of the test above, read whole as before (json.load), pass its bound."""
    for data in (empty_objects(300_000), keys(300_000), many_tests(9_000)):
        tracemalloc.start()
        try:
            json.loads(data)
            assert tracemalloc.get_traced_memory()[1] > 15 * MB
        finally:
            tracemalloc.stop()


class CountedReads(io.BytesIO):
    """A file that counts its reads."""

    reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        return super().read(size)


def test_a_token_past_the_limit_is_refused_after_reading_little_more_than_the_limit() -> None:
    stream = CountedReads(ONE_TEST + b'"captured": "' + b"x" * (5 * MAX_TOKEN_BYTES) + b'"}')
    with pytest.raises(ImportFailed) as refused:
        list(parse_pytest_json(stream))
    assert str(refused.value) == (
        f"refused: a JSON string, number or run of spaces before byte {stream.tell():,} is longer "
        f"than the limit of {MAX_TOKEN_BYTES:,} bytes"
    )
    assert stream.tell() <= 2 * MAX_TOKEN_BYTES + CHUNK  # of a file of 5 times the limit


def test_a_long_string_within_the_limit_is_read_in_few_reads_and_kept_cut() -> None:
    """yajl rescans a pending token with each chunk fed: reads grow with the token, so one of
    8 MiB takes about ten reads, not 128 (each rescanning all of it so far)."""
    trace = "E" * (MAX_TOKEN_BYTES - 1000)
    stream = CountedReads(
        json.dumps({"tests": [{"nodeid": "t.py::a", "outcome": "failed", "call": {"longrepr": trace}}]}).encode()
    )
    (case,) = parse_pytest_json(stream)
    assert case.message.endswith(f"… [truncated: {len(trace)} characters in all]")
    assert stream.reads < 20


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            ONE_TEST + b'"x": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}",
            None,
            id="nested-to-the-limit",
        ),
        pytest.param(
            ONE_TEST + b'"x": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
            f"refused: the JSON nests lists or objects deeper than the limit of {MAX_DEPTH}",
            id="past-the-limit-in-an-ignored-key",
        ),
        pytest.param(
            b'{"tests": [{"nodeid": "t.py::a", "outcome": "failed", "call": {"duration": ' + b"1" * 5000 + b"}}]}",
            "refused: a number of more than 4,300 digits before byte {size}",
            id="int-of-5000-digits",
        ),
        pytest.param(
            ONE_TEST[:-2] + b"} []", "malformed JSON before byte {size}: parse error: trailing garbage", id="trailing"
        ),
        pytest.param(
            b'{"tests": [{"nodeid": "caf\xe9", "outcome": "passed"}]}', "the file is not UTF-8 text", id="latin-1"
        ),
        pytest.param(
            b'{"tests": [{"nodeid": "\xed\xa0\x80", "outcome": "passed"}]}',
            "the file is not UTF-8 text",
            id="encoded-surrogate",
        ),
    ],
)
def test_limits_and_malformed_json_are_refused_with_their_reason(data: bytes, message: str | None) -> None:
    if message is None:
        assert len(list(parse_pytest_json(io.BytesIO(data)))) == 1
        return
    with pytest.raises(ImportFailed) as refused:
        list(parse_pytest_json(io.BytesIO(data)))
    assert str(refused.value) == message.format(size=f"{len(data):,}")  # a small file is read in one go


def names(data: bytes) -> list[str]:
    return [case.name for case in parse_pytest_json(io.BytesIO(data))]


ESCAPES = [
    (r"\ud83d\ude00", "😀"),  # a pair: one character
    (r"\ud800", "\ufffd"),  # lone high (yajl alone reads it as '?')
    (r"\udc00", "\ufffd"),  # lone low (yajl alone fails on it)
    (r"\\ud800", "\\ud800"),  # an escaped backslash, then text
    (r"\\\ud800", "\\\ufffd"),
    (r"\ud800\\udc00", "\ufffd\\udc00"),
    (r"\\ud800\udc00", "\\ud800\ufffd"),
]


@pytest.mark.parametrize(("escape", "read"), ESCAPES)
def test_surrogate_escapes_read_as_json_reads_them_at_every_chunk_edge(escape: str, read: str) -> None:
    assert re.sub("[\ud800-\udfff]", "\ufffd", json.loads(f'"{escape}"')) == read  # as json.load read it
    for offset in range(CHUNK - 16, CHUNK + 2):  # where the escape starts
        head = '{"tests": [{"outcome": "passed", "padding": "'
        padding = "p" * (offset - len(head) - len('", "nodeid": "'))
        data = (f'{head}{padding}", "nodeid": "{escape}z"}}]}}').encode()
        assert data.index(escape.encode()) == offset
        assert names(data) == [read + "z"], offset


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_a_report_with_a_byte_order_mark_or_in_a_wide_encoding_is_read(encoding: str) -> None:
    report = json.dumps({"tests": [{"nodeid": "t.py::café", "outcome": "passed"}] * 5000}, ensure_ascii=False)
    assert names(report.encode(encoding)) == ["café"] * 5000


@pytest.mark.django_db
def test_an_import_with_a_huge_ignored_section_stores_its_tests_and_nothing_else() -> None:
    run = import_results(io.BytesIO(empty_objects(200_000)), suite_name="ci", environment_name="ci")
    assert (run.total, run.passed) == (1, 1)
    assert Run.objects.get().results.get().test_case.node_id == "t.py::a"


def test_what_is_kept_of_a_test_is_what_json_load_read() -> None:
    """The stream keeps the values a case needs, read as json.load read them."""
    report = {
        "tests": [
            {
                "nodeid": "t.py::test_skip",
                "outcome": "skipped",
                "setup": {"duration": 1.5e-05, "longrepr": ["t.py", 3, "Skipped: no network"]},
                "metadata": {"deep": [[[{"x": 1}]]]},
            },
            {"nodeid": "t.py::test_err", "outcome": "error", "setup": {"crash": {"message": "E  boom"}}},
        ],
        "collectors": [{"nodeid": "m.py", "outcome": "failed", "longrepr": "ImportError: x"}, 5, "s"],
    }
    assert list(parse_pytest_json(io.BytesIO(json.dumps(report).encode()))) == [
        ImportedCase("t.py", "t.py", "test_skip", "skipped", 1.5e-05, message="Skipped: no network"),
        ImportedCase("t.py", "t.py", "test_err", "error", 0.0, message="E  boom"),
        ImportedCase("m.py", "m.py", "collection", "error", 0.0, message="ImportError: x"),
    ]
