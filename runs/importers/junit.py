"""JUnit XML as real tools write it (pytest, jest-junit, go-junit-report/gotestsum, Maven
Surefire): root <testsuites> or <testsuite>, nested suites, failure/error/skipped, system-out.

Parsed as a stream by defusedxml's parser (DTDs, entities and external references refused)
into a target that keeps only what a case needs: no element tree is built, so memory stays
bounded and each case costs a few callbacks, whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from runs.importers.cases import ImportedCase, ImportFailed, clip, duration

ROOTS = ("testsuites", "testsuite")
ROOT_TAGS = [f"<{root}>" for root in ROOTS]
OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}
CHUNK = 64 * 1024


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
        self.text: list[str] | None = None  # pieces of that text, while it is being read

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        tag = _local(tag)
        self.depth += 1
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
            self.outcome, self.text = (tag, attrib), []

    def data(self, text: str) -> None:
        if self.text is not None:
            self.text.append(text)

    def end(self, tag: str) -> None:
        self._end_text()
        self.depth -= 1
        tag = _local(tag)
        if tag == "testsuite":
            self.suites.pop()
        elif tag == "testcase" and self.case is not None and self.depth == self.case_depth - 1:
            self.cases.append(self._case())
            self.case = None

    def _end_text(self) -> None:
        if self.text is not None:
            self.body, self.text = "".join(self.text).strip(), None

    def _case(self) -> ImportedCase:
        name = self.case.get("name") or ""
        classname = self.case.get("classname") or ""
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
                if self.body and self.body not in text:
                    text = f"{text}\n{self.body}" if text else self.body
                message, headline = clip(text or attrib.get("type") or kind), clip(headline)
        return ImportedCase(
            suite=next((s for s in reversed(self.suites) if s), ""),
            classname=classname,
            name=name,
            outcome=outcome,
            duration_s=duration(self.case.get("time"), f"testcase {classname + '::' if classname else ''}{name}"),
            message=message,
            headline=headline,
        )


def parse_junit(stream: BinaryIO) -> Iterator[ImportedCase]:
    target = JUnitTarget()
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    try:
        while chunk := stream.read(CHUNK):
            parser.feed(chunk)
            yield from target.cases
            target.cases.clear()
        parser.close()
        yield from target.cases
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
