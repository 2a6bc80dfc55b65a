"""Matchers: what a value in a response or a frame must be, compiled once when a suite loads.

A literal is equality (a mapping literal matches a subset, recursively; a list literal
matches item by item). A mapping whose keys are all operators is an operator matcher:
``eq ne lt le gt ge`` · ``in`` · ``contains`` · ``matches`` · ``exists`` · ``type`` ·
``length`` · ``not``; several operators must all hold. (``{type: x}`` is an operator only
when ``x`` is a JSON type name, so ``{type: subscribed}`` stays a literal; ``{eq: {…}}``
forces a literal.)

Paths are JSONPath (RFC 9535, python-jsonpath in strict mode). A singular query (``$.a.b``,
``$[0]``) gives one value; any other query gives the list of every value it selects.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonpath
import regex
from jsonpath.exceptions import JSONPathError
from jsonpath.function_extensions import Match, Search

REGEX_TIMEOUT_S = 0.1  # per value: a backtracking pattern fails, it never stalls the probes


class _TimedMatch(Match):
    """RFC 9535's match(), with a time limit (no match when the pattern runs too long)."""

    def __call__(self, value: object, pattern: object) -> bool:
        try:
            return super().__call__(value, pattern)
        except TimeoutError:
            return False


class _TimedSearch(Search):
    def __call__(self, value: object, pattern: object) -> bool:
        try:
            return super().__call__(value, pattern)
        except TimeoutError:
            return False


def _jsonpath_environment() -> jsonpath.JSONPathEnvironment:
    environment = jsonpath.JSONPathEnvironment(strict=True)
    environment.function_extensions["match"] = _TimedMatch()
    environment.function_extensions["search"] = _TimedSearch()
    return environment


JSONPATH = _jsonpath_environment()
TYPE_NAMES = ("string", "number", "integer", "boolean", "object", "array", "null")
COMPARISONS = ("lt", "le", "gt", "ge")
OPERATORS = frozenset({"eq", "ne", *COMPARISONS, "in", "contains", "matches", "exists", "type", "length", "not"})
MAX_REGEX_INPUT = 65536  # regexes run on bounded text: a huge body cannot make one slow
MISSING = object()


class MatcherError(ValueError):
    """A matcher that cannot be compiled (found at load)."""


PLAIN = re.compile(r"[A-Za-z0-9_$./@*-][A-Za-z0-9_$./@* -]*")
# Plain text a YAML reader would take for a number, a boolean or null: written quoted.
NOT_TEXT = re.compile(
    r"[-+]?(\d[\d_]*)?\.?\d[\d_]*([eE][-+]?\d+)?|0[xob][0-9a-fA-F_]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
    r"|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|yes|no|on|off|Yes|No|On|Off|YES|NO|ON|OFF"
)


def flow(value: Any) -> str:
    """``value`` written as in a suite file (YAML flow style): ``{$.type: started}``."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, str):
        plain = PLAIN.fullmatch(value) and value.strip() == value and not NOT_TEXT.fullmatch(value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def short(value: Any, limit: int = 60) -> str:
    """A value as a suite author would write it, cut to ``limit`` characters (marked "…",
    so the redactor finds a secret cut short)."""
    text = value if isinstance(value, str) else flow(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same(actual: Any, expected: Any) -> bool:
    """Equality where true is not 1 and 1.0 is 1."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    return actual == expected


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_operator_mapping(spec: Any) -> bool:
    if not isinstance(spec, Mapping) or not spec or not set(spec) <= OPERATORS:
        return False
    return "type" not in spec or spec["type"] in TYPE_NAMES


class Matcher:
    """``check(value)`` returns None when ``value`` matches, else what was wrong."""

    def check(self, value: Any, where: str = "") -> str | None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Literal(Matcher):
    expected: Any

    def check(self, value: Any, where: str = "") -> str | None:
        return _literal_mismatch(value, self.expected, where)

    def describe(self) -> str:
        return short(self.expected)


