"""Checks across a suite that no single model sees: names that must exist (categories, impact
tags, auth profiles, template names, connections, marks) and names that must be unique."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from probes.auth import NO_AUTH, Login
from probes.runtime import DEFAULT_CONNECTION
from probes.suite.model import SAMPLE_START, Check, Suite
from probes.templates import BUILTINS, TemplateError, names_in

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    path: Path  # the key path shown
    message: str
    at: Path | None = None  # where to look for the line, when deeper than ``path``


def _unique(items: list[Any], attribute: str, path: Path, what: str) -> Iterator[Problem]:
    seen: set[Any] = set()
    for index, item in enumerate(items):
        value = getattr(item, attribute)
        if value in seen:
            yield Problem((*path, index, attribute), f"{what} {value!r} is used twice")
        seen.add(value)


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield (*path, key), key
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _template_problems(value: Any, known: set[str], path: Path, extra: str = "") -> Iterator[Problem]:
    for where, text in _strings(value, path):
        try:
            names = list(names_in(text))
        except TemplateError as exc:
            yield Problem(where, str(exc))
            continue
        for name in names:
            if not name.startswith("env.") and name not in known:
                choices = ", ".join(sorted(known - set(BUILTINS))) or "none"
                yield Problem(
                    where,
                    f"unknown template name ${{{name}}}{extra} (known here: {choices}; "
                    f"built-ins: {', '.join(BUILTINS)}, env.NAME)",
                )


def _cycles(
    variables: Mapping[str, Any], path: Path, outer: frozenset[str] | set[str] = frozenset()
) -> Iterator[Problem]:
    """Variables whose templates lead back to themselves (``a: ${b}``, ``b: ${a}``)."""
    graph = {}
    for name, value in variables.items():
        try:
            graph[name] = {n for n in names_in(value) if n in variables and not (n == name and n in outer)}
        except TemplateError:
            graph[name] = set()
    for start in graph:
        stack, visited = [start], set()
        while stack:
            current = stack.pop()
            for following in graph.get(current, ()):
                if following == start:
                    yield Problem((*path, start), f"variable {start!r} refers to itself through its templates")
                    stack.clear()
                    break
                if following not in visited:
                    visited.add(following)
                    stack.append(following)


def suite_problems(suite: Suite) -> list[Problem]:
    problems: list[Problem] = []
    problems += _unique(suite.categories, "name", ("categories",), "category")
    problems += _unique(suite.impact_tags, "name", ("impact_tags",), "impact tag")
    problems += _unique(suite.checks, "id", ("checks",), "check id")
    categories = {c.name for c in suite.categories}
    tags = {t.name for t in suite.impact_tags}
    check_ids = {c.id for c in suite.checks}
    suite_names = set(suite.vars) | set(BUILTINS)
    problems += _cycles(suite.vars, ("vars",))
    for name, value in suite.vars.items():
        problems += _template_problems(value, suite_names, ("vars", name))
    for name, profile in suite.auth.items():
        data = profile.model_dump(by_alias=True, exclude_none=True)
        if isinstance(profile, Login):
            problems += _template_problems(data.pop("apply"), suite_names | {"token"}, ("auth", name, "apply"))
        problems += _template_problems(data, suite_names, ("auth", name))
    for index, critical in enumerate(suite.critical_metrics):
        unknown = sorted(set(critical.checks) - check_ids)
        if unknown:
            problems.append(Problem(("critical_metrics", index, "checks"), f"unknown checks: {', '.join(unknown)}"))
    metric_keys: dict[str, str] = {}
    for index, check in enumerate(suite.checks):
        path: Path = ("checks", index)
        if check.category not in categories:
            problems.append(
                Problem(
                    (*path, "category"),
                    f"unknown category {check.category!r} (categories: {', '.join(sorted(categories))})",
                )
            )
        for tag in sorted(set(check.impact) - tags):
            problems.append(
                Problem(
                    (*path, "impact"), f"unknown impact tag {tag!r} (impact_tags: {', '.join(sorted(tags)) or 'none'})"
                )
            )
        problems += _check_problems(suite, check, path, suite_names)
        for m_index, metric in enumerate(check.metrics):
            other = metric_keys.get(metric.key)
            if other is not None:
                problems.append(
                    Problem(
                        (*path, "metrics", m_index, "name"),
                        f"metric {metric.name!r} is already measured by check {other!r}",
                    )
                )
            metric_keys[metric.key] = check.id
    return problems


def _check_problems(suite: Suite, check: Check, path: Path, suite_names: set[str]) -> Iterator[Problem]:
    yield from _cycles(check.vars, (*path, "vars"), outer=set(suite.vars))
    available = suite_names | set(check.vars)
    for name, value in check.vars.items():
        yield from _template_problems(
            value, available | ({name} if name in suite.vars else set()), (*path, "vars", name)
        )
    opened: dict[str, str] = {}
    marks: set[str] = set()
    for s_index, step in enumerate(check.steps):
        step_path: Path = (*path, "steps", s_index)
        kind = step.kind
        options = step.options
        data = step.model_dump(by_alias=True, exclude_none=True, exclude={"mark", "optional", "always"})
        yield from _template_problems(
            data, available, step_path, " (values saved by a step are known to later steps only)"
        )
        profile = getattr(options, "auth", None)
        if profile not in (None, NO_AUTH) and profile not in suite.auth:
            known = ", ".join(sorted(suite.auth)) or "none defined"
            yield Problem(
                (*step_path, step.KIND, "auth"), f"unknown auth profile {profile!r} (profiles: {known}; or none)"
            )
        if kind.uses:
            name = getattr(options, "on", None) or (
                next(iter(opened)) if len(opened) == 1 and DEFAULT_CONNECTION not in opened else DEFAULT_CONNECTION
            )
            opened_as = opened.get(name)
            if opened_as is None:
                yield Problem(
                    (*step_path, step.KIND, "on"),
                    f"no earlier step opens a connection named {name!r} (connect or stream with as: {name})",
                )
            elif kind.uses != "any" and opened_as != kind.uses:
                yield Problem(
                    (*step_path, step.KIND, "on"), f"{name!r} is an event stream; {step.KIND} needs a WebSocket"
                )
        if kind.opens and not getattr(options, "expect", None):
            opened[options.as_] = kind.opens
        step_marks = [step.mark] if step.mark else []
        if step.KIND == "receive":
            step_marks += [item.mark for item in options.sequence if item.mark]
        for mark in step_marks:
            if mark in marks or mark == SAMPLE_START:
                yield Problem(
                    (*step_path, "mark"),
                    f"mark {mark!r} is set twice"
                    if mark != SAMPLE_START
                    else "'start' is the sample's beginning; pick another name",
                )
            marks.add(mark)
        available = available | _saved_names(step)
    for m_index, metric in enumerate(check.metrics):
        for mark in metric.marks:
            if mark not in marks:
                yield Problem(
                    (*path, "metrics", m_index),
                    f"metric {metric.name!r} names mark {mark!r}, which no step of the check sets "
                    f"(marks: {', '.join(sorted(marks)) or 'none'})",
                )


def _saved_names(step: Any) -> set[str]:
    names = set(getattr(step, "save", None) or {})
    if step.KIND == "receive":
        for item in step.options.sequence:
            names |= set(item.save or {})
    return names
