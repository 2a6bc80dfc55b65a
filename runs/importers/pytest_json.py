"""pytest-json-report files: {"tests": [{"nodeid", "outcome", "setup"/"call"/"teardown": {...}}]}.

Parsed as a stream, as JUnit is: ijson's C backend (yajl) turns each chunk read into JSON
events, and only the few values a case needs (its node id, outcome, phase durations and
failure text) are built; everything else (environment, keywords, captured output, logs,
whatever a plugin adds) is skipped event by event, never built. Memory stays bounded
whatever the file holds: one chunk's events, one test's kept values, and the one token
being read, which must fit in MAX_TOKEN_BYTES; nesting is limited as JUnit's is.

The file is someone else's JSON: every value read is checked for the shape the report
format gives it, so a list where an object belongs is refused with its place named, not a
server error.
"""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from itertools import accumulate
from operator import itemgetter
from typing import Any, Union

import ijson

from runs.importers.cases import (
    MAX_DEPTH,
    MAX_TEXT,
    ByteStream,
    ImportedCase,
    ImportFailed,
    clip,
    duration,
    head_encoding,
)

CHUNK = 64 * 1024
# One string, number or run of spaces. Larger than JUnit's 1 MiB tag: a JSON string holds a
# test's whole captured output, which JUnit writes as text (streamed, so never one token).
# yajl holds a token whole and rescans it with every chunk fed, so reads grow while one is
# pending (see JsonEvents._feed) and a token at the limit costs milliseconds.
MAX_TOKEN_BYTES = 8 * 1024 * 1024
SKIP_BLOCK = 16  # events of a skipped value looked at first
SAMPLE_VALUES = 100  # kept of a list or object found where text belongs: enough to show it
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
OUTCOMES = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
    "xpassed": "passed",
}
NOT_A_REPORT = 'not a pytest-json-report file: no "tests" list at the top level'

Event = tuple[str, Any]
# What to build of an object: the keys kept, each with what to build of its value (None: the
# value itself, a container only sampled). Every other key is skipped.
Shape = dict[str, Union["Shape", None]]
PHASES = ("setup", "call", "teardown")
PHASE_SHAPE: Shape = {"duration": None, "longrepr": None, "crash": {"message": None}}
TEST_SHAPE: Shape = {"nodeid": None, "outcome": None, **{phase: PHASE_SHAPE for phase in PHASES}}
COLLECTOR_SHAPE: Shape = {"nodeid": None, "outcome": None, "longrepr": None}
DEPTH_CHANGE = {
    "start_map": 1,
    "start_array": 1,
    "end_map": -1,
    "end_array": -1,
    "map_key": 0,
    "string": 0,
    "number": 0,
    "boolean": 0,
    "null": 0,
}
OPENS = ("start_map", "start_array")
CLOSES = ("end_map", "end_array")

# yajl reads a \u escape of a lone surrogate as '?' (a high one) or fails on it (a low one),
# where Python's json reads it as the character (stored as U+FFFD, see _text). Such escapes
# are rewritten to \ufffd before yajl sees them. HELD_BACK bytes of each chunk wait for the
# next, so an escape, or a pair of them, is always seen whole.
SURROGATE_ESCAPE = re.compile(
    rb"(\\+)(u[dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(\\+)(u[dD][c-fC-F][0-9a-fA-F]{2})"
)
SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
REPLACEMENT_ESCAPE = b"ufffd"
HELD_BACK = len(rb"\ud83d\ude00")
BACKSLASH = ord("\\")


def _lone_surrogates_replaced(data: bytes, cut: int) -> tuple[bytes, int]:
    """``data`` with every escaped lone surrogate before ``cut`` made \\ufffd (an escape keeps
    its length), and where to cut it so that no pair of escapes is split."""
    fixed: bytearray | None = None
    if not SURROGATE_HINT.search(data):  # the common case, found in C
        return data, cut
    for match in SURROGATE_ESCAPE.finditer(data):
        if match.start() >= cut:
            break
        if match.group(1) is not None:  # a high surrogate, maybe followed by a low one
            escaped = len(match.group(1)) % 2 == 1  # an even run of backslashes is text
            lone = match.span(2) if escaped and match.group(3) is None else None
            if not escaped and match.group(3) is not None:
                lone = (match.start(3) + 1, match.end(3))  # a low one after "\\\\ud800": lone
        else:
            lone = match.span(5) if len(match.group(4)) % 2 == 1 else None
        if lone is not None:
            fixed = fixed if fixed is not None else bytearray(data)
            fixed[lone[0] : lone[1]] = REPLACEMENT_ESCAPE
        cut = max(cut, match.end())
    return (bytes(fixed) if fixed is not None else data), cut


