"""pytest-json-report files: {"tests": [{"nodeid", "outcome", "setup"/"call"/"teardown": {...}}]}.

The file is someone else's JSON: every value read is checked for the shape the report
format gives it, so a list where an object belongs is refused with its place named, not a
server error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from runs.importers.cases import ByteStream, ImportedCase, ImportFailed, clip, duration

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
OUTCOMES = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
    "xpassed": "passed",
}


def _text(value: object) -> str:
    """A JSON value as text a database can store: NUL (PostgreSQL text cannot hold it) and
    lone surrogates (not UTF-8; JSON's \\ud800 escapes allow them) become U+FFFD."""
    return UNSTORABLE.sub("\ufffd", str(value))


def _longrepr(value: object) -> str:
    # A skip's longrepr is [path, line, reason]; a failure's is text.
    if isinstance(value, list) and value:
        return str(value[-1])
    return str(value)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {list: "a list", str: "text", int: "a number", float: "a number"}.get(type(value), "a value")


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


def parse_pytest_json(stream: ByteStream) -> Iterator[ImportedCase]:
    try:
        data = json.load(stream)
    except UnicodeDecodeError:
        raise ImportFailed("the file is not UTF-8 text") from None
    except ValueError as exc:
        raise ImportFailed(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ImportFailed("refused: the JSON nests lists or objects deeper than Python's reader allows") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise ImportFailed('not a pytest-json-report file: no "tests" list at the top level')
    collectors = data.get("collectors") or []
    if not isinstance(collectors, list):
        raise ImportFailed(f'"collectors" is {_kind(collectors)}, not a list')
    # A module that failed to import has no tests, only a failed collector: an error.
    for collector in collectors:
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
        raw_outcome = test.get("outcome")
        outcome = OUTCOMES.get(raw_outcome) if isinstance(raw_outcome, str) else None
        if outcome is None:
            raise ImportFailed(f"{nodeid}: unknown outcome {_text(raw_outcome)[:100]!r}")
        path, _, name = nodeid.rpartition("::")
        phases = [_object(test.get(phase), f"{nodeid}: {phase}") for phase in ("setup", "call", "teardown")]
        total = sum(duration(phase.get("duration"), nodeid) for phase in phases)
        yield ImportedCase(
            suite=path.split("::")[0],
            classname=path,
            name=name or nodeid,
            outcome=outcome,
            duration_s=total,
            message=_message(test, nodeid) if outcome != "passed" else "",
        )
