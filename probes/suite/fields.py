"""Building blocks of the suite format's typed models, shared by the step kinds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from probes.matchers import MatcherError, compile_document_matcher, compile_matcher, compile_path
from probes.templates import has_templates

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
STATUS_CLASS = re.compile(r"^[1-5]xx$")


class Strict(BaseModel):
    """Unknown keys are errors: a typo (``expect_staus``) must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _matcher(value: Any) -> Any:
    try:
        compile_matcher(value)
    except MatcherError:
        if not has_templates(value):  # a templated operand is checked once it is known
            raise
    return value


def _document_matcher(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a mapping of JSONPath ($…) or text to a matcher")
    try:
        compile_document_matcher(value)
    except MatcherError:
        if not has_templates(value):
            raise
    return value


def _status(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or not (
            (isinstance(item, int) and 100 <= item <= 599) or (isinstance(item, str) and STATUS_CLASS.match(item))
        ):
            raise ValueError(f'{item!r} is not an HTTP status: give a number (200), a class ("2xx") or a list')
    return value


def _json_path(value: str) -> str:
    if not has_templates(value):
        compile_path(value)  # MatcherError: a ValueError, reported with the key's path
    return value


def _source(allowed: tuple[str, ...], prefixes: tuple[str, ...]) -> Any:
    """A ``save`` source: a JSONPath ($…), one of ``allowed``, or one of ``prefixes`` + a name."""

    def check(value: str) -> str:
        if value in allowed or any(value.startswith(p) and len(value) > len(p) for p in prefixes):
            return value
        if value.startswith("$"):
            return _json_path(value)
        ways = ", ".join([*(f"{p}NAME" for p in prefixes), *allowed])
        raise ValueError(f"{value!r} is not a source to save from: a JSONPath ($…), or {ways}")

    return AfterValidator(check)


Matcher = Annotated[Any, AfterValidator(_matcher)]
JsonPath = Annotated[str, Field(pattern=r"^\$"), AfterValidator(_json_path)]
HttpSource = Annotated[str, _source(("status", "body"), ("header.",))]
FrameSource = Annotated[str, _source(("text",), ())]
TokenSource = Annotated[str, _source((), ("header.",))]
DocumentMatcher = Annotated[dict[str, Any], AfterValidator(_document_matcher)]
Status = Annotated[int | str | list[int | str], AfterValidator(_status)]
VarName = Annotated[str, Field(pattern=IDENTIFIER)]
ConnectionName = Annotated[str, Field(pattern=IDENTIFIER)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
RESERVED_HEADERS = frozenset({"host", ":authority"})


def _headers(value: dict[str, str]) -> dict[str, str]:
    reserved = sorted(name for name in value if name.lower() in RESERVED_HEADERS)
    if reserved:
        raise ValueError(f"{', '.join(reserved)} is set from the URL (the allowlist checks the URL's host)")
    return value


Headers = Annotated[dict[str, str], AfterValidator(_headers)]


def status_matches(expected: int | str | list[int | str], status: int) -> bool:
    for item in expected if isinstance(expected, list) else [expected]:
        if isinstance(item, int) and item == status:
            return True
        if isinstance(item, str) and item[0] == str(status)[0]:
            return True
    return False


def status_text(expected: int | str | list[int | str]) -> str:
    items = expected if isinstance(expected, list) else [expected]
    return " or ".join(str(item) for item in items)


def refusals_only(expected: int | str | list[int | str] | None) -> bool:
    """True when the expected statuses are only 401 and 403: the step tests that the
    service refuses missing or bad credentials."""
    if expected is None:
        return False
    items = expected if isinstance(expected, list) else [expected]
    return bool(items) and all(item in (401, 403) for item in items)
