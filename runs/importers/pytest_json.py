"""pytest-json-report files: {"tests": [{"nodeid", "outcome", "setup"/"call"/"teardown": {...}}]}."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import BinaryIO

from runs.importers.cases import ImportedCase, ImportFailed, clip, duration

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
OUTCOMES = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
    "xpassed": "passed",
}


def _text(value) -> str:
    """A JSON value as text a database can store: NUL (PostgreSQL text cannot hold it) and
    lone surrogates (not UTF-8; JSON's \\ud800 escapes allow them) become U+FFFD."""
    return UNSTORABLE.sub("\ufffd", str(value))


def _longrepr(value) -> str:
    # A skip's longrepr is [path, line, reason]; a failure's is text.
    if isinstance(value, list) and value:
        return str(value[-1])
    return str(value)


def _message(test: dict) -> str:
    for phase in ("call", "setup", "teardown"):
        stage = test.get(phase) or {}
        crash = stage.get("crash") or {}
        if crash.get("message") or stage.get("longrepr"):
            return clip(_text(crash.get("message") or _longrepr(stage.get("longrepr"))))
    return ""


def parse_pytest_json(stream: BinaryIO) -> Iterator[ImportedCase]:
    try:
        data = json.load(stream)
    except UnicodeDecodeError:
        raise ImportFailed("the file is not UTF-8 text") from None
    except ValueError as exc:
        raise ImportFailed(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise ImportFailed('not a pytest-json-report file: no "tests" list at the top level')
    # A module that failed to import has no tests, only a failed collector: an error.
    for collector in data.get("collectors") or []:
        if isinstance(collector, dict) and collector.get("outcome") == "failed" and collector.get("nodeid"):
            nodeid = _text(collector["nodeid"])
            yield ImportedCase(
                suite=nodeid.split("::")[0],
                classname=nodeid,
                name="collection",
                outcome="error",
                duration_s=0.0,
                message=clip(_text(_longrepr(collector.get("longrepr"))) or "collection failed"),
            )
    for index, test in enumerate(data["tests"]):
        if not isinstance(test, dict) or not test.get("nodeid"):
            raise ImportFailed(f"tests[{index}] has no nodeid")
        nodeid = _text(test["nodeid"])
        outcome = OUTCOMES.get(test.get("outcome"))
        if outcome is None:
            raise ImportFailed(f"{nodeid}: unknown outcome {test.get('outcome')!r}")
        path, _, name = nodeid.rpartition("::")
        total = sum(duration((test.get(p) or {}).get("duration"), nodeid) for p in ("setup", "call", "teardown"))
        yield ImportedCase(
            suite=path.split("::")[0],
            classname=path,
            name=name or nodeid,
            outcome=outcome,
            duration_s=total,
            message=_message(test) if outcome != "passed" else "",
        )
