"""JUnit XML as real tools write it (pytest, jest-junit, go-junit-report/gotestsum, Maven
Surefire): root <testsuites> or <testsuite>, nested suites, failure/error/skipped, system-out.

Parsed as a stream by defusedxml's parser (DTDs, entities and external references refused)
into a target that keeps only what a case needs: no element tree is built, so memory stays
bounded and each case costs a few callbacks, whatever the file's size.

Expat holds a tag (with all its attributes), a comment or a processing instruction whole
before it reports it, and scans it again with every chunk fed meanwhile: a 50 MiB attribute
costs time quadratic in its size. So the bytes fed since the last reported event are counted
after every chunk, and the file is refused once they pass MAX_TOKEN_BYTES; text between
tags is reported as it comes and only its first MAX_TEXT characters are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import XMLParserType

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

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

ROOTS = ("testsuites", "testsuite")
ROOT_TAGS = [f"<{root}>" for root in ROOTS]
OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}
CHUNK = 64 * 1024
MAX_TOKEN_BYTES = 1024 * 1024  # one tag with its attributes, a comment, a processing instruction
MAX_ATTRIBUTES = 64  # per element; real tools write fewer than ten


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class JUnitTarget:
    """Parser target: turns start/end/data events into ImportedCase objects in ``cases``."""

    def __init__(self) -> None:
        self.cases: list[ImportedCase] = []
        self.root_seen = False
        self.depth = 0
        self.suites: list[str] = []
        self.case: dict[str, str] | None = None  # attributes of the open <testcase>
        self.case_depth = 0
        self.outcome: tuple[str, dict[str, str]] | None = None  # its first failure/error/skipped
        self.body = ""  # that element's text before any child element (ElementTree's .text)
        self.body_dropped = 0  # characters of it not kept: only the first MAX_TEXT are
        self.text: list[str] | None = None  # pieces of that text, while it is being read
        self.text_length = 0

    def _refuse_the_shape(self, tag: str, attrib: dict[str, str]) -> None:
        if len(attrib) > MAX_ATTRIBUTES:
            raise ImportFailed(f"refused: a <{tag}> has {len(attrib):,} attributes, over the limit of {MAX_ATTRIBUTES}")
        if self.depth > MAX_DEPTH:
            raise ImportFailed(f"refused: elements nested more than {MAX_DEPTH} deep")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        tag = _local(tag)
        self.depth += 1
        self._refuse_the_shape(tag, attrib)
        self._end_text()
        if not self.root_seen:
            self.root_seen = True
            if tag not in ROOTS:
                raise ImportFailed(f"not a JUnit XML file: the root element is <{tag}>, not {' or '.join(ROOT_TAGS)}")
        if tag == "testsuite":
            self.suites.append(attrib.get("name") or "")
        elif tag == "testcase":
            self.case, self.case_depth, self.outcome, self.body = attrib, self.depth, None, ""
        elif tag in OUTCOMES and self.case is not None and self.outcome is None and self.depth == self.case_depth + 1:
            self.outcome, self.text, self.text_length = (tag, attrib), [], 0

    def data(self, text: str) -> None:
        if self.text is not None:
            if self.text_length < MAX_TEXT:
                self.text.append(text)
            self.text_length += len(text)

    def end(self, tag: str) -> None:
        self._end_text()
        self.depth -= 1
        tag = _local(tag)
        if tag == "testsuite":
            self.suites.pop()
        elif tag == "testcase" and self.case is not None and self.depth == self.case_depth - 1:
            self.cases.append(self._case(self.case))
            self.case = None

    def _end_text(self) -> None:
        if self.text is not None:
            kept = "".join(self.text)
            self.body, self.body_dropped, self.text = kept.strip(), self.text_length - len(kept), None

    def _case(self, case: dict[str, str]) -> ImportedCase:
        name = case.get("name") or ""
        classname = case.get("classname") or ""
        if not name:
            raise ImportFailed(f"a <testcase> in suite {self.suites[-1] if self.suites else '?'!r} has no name")
        outcome, message, headline = "passed", "", ""
        if self.outcome:
            kind, attrib = self.outcome
            outcome = OUTCOMES[kind]
            if kind == "skipped":
                message = clip(attrib.get("message") or self.body or "skipped")
            else:
                headline = text = attrib.get("message") or ""
                dropped = 0
                if self.body and self.body not in text:
                    text, dropped = (f"{text}\n{self.body}" if text else self.body), self.body_dropped
                message, headline = clip(text or attrib.get("type") or kind, dropped=dropped), clip(headline)
        return ImportedCase(
            suite=next((s for s in reversed(self.suites) if s), ""),
            classname=classname,
            name=name,
            outcome=outcome,
            duration_s=duration(case.get("time"), f"testcase {classname + '::' if classname else ''}{name}"),
            message=message,
            headline=headline,
        )


def _refuse_a_long_token(expat: XMLParserType, fed: int) -> None:
    """Refuse the file when expat holds more than MAX_TOKEN_BYTES it has not reported: one tag,
    comment or instruction that long (text is reported as it comes, so it never counts)."""
    if fed - expat.CurrentByteIndex > MAX_TOKEN_BYTES:
        raise ImportFailed(
            f"refused: a tag, comment or processing instruction after line {expat.CurrentLineNumber} is longer "
            f"than the limit of {MAX_TOKEN_BYTES:,} bytes (a tag's attributes included)"
        )


def parse_junit(stream: ByteStream) -> Iterator[ImportedCase]:
    target = JUnitTarget()
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    fed = 0
    try:
        while chunk := stream.read(CHUNK):
            if not fed and head_encoding(chunk).startswith("utf-32"):
                raise ImportFailed("JUnit XML in UTF-32 cannot be read: save it as UTF-8 or UTF-16")
            parser.feed(chunk)
            fed += len(chunk)
            _refuse_a_long_token(parser.parser, fed)
            yield from target.cases
            target.cases.clear()
        parser.close()
        yield from target.cases
    except ImportFailed:
        raise
    except DefusedXmlException as exc:
        raise ImportFailed(
            f"refused: the XML declares a DTD, entities or external references ({type(exc).__name__}); "
            "JUnit files need none of them"
        ) from None
    except ParseError as exc:
        if not target.root_seen:
            raise ImportFailed("the file is empty or holds no XML element") from None
        line, column = exc.position
        raise ImportFailed(f"malformed XML at line {line}, column {column}: {exc}") from None
    except (LookupError, ValueError) as exc:  # what pyexpat raises for an encoding it cannot read
        raise ImportFailed(f"the XML declares an encoding expat cannot read ({exc}): save it as UTF-8") from None
