"""``${name}`` templates in suite files: finding the names (to reject unknown ones at load)
and rendering them at run time.

A string that is exactly one template (``json: {count: "${n}"}``) takes the value as it is
(a number stays a number); anywhere else values are written as text. ``$${`` writes a
literal ``${``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from probes.failures import StepFailed

NAME = r"(?:env\.[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*)"
TEMPLATE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
WHOLE = re.compile(r"\$\{(" + NAME + r")\}")
VALID_NAME = re.compile(NAME)
# Known at run time without being declared; ${env.NAME} is handled apart.
BUILTINS = ("uuid", "base_url", "ws_url", "environment", "run_id")


def assignment(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` as commands take variables (``--var client_id=shop``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


class TemplateError(ValueError):
    """A malformed ``${…}`` (found at load)."""


def names_in(value: Any) -> Iterator[str]:
    """Every name a value's templates use, recursively; malformed ones raise TemplateError."""
    if isinstance(value, str):
        for match in TEMPLATE.finditer(value):
            if match.group(0) == "$${":
                continue
            name = match.group(1).strip()
            if not VALID_NAME.fullmatch(name):
                raise TemplateError(f"'${{{match.group(1)}}}' is not a template name (letters, digits, _, or env.NAME)")
            yield name
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from names_in(key)
            yield from names_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from names_in(item)


def has_templates(value: Any) -> bool:
    return next(names_in(value), None) is not None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with every template replaced by ``lookup(name)``, recursively."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        whole = WHOLE.fullmatch(value)
        if whole:
            return lookup(whole.group(1))
        return TEMPLATE.sub(lambda m: "${" if m.group(0) == "$${" else _text(lookup(m.group(1).strip())), value)
    if isinstance(value, Mapping):
        return {render(k, lookup): render(v, lookup) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, lookup) for item in value]
    return value


class Variables:
    """The values templates see during one sample of one check, in the order they are
    looked up: the check's ``vars``, values saved by earlier steps, the suite's ``vars``
    (with the environment's overrides), then the built-ins.

    ``vars`` are rendered on first use and kept for the sample, so ``msg: ${uuid}`` is one
    id that every step shares. Values read from ``${env.NAME}`` are handed to ``secret`` so
    they never reach evidence, messages or logs.
    """

    def __init__(
        self,
        check_vars: Mapping[str, Any],
        suite_vars: Mapping[str, Any],
        builtins: Mapping[str, Any],
        *,
        secret: Callable[[str], None],
        environ: Mapping[str, str] = os.environ,
        env_readable: Callable[[str], bool] | None = None,
    ) -> None:
        self.check_vars = check_vars
        self.suite_vars = suite_vars
        self.builtins = builtins
        self.secret = secret
        self.environ = environ
        self.env_readable = env_readable
        self.saved: dict[str, Any] = {}
        self._rendered: dict[tuple[str, str], Any] = {}
        self._rendering: set[tuple[str, str]] = set()

    def __call__(self, name: str) -> Any:
        if name in self.check_vars:
            return self._var("check", name, self.check_vars[name])
        if name in self.saved:
            return self.saved[name]
        if name in self.suite_vars:
            return self._var("suite", name, self.suite_vars[name])
        if name.startswith("env."):
            return self._environment(name[4:])
        if name == "uuid":
            return str(uuid.uuid4())
        if name in self.builtins:
            return self.builtins[name]
        raise StepFailed("config.template", f"template ${{{name}}} names no variable, saved value or built-in")

    def _var(self, scope: str, name: str, template: Any) -> Any:
        key = (scope, name)
        if key not in self._rendered:
            if key in self._rendering:
                raise StepFailed("config.template", f"variable {name!r} refers to itself")
            self._rendering.add(key)
            try:
                # A suite variable may be written in terms of others; a check variable that
                # names itself means the suite's variable of that name.
                lookup = self if scope == "suite" else _Shadow(self, name)
                self._rendered[key] = render(template, lookup)
            finally:
                self._rendering.discard(key)
        return self._rendered[key]

    def _environment(self, name: str) -> str:
        if self.env_readable is not None and not self.env_readable(name):
            raise StepFailed(
                "config.env_refused",
                f"environment variable {name} is not one suites may read on this worker "
                "(GOLDPATH_SUITE_ENV lists those they may)",
                variable=name,
            )
        value = self.environ.get(name)
        if value is None:
            raise StepFailed(
                "config.missing_env",
                f"environment variable {name} is not set on the worker (the suite reads it as ${{env.{name}}})",
                variable=name,
            )
        self.secret(value)
        return value

    def save(self, name: str, value: Any) -> None:
        self.saved[name] = value


class _Shadow:
    """Lookup for check variable ``name``'s own template: its own name means the suite's."""

    def __init__(self, variables: Variables, name: str) -> None:
        self.variables = variables
        self.name = name

    def __call__(self, name: str) -> Any:
        if name == self.name:
            if name in self.variables.suite_vars:
                return self.variables._var("suite", name, self.variables.suite_vars[name])
            raise StepFailed("config.template", f"variable {name!r} refers to itself")
        return self.variables(name)