def _too_deep() -> ImportFailed:
    return ImportFailed(f"refused: the JSON nests lists or objects deeper than the limit of {MAX_DEPTH}")


def _first_line(error: Exception) -> str:
    """yajl's message without the lines that draw where (they quote the file)."""
    text = error.args[0] if error.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().split("\n", 1)[0]


class JsonEvents:
    """The file's JSON as yajl's (event, value) pairs, a chunk at a time, within the limits:
    ``next`` gives one event, ``skip`` passes a value without building it."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.events: list[Event] = ijson.sendable_list()
        self.parser = ijson.basic_parse_coro(self.events)
        self.position = 0  # of the next event in self.events
        self.depth = 0  # lists and objects open
        self.read_bytes = 0
        self.unreported = 0  # bytes read since yajl last reported an event: the pending token
        self.chunk_size = CHUNK
        self.held = b""  # the end of the last chunk, fed with the next (HELD_BACK)
        self.decoder: codecs.IncrementalDecoder | None = None  # for UTF-16 and UTF-32 files
        self.started = self.ended = False

    def next(self) -> Event:
        while True:
            try:
                event = self.events[self.position]
                break
            except IndexError:
                self._refill()
        self.position += 1
        change = DEPTH_CHANGE[event[0]]
        if change:
            self.depth += change
            if self.depth > MAX_DEPTH:
                raise _too_deep()
        return event

    def skip(self, first: Event) -> None:
        """Read past the value ``first`` starts (a scalar is already whole). Every ignored
        event passes here, so the depths after each are summed up in C, over a block of
        events that doubles until the value ends (a short one costs little, a long one
        runs at yajl's pace)."""
        if first[0] not in OPENS:
            return
        end, block = self.depth - 1, SKIP_BLOCK
        while True:
            stop = self.position + block
            kinds = map(itemgetter(0), self.events[self.position : stop])
            depths = list(accumulate(map(DEPTH_CHANGE.__getitem__, kinds), initial=self.depth))
            if max(depths) > MAX_DEPTH:
                raise _too_deep()
            try:
                ends = depths.index(end, 1)
            except ValueError:  # the value goes on
                self.position, self.depth, block = min(stop, len(self.events)), depths[-1], block * 2
                if self.position == len(self.events):
                    self._refill()
                continue
            self.position, self.depth = self.position + ends, end
            return

    def kept(self, shape: Shape) -> dict[str, object]:
        """The object whose start_map was just read, with only the keys ``shape`` names (the
        loop every event of every test passes: scalars are taken here, not in ``value``)."""
        kept: dict[str, object] = {}
        next_event = self.next
        while (event := next_event())[0] == "map_key":
            item = next_event()
            if event[1] in shape:
                kept[event[1]] = self.value(item, shape[event[1]]) if item[0] in OPENS else item[1]
            elif item[0] in OPENS:
                self.skip(item)
        return kept

    def value(self, first: Event, shape: Shape | None) -> object:
        """The value ``first`` starts: an object as ``shape`` keeps it, a scalar as it is, a
        list or object in a place meant for a scalar sampled (see ``sample``)."""
        if first[0] == "start_map" and shape is not None:
            return self.kept(shape)
        if first[0] in OPENS:
            return self.sample(first, [SAMPLE_VALUES])
        return first[1]

    def sample(self, first: Event, room: list[int]) -> object:
        """The value ``first`` starts with its first SAMPLE_VALUES scalars and keys (``room``
        counts them down), each text cut to MAX_TEXT: what a message about it shows."""
        kind, scalar = first
        room[0] -= 1
        if kind not in OPENS:
            return scalar[:MAX_TEXT] if isinstance(scalar, str) else scalar
        items: list[object] = []
        members: dict[str, object] = {}
        while (event := self.next())[0] not in CLOSES:
            key = None
            if event[0] == "map_key":
                key, event = event[1][:MAX_TEXT], self.next()
            if room[0] <= 0:
                self.skip(event)
            elif key is None:
                items.append(self.sample(event, room))
            else:
                members[key] = self.sample(event, room)
        return members if kind == "start_map" else items

    def finish(self) -> None:
        """Read to the end of the file: nothing but spaces may follow the report."""
        while not self.ended:
            self._feed()

    def _refill(self) -> None:
        if self.ended:
            raise ImportFailed("malformed JSON: the file ends inside a value")
        self.events.clear()
        self.position = 0
        self._feed()

    def _feed(self) -> None:
        """Read a chunk and give it to yajl; refuse a token past MAX_TOKEN_BYTES. While no
        event comes, each read is as large as the token so far (yajl rescans a pending
        token with every chunk: fixed chunks would make a long one quadratic)."""
        chunk = self.stream.read(self.chunk_size)
        self.read_bytes += len(chunk)
        reported = len(self.events)
        data = self.held + self._utf8(chunk)
        final = not chunk
        cut = len(data) if final else max(0, len(data) - HELD_BACK)
        if cut and data[cut - 1] == BACKSLASH:  # a run of backslashes, odd or even, stays whole
            cut = len(data[:cut].rstrip(b"\\"))
        data, cut = _lone_surrogates_replaced(data, cut)
        self.held = data[cut:]
        try:
            if cut:  # an empty send would end the document
                self.parser.send(data[:cut])
            if final:
                self.ended = True
                self.parser.close()
        except ijson.JSONError as error:
            reason = _first_line(error)
            if "invalid bytes in UTF8 string" in reason:
                raise ImportFailed("the file is not UTF-8 text") from None
            raise ImportFailed(f"malformed JSON before byte {self.read_bytes:,}: {reason}") from None
        except UnicodeDecodeError:  # yajl passed it, Python's UTF-8 decoder did not (an encoded surrogate)
            raise ImportFailed("the file is not UTF-8 text") from None
        except SystemError as error:  # what yajl's callback gives for int() refusing a number's digits
            if not isinstance(error.__cause__, ValueError):
                raise
            raise ImportFailed(
                f"refused: a number of more than {sys.get_int_max_str_digits():,} digits "
                f"before byte {self.read_bytes:,}"
            ) from None
        if len(self.events) > reported:
            self.unreported, self.chunk_size = 0, CHUNK
            return
        self.unreported += len(chunk)
        if self.unreported > MAX_TOKEN_BYTES:
            raise ImportFailed(
                f"refused: a JSON string, number or run of spaces before byte {self.read_bytes:,} is longer "
                f"than the limit of {MAX_TOKEN_BYTES:,} bytes"
            )
        self.chunk_size = max(CHUNK, min(self.unreported, MAX_TOKEN_BYTES))

    def _utf8(self, chunk: bytes) -> bytes:
        """The chunk as UTF-8, which is all yajl reads: a UTF-8 byte-order mark is dropped, and
        a file in UTF-16 or UTF-32 (as its mark or its zero bytes say) is recoded."""
        if not self.started and chunk:
            self.started = True
            encoding = head_encoding(chunk)
            if encoding == "utf-8":
                return chunk.removeprefix(codecs.BOM_UTF8)
            self.decoder = codecs.getincrementaldecoder(encoding)()
            return self._recoded(chunk).removeprefix(codecs.BOM_UTF8)
        return self._recoded(chunk) if self.decoder is not None else chunk

    def _recoded(self, chunk: bytes) -> bytes:
        assert self.decoder is not None
        try:
            return self.decoder.decode(chunk, final=not chunk).encode()
        except UnicodeError:
            raise ImportFailed("the file is not valid UTF-16 or UTF-32 text") from None


def _text(value: object) -> str:
    """A JSON value as text a database can store: NUL (PostgreSQL text cannot hold it) and
    lone surrogates become U+FFFD."""
    return UNSTORABLE.sub("\ufffd", str(value))


def _longrepr(value: object) -> str:
    # A skip's longrepr is [path, line, reason]; a failure's is text.
    if isinstance(value, list) and value:
        return str(value[-1])
    return str(value)


def _float(value: object) -> object:
    """yajl gives a number with a fraction or exponent as a Decimal (exact, and 1e400 stays
    readable where it is ignored); a duration reads it as json would, a float."""
    return float(value) if isinstance(value, Decimal) else value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "text" if isinstance(value, str) else "a value"


def _object(value: object, where: str) -> dict:
    """A phase, crash or collector of the report: an object, or nothing (absent or null)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImportFailed(f"{where} is {_kind(value)}, not an object")
    return value


def _message(test: dict, nodeid: str) -> str:
    for phase in ("call", "setup", "teardown"):
        stage = _object(test.get(phase), f"{nodeid}: {phase}")
        crash = _object(stage.get("crash"), f"{nodeid}: {phase}.crash")
        if crash.get("message") or stage.get("longrepr"):
            return clip(_text(crash.get("message") or _longrepr(stage.get("longrepr"))))
    return ""


def _test_case(test: dict, index: int) -> ImportedCase:
    if not test.get("nodeid"):
        raise ImportFailed(f"tests[{index}] has no nodeid")
    nodeid = _text(test["nodeid"])
    raw_outcome = test.get("outcome")
    outcome = OUTCOMES.get(raw_outcome) if isinstance(raw_outcome, str) else None
    if outcome is None:
        raise ImportFailed(f"{nodeid}: unknown outcome {_text(raw_outcome)[:100]!r}")
    path, _, name = nodeid.rpartition("::")
    phases = [_object(test.get(phase), f"{nodeid}: {phase}") for phase in PHASES]
    total = sum(duration(_float(phase.get("duration")), nodeid) for phase in phases)
    return ImportedCase(
        suite=path.split("::")[0],
        classname=path,
        name=name or nodeid,
        outcome=outcome,
        duration_s=total,
        message=_message(test, nodeid) if outcome != "passed" else "",
    )


def _collection_error(collector: dict) -> ImportedCase | None:
    """A module that failed to import has no tests, only a failed collector: an error."""
    if collector.get("outcome") != "failed" or not collector.get("nodeid"):
        return None
    nodeid = _text(collector["nodeid"])
    return ImportedCase(
        suite=nodeid.split("::")[0],
        classname=nodeid,
        name="collection",
        outcome="error",
        duration_s=0.0,
        message=clip(_text(_longrepr(collector.get("longrepr"))) or "collection failed"),
    )


def _tests(events: JsonEvents) -> Iterator[ImportedCase]:
    index = 0
    while (event := events.next())[0] != "end_array":
        if event[0] != "start_map":
            events.skip(event)  # read whole first: a list too deep is refused as that
            raise ImportFailed(f"tests[{index}] has no nodeid")
        yield _test_case(events.kept(TEST_SHAPE), index)
        index += 1


def _collectors(events: JsonEvents, first: Event) -> Iterator[ImportedCase]:
    if first[0] != "start_array":
        collectors = events.value(first, None)
        if collectors:  # null, false, 0, "" or {} stand for none
            raise ImportFailed(f'"collectors" is {_kind(collectors)}, not a list')
        return
    while (event := events.next())[0] != "end_array":
        if event[0] != "start_map":
            events.skip(event)
        elif case := _collection_error(events.kept(COLLECTOR_SHAPE)):
            yield case


def parse_pytest_json(stream: ByteStream) -> Iterator[ImportedCase]:
    events = JsonEvents(stream)
    if events.next()[0] != "start_map":
        raise ImportFailed(NOT_A_REPORT)
    found_tests = False
    while (event := events.next())[0] == "map_key":
        value = events.next()
        if event[1] == "tests":
            if value[0] != "start_array":
                raise ImportFailed(NOT_A_REPORT)
            found_tests = True
            yield from _tests(events)
        elif event[1] == "collectors":
            yield from _collectors(events, value)
        else:
            events.skip(value)
    events.finish()
    if not found_tests:
        raise ImportFailed(NOT_A_REPORT)