@dataclass(frozen=True)
class Subset(Matcher):
    """A mapping literal with a matcher for some of its values: ``{price: {ge: 0}}``."""

    spec: Mapping[str, Any]
    parts: tuple[tuple[str, Matcher], ...]

    def check(self, value: Any, where: str = "") -> str | None:
        if value is MISSING:
            return f"{where or 'value'}: missing, expected {self.describe()}"
        if not isinstance(value, Mapping):
            return f"{where or 'value'}: expected an object, got {short(value)}"
        for key, matcher in self.parts:
            problem = matcher.check(value.get(key, MISSING), f"{where}.{key}" if where else str(key))
            if problem:
                return problem
        return None

    def describe(self) -> str:
        return flow(dict(self.spec))


def _nested_operators(spec: Any) -> bool:
    if isinstance(spec, Mapping):
        return any(is_operator_mapping(v) or _nested_operators(v) for v in spec.values())
    return False


def _literal_mismatch(actual: Any, expected: Any, where: str) -> str | None:
    if actual is MISSING:
        return f"{where or 'value'}: missing, expected {short(expected)}"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{where or 'value'}: expected an object, got {short(actual)}"
        for key, item in expected.items():
            problem = _literal_mismatch(actual.get(key, MISSING), item, f"{where}.{key}" if where else str(key))
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where or 'value'}: expected {short(expected)}, got {short(actual)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            problem = _literal_mismatch(a, e, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if not _same(actual, expected):
        return f"{where or 'value'}: expected {short(expected)}, got {short(actual)}"
    return None


@dataclass(frozen=True)
class Operators(Matcher):
    spec: Mapping[str, Any]
    parts: tuple[tuple[str, Any], ...]  # (operator, compiled operand)

    def describe(self) -> str:
        return flow(dict(self.spec))

    def check(self, value: Any, where: str = "") -> str | None:
        label = where or "value"
        for op, operand in self.parts:
            problem = _operator_mismatch(op, operand, value, label)
            if problem:
                return problem
        return None


def _operator_mismatch(op: str, operand: Any, value: Any, label: str) -> str | None:
    if op == "exists":
        present = value is not MISSING
        return None if present is operand else f"{label}: expected {'present' if operand else 'absent'}"
    if value is MISSING:
        return f"{label}: missing, expected {short({op: operand})}"
    if op == "not":
        return None if operand.check(value) else f"{label}: expected not {operand.describe()}, got {short(value)}"
    if op == "length":
        if not isinstance(value, str | list | Mapping):
            return f"{label}: expected something with a length, got {short(value)}"
        problem = operand.check(len(value))
        return f"{label}: length {len(value)}, expected {operand.describe()}" if problem else None
    if op == "eq":
        return _literal_mismatch(value, operand, label)
    if op == "ne":
        return f"{label}: expected anything but {short(operand)}" if not _literal_mismatch(value, operand, "") else None
    if op in COMPARISONS:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"{label}: expected a number {op} {operand}, got {short(value)}"
        ok = {"lt": value < operand, "le": value <= operand, "gt": value > operand, "ge": value >= operand}[op]
        return None if ok else f"{label}: expected {op} {operand:g}, got {value:g}"
    if op == "in":
        if any(not _literal_mismatch(value, option, "") for option in operand):
            return None
        return f"{label}: expected one of {short(operand)}, got {short(value)}"
    if op == "contains":
        if isinstance(value, str):
            ok = isinstance(operand, str) and operand in value
        elif isinstance(value, list):
            ok = any(not _literal_mismatch(item, operand, "") for item in value)
        else:
            ok = False
        return None if ok else f"{label}: expected to contain {short(operand)}, got {short(value)}"
    if op == "matches":
        text = value if isinstance(value, str) else _text_of(value)
        try:
            found = operand.search(text[:MAX_REGEX_INPUT], timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            return (
                f"{label}: /{operand.pattern}/ ran past {REGEX_TIMEOUT_S:g} s on this value (backtracking); simplify it"
            )
        return None if found else f"{label}: expected to match /{operand.pattern}/, got {short(value)}"
    if op == "type":
        actual = _type_of(value)
        ok = actual == operand or (operand == "number" and actual == "integer")
        return None if ok else f"{label}: expected type {operand}, got {actual} {short(value)}"
    raise AssertionError(op)


def _text_of(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def compile_matcher(spec: Any) -> Matcher:
    """A Matcher from its suite-file form; MatcherError names what is wrong."""
    if not is_operator_mapping(spec):
        if _nested_operators(spec):
            return Subset(dict(spec), tuple((str(k), compile_matcher(v)) for k, v in spec.items()))
        return Literal(spec)
    parts = []
    for op, operand in spec.items():
        if op == "exists":
            if not isinstance(operand, bool):
                raise MatcherError("exists: takes true or false")
        elif op in ("not", "length"):
            operand = compile_matcher(operand)
        elif op in COMPARISONS:
            if not isinstance(operand, int | float) or isinstance(operand, bool):
                raise MatcherError(f"{op}: takes a number")
        elif op == "in":
            if not isinstance(operand, list):
                raise MatcherError("in: takes a list")
        elif op == "matches":
            if not isinstance(operand, str):
                raise MatcherError("matches: takes a regular expression")
            try:
                operand = regex.compile(operand)
            except regex.error as exc:
                raise MatcherError(f"matches: not a valid regular expression ({exc})") from None
        parts.append((op, operand))
    return Operators(dict(spec), tuple(parts))


@dataclass(frozen=True)
class Path:
    """A compiled JSONPath."""

    text: str
    query: Any
    singular: bool

    def get(self, document: Any) -> Any:
        """The value (singular query), the list of values (any other), or MISSING when the
        path selects nothing."""
        values = self.query.findall(document)
        if not values:
            return MISSING
        return values[0] if self.singular else values

    @property
    def expects(self) -> type | None:
        """The container the query's first segment needs at the root (dict or list)."""
        rest = self.text[1:].lstrip()
        if rest.startswith(("[0", "[1", "[2", "[3", "[4", "[5", "[6", "[7", "[8", "[9", "[-")):
            return list
        if rest.startswith((".", "['", '["')) and not rest.startswith(".."):
            return dict
        return None


@functools.lru_cache(maxsize=4096)
def compile_path(text: str) -> Path:
    """A compiled JSONPath; compiled once per process, as steps of every run use the same."""
    try:
        query = JSONPATH.compile(text)
    except JSONPathError as exc:
        first_line = str(exc).splitlines()[0]
        raise MatcherError(f"{text!r} is not a JSONPath (RFC 9535): {first_line}") from None
    singular = isinstance(query, jsonpath.JSONPath) and query.singular_query()  # a | union is never singular
    return Path(text, query, bool(singular))


@dataclass(frozen=True)
class DocumentMatcher:
    """A mapping of JSONPath → matcher (and ``text`` → matcher on the raw text), as in
    ``expect.json``, ``where``, a sequence item or a ``forbid`` entry."""

    spec: Mapping[str, Any]
    paths: tuple[tuple[Path, Matcher], ...]
    text: Matcher | None

    def describe(self) -> str:
        return flow(dict(self.spec))

    @property
    def uses_json(self) -> bool:
        return bool(self.paths)

    @property
    def expects(self) -> type | None:
        kinds = {p.expects for p, _ in self.paths} - {None}
        return kinds.pop() if len(kinds) == 1 else None

    def check(self, document: Any, raw_text: str | None = None) -> str | None:
        """None when every entry matches ``document`` (parsed JSON, or MISSING when the
        text was not JSON) and ``raw_text``; else the first mismatch."""
        if self.text is not None:
            problem = self.text.check(raw_text if raw_text is not None else MISSING, "text")
            if problem:
                return problem
        for path, matcher in self.paths:
            value = MISSING if document is MISSING else path.get(document)
            problem = matcher.check(value, path.text)
            if problem:
                return problem
        return None


def compile_document_matcher(spec: Mapping[str, Any]) -> DocumentMatcher:
    if not isinstance(spec, Mapping) or not spec:
        raise MatcherError("expected a mapping of JSONPath ($…) or text to a matcher")
    paths = []
    text = None
    for key, value in spec.items():
        if key == "text":
            text = compile_matcher(value)
        elif isinstance(key, str) and key.startswith("$"):
            paths.append((compile_path(key), compile_matcher(value)))
        else:
            raise MatcherError(f"key {key!r} is neither a JSONPath ($…) nor 'text'")
    return DocumentMatcher(dict(spec), tuple(paths), text)


def parse_json(text: str | bytes) -> Any:
    """Parsed JSON, or MISSING when the text is not JSON (or nests deeper than Python can
    follow: a peer's input, never a probe error)."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return MISSING
