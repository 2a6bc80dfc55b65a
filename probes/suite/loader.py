"""Read a suite file: YAML with line numbers, validation against the typed models and the
cross-checks, every problem reported as ``file line N: key.path: what is wrong``."""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from probes.gcpause import cyclic_gc_paused
from probes.matchers import short
from probes.steps import KINDS
from probes.suite.consistency import Problem, suite_problems
from probes.suite.model import Suite
from probes.templates import NAME as TEMPLATE_NAME

MAX_SUITE_BYTES = 2 * 1024 * 1024
MAX_SCHEMA_BYTES = 1024 * 1024
MAX_VALUES = 500_000  # after YAML aliases are expanded: a "billion laughs" file stops here
DEFAULT_DRAFT = jsonschema.Draft202012Validator  # for a schema that names no $schema
MAX_DEPTH = 64  # nesting; YAML composes recursively, so a deeper file could exhaust the stack
AUTH_TYPES = ("bearer", "header", "query", "basic", "oauth2_client_credentials", "login")
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it


class _Loader(_BaseLoader):
    """YAML 1.2 scalars (``on:`` and ``no:`` are text, not booleans; dates are text) and no
    duplicate keys: a key written twice is a mistake YAML would silently resolve."""

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict) or key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp"))
    ]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 core numbers: 010 is ten (not octal eight), 12:30 is text (not 750 seconds).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    try:
        if text.startswith(("0o", "0x")):
            return int(text, 0)
        return int(text, 10)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not an integer", node.start_mark) from exc


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


# ``${name}`` written bare in a flow collection (``vars: {msg: ${uuid}}``) would end the
# collection at its "}": YAML allows no braces in plain scalars there. Template braces are
# swapped for two private-use characters before parsing and back after, so templates read
# the same anywhere; lines and columns do not move.
TEMPLATE_TOKEN = re.compile(r"\$\{(" + TEMPLATE_NAME + r")\}")
OPEN, CLOSE = "\ue000", "\ue001"


def _protect_templates(text: str) -> str:
    return TEMPLATE_TOKEN.sub(lambda m: f"${OPEN}{m.group(1)}{CLOSE}", text)


