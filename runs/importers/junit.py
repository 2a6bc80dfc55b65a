"""JUnit XML as real tools write it (pytest, jest-junit, go-junit-report/gotestsum, Maven
Surefire): root <testsuites> or <testsuite>, nested suites, failure/error/skipped, system-out.

Parsed as a stream with defusedxml (DTDs, entities and external references refused), each
<testcase> dropped once read, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from runs.importers.cases import ImportedCase, ImportFailed, clip, duration

ROOTS = ("testsuites", "testsuite")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _outcome(case) -> tuple[str, str]:
    for child in case:
        kind = _local(child.tag)
        if kind in ("failure", "error"):
            text = child.get("message") or ""
            body = (child.text or "").strip()
            if body and body not in text:
                text = f"{text}\n{body}" if text else body
            return ("failed" if kind == "failure" else "error"), clip(text or child.get("type") or kind)
        if kind == "skipped":
            return "skipped", clip(child.get("message") or child.text or "skipped")
    return "passed", ""


def parse_junit(stream: BinaryIO) -> Iterator[ImportedCase]:
    suites: list[str] = []
    open_elements: list = []  # to detach each testcase from its parent once read
    root_seen = False
    try:
        for event, element in iterparse(stream, events=("start", "end"), forbid_dtd=True):
            tag = _local(element.tag)
            if event == "start":
                open_elements.append(element)
                if not root_seen:
                    root_seen = True
                    if tag not in ROOTS:
                        raise ImportFailed(
                            f"not a JUnit XML file: the root element is <{tag}>, not <testsuites> or <testsuite>"
                        )
                if tag == "testsuite":
                    suites.append(element.get("name") or "")
                continue
            open_elements.pop()
            if tag == "testsuite":
                suites.pop()
                element.clear()
            elif tag == "testcase":
                name = element.get("name") or ""
                classname = element.get("classname") or ""
                where = f"testcase {classname + '::' if classname else ''}{name}"
                if not name:
                    raise ImportFailed(f"a <testcase> in suite {suites[-1] if suites else '?'!r} has no name")
                outcome, message = _outcome(element)
                yield ImportedCase(
                    suite=next((s for s in reversed(suites) if s), ""),
                    classname=classname,
                    name=name,
                    outcome=outcome,
                    duration_s=duration(element.get("time"), where),
                    message=message,
                )
                element.clear()
                if open_elements:  # cleared elements still cost memory while attached
                    open_elements[-1].remove(element)
    except DefusedXmlException as exc:
        raise ImportFailed(
            f"refused: the XML declares a DTD, entities or external references ({type(exc).__name__}); "
            "JUnit files need none of them"
        ) from None
    except ParseError as exc:
        if not root_seen:
            raise ImportFailed("the file is empty or holds no XML element") from None
        line, column = exc.position
        raise ImportFailed(f"malformed XML at line {line}, column {column}: {exc}") from None