def _restore_templates(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(OPEN, "{").replace(CLOSE, "}") if OPEN in value else value
    if isinstance(value, dict):
        return {_restore_templates(k): _restore_templates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_templates(v) for v in value]
    return value


class SuiteFileError(ValueError):
    """A suite file that cannot be loaded; each line names the file, line and key path."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class LoadedSuite:
    model: Suite
    definition: dict[str, Any]  # plain JSON as written, with JSON Schema files embedded
    digest: str  # of the definition: same content, same version
    source: str  # the file's text


def format_path(path: tuple[str | int, ...]) -> str:
    text = ""
    for element in path:
        if isinstance(element, int):
            text += f"[{element}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", element):
            text += f".{element}" if text else element
        else:
            text += f"[{json.dumps(element)}]"
    return text or "(top level)"


def _too_deep(text: str) -> int | None:
    """The line where the text nests deeper than MAX_DEPTH, read as a stream of events
    (which needs no recursion), or None."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1 if event.start_mark else 0
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None  # composing reports it, with its line
    return None


def _line(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The line of the deepest node ``path`` reaches (elements the file lacks are skipped)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for element in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(element):
                    line = key.start_mark.line + 1
                    node = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(element, int) and element < len(node.value):
            node = node.value[element]
            line = node.start_mark.line + 1
    return line


def _plain(data: Any) -> Iterator[Problem]:
    """JSON-safe data of bounded size: text keys, finite numbers, at most MAX_VALUES values."""
    budget = MAX_VALUES
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        budget -= 1
        if budget < 0:
            yield Problem((), f"the file expands to more than {MAX_VALUES} values (YAML aliases?); refused")
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    yield Problem(path, f"key {key!r} must be text (quote it)")
                else:
                    stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            yield Problem(path, f"{value} is not a finite number")
        elif not isinstance(value, str | int | float | bool | type(None)):
            yield Problem(path, f"unsupported YAML value {short(str(value))} ({type(value).__name__})")


def _schema_files(data: dict[str, Any], base_dir: Path | None) -> Iterator[Problem]:
    """Replace ``expect.schema: FILE`` with the schema it names (validated as a schema)."""
    checks = data.get("checks")
    for c_index, check in enumerate(checks if isinstance(checks, list) else []):
        steps = check.get("steps") if isinstance(check, dict) else None
        for s_index, step in enumerate(steps if isinstance(steps, list) else []):
            expect = step.get("expect") if isinstance(step, dict) else None
            if not isinstance(expect, dict) or "schema" not in expect:
                continue
            path = ("checks", c_index, "steps", s_index, "expect", "schema")
            schema = expect["schema"]
            if isinstance(schema, str):
                if base_dir is None:
                    yield Problem(
                        path, "schema files can only be named by suite files on disk; write the schema inline"
                    )
                    continue
                file = (base_dir / schema).resolve()
                if not file.is_relative_to(base_dir.resolve()) or not file.is_file():
                    yield Problem(path, f"no schema file {schema!r} next to the suite file")
                    continue
                if file.stat().st_size > MAX_SCHEMA_BYTES:
                    yield Problem(path, f"schema file {schema!r} is over {MAX_SCHEMA_BYTES} bytes")
                    continue
                try:
                    schema = yaml.load(file.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - safe loader
                except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                    yield Problem(path, f"cannot read schema file {schema!r}: {short(str(exc), 200)}")
                    continue
            if not isinstance(schema, dict):
                yield Problem(path, "a JSON Schema is a mapping")
                continue
            problem = _schema_problem(json.dumps(schema, separators=(",", ":")))
            if problem:
                yield Problem(path, problem)
                continue
            expect["schema"] = schema


@functools.lru_cache(maxsize=512)
def _schema_problem(schema_json: str) -> str | None:
    """What is wrong with a JSON Schema (given as the JSON it is stored as), or None.
    Checking a schema against its metaschema takes milliseconds; suites repeat their
    schemas across checks, and the suites page sees the same files again, so each
    distinct schema is checked once."""
    schema = json.loads(schema_json)
    checker = _schema_checker(jsonschema.validators.validator_for(schema, DEFAULT_DRAFT))
    invalid = next(checker.iter_errors(schema), None)
    if invalid is not None:
        return f"not a valid JSON Schema: {short(invalid.message, 200)}"
    outside = sorted(set(_outside_refs(schema)))
    if outside:
        return f"a schema may only refer inside itself ($ref: #/…); embed what {', '.join(outside)} names"
    return None


@functools.lru_cache(maxsize=8)
def _schema_checker(draft: Any) -> Any:
    """A validator of schemas written for ``draft`` (its metaschema), built once: what
    ``check_schema`` would build again for every schema."""
    meta = jsonschema.validators.validator_for(draft.META_SCHEMA, default=draft)
    return meta(draft.META_SCHEMA, format_checker=meta.FORMAT_CHECKER)


def _outside_refs(schema: Any) -> Iterator[str]:
    """``$ref``s that point outside the schema: Goldpath never fetches one."""
    stack = [schema]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                yield ref
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _model_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Pydantic's location without the union tags it inserts (step kinds, auth types)."""
    kept: list[str | int] = []
    for index, element in enumerate(loc):
        previous = loc[index - 1] if index else None
        before = loc[index - 2] if index > 1 else None
        if element in KINDS and isinstance(previous, int) and before == "steps":
            continue
        if element in AUTH_TYPES and before == "auth":
            continue
        kept.append(element)
    return tuple(kept)


VOCABULARY: set[str] = set()


def _vocabulary() -> set[str]:
    if not VOCABULARY:

        def walk(schema: Any) -> None:
            if isinstance(schema, dict):
                VOCABULARY.update(k for k in schema.get("properties", {}))
                for value in schema.values():
                    walk(value)
            elif isinstance(schema, list):
                for value in schema:
                    walk(value)

        walk(Suite.model_json_schema())
    return VOCABULARY


def _validation_problems(error: ValidationError) -> Iterator[Problem]:
    for item in error.errors():
        loc = _model_loc(tuple(item["loc"]))
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            hint = ""
            if key == "kind" and len(loc) == 3 and loc[0] == "checks":
                hint = "; checks no longer have kinds: list the check's steps (see docs/suites.md)"
            else:
                close = difflib.get_close_matches(key, sorted(_vocabulary() - {key}), n=1, cutoff=0.75)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield Problem(loc[:-1], f"unknown key {key!r}{hint}", at=loc)
        elif kind == "missing":
            yield Problem(loc[:-1], f"missing key {str(loc[-1])!r}")
        elif kind == "step_kind":
            value = item.get("input")
            present = [k for k in KINDS if isinstance(value, dict) and k in value]
            if len(present) > 1:
                yield Problem(loc, f"a step has one kind; this one has {' and '.join(present)}: split it in two")
            else:
                keys = ", ".join(map(str, value)) if isinstance(value, dict) else short(value)
                yield Problem(loc, f"a step needs one of: {', '.join(KINDS)} (found: {keys or 'nothing'})")
        elif kind == "union_tag_invalid":
            yield Problem(loc, f"unknown auth type {item['ctx']['tag']!r} (types: {', '.join(AUTH_TYPES)})")
        elif kind == "union_tag_not_found":
            yield Problem(loc, f"an auth profile needs a type ({', '.join(AUTH_TYPES)})")
        else:
            message = item["msg"].removeprefix("Value error, ")
            shown = item.get("input")
            got = f" (got {short(shown)})" if not isinstance(shown, dict | list) and kind != "value_error" else ""
            yield Problem(loc, f"{message[0].lower()}{message[1:]}{got}")


def digest_of(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@cyclic_gc_paused()
def parse_suite(text: str, source_name: str = "suite.yaml", base_dir: Path | None = None) -> LoadedSuite:
    """Validate a suite file's text; SuiteFileError lists every problem found."""

    def fail(problems: list[Problem], root: yaml.Node | None = None) -> SuiteFileError:
        located = sorted(((_line(root, p.at or p.path) or 0, p) for p in problems), key=lambda item: item[0])
        lines = []
        for line, problem in located[:50]:
            where = f" line {line}" if line else ""
            lines.append(f"{source_name}{where}: {format_path(problem.path)}: {problem.message}")
        if len(problems) > 50:
            lines.append(f"{source_name}: and {len(problems) - 50} more problems")
        return SuiteFileError(lines)

    if len(text.encode()) > MAX_SUITE_BYTES:
        raise SuiteFileError([f"{source_name}: the file is over {MAX_SUITE_BYTES} bytes"])
    if OPEN in text or CLOSE in text:
        raise SuiteFileError([f"{source_name}: the file holds the private-use characters U+E000/U+E001; remove them"])
    protected = _protect_templates(text)
    too_deep = _too_deep(protected)
    if too_deep is not None:
        raise SuiteFileError([f"{source_name} line {too_deep}: nested deeper than {MAX_DEPTH} levels; refused"])
    loader = _Loader(protected)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteFileError([f"{source_name}{where}: invalid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SuiteFileError([f"{source_name}: a suite file is a mapping with name, categories and checks"])
    problems = list(_plain(data))  # before anything walks the data: it may be an alias bomb
    if problems:
        raise fail(problems, root)
    definition = _restore_templates(data) if TEMPLATE_TOKEN.search(text) else copy.deepcopy(data)
    problems = list(_schema_files(definition, base_dir))
    try:
        model = Suite.model_validate(definition)
    except ValidationError as exc:
        problems += _validation_problems(exc)
    else:
        problems += suite_problems(model)
    if problems:
        raise fail(problems, root)
    return LoadedSuite(model, definition, digest_of(definition), text)


def load_suite_file(path: Path) -> LoadedSuite:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteFileError([f"{path}: cannot read the suite file ({exc})"]) from None
    return parse_suite(text, str(path), path.parent)


def suite_from_definition(definition: dict[str, Any]) -> Suite:
    """The model of a definition that was validated when it was loaded (a worker's copy)."""
    return Suite.model_validate(definition)
