"""Run suite text through the probe engine in this process (no Django, no Celery)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from typing import Any

from probes.engine import CheckOutcome, run_checks
from probes.net import NetworkPolicy
from probes.runtime import RunTarget
from probes.suite.loader import parse_suite
from probes.suite.model import Suite


def suite_of(text: str) -> Suite:
    return parse_suite(text, "test-suite.yaml").model


def probe(
    suite: Suite | str,
    base_url: str,
    *,
    allowed: Iterable[str] = ("127.0.0.1",),
    checks: Iterable[str] | None = None,
    **target: Any,
) -> dict[str, CheckOutcome]:
    """Every check's outcome by id (or only ``checks``)."""
    model = suite_of(suite) if isinstance(suite, str) else suite
    chosen = [c for c in model.checks if checks is None or c.id in set(checks)]
    run_target = RunTarget(model, base_url, policy=NetworkPolicy(frozenset(allowed)), **target)
    with closing(run_checks(chosen, run_target)) as outcomes:
        return {outcome.check_id: outcome for outcome in outcomes}


def one_check(steps: str, *, category: str = "A", extra: str = "", check: str = "") -> str:
    """A suite with one check ``c`` whose steps are ``steps`` (YAML, indented 6)."""
    return (
        f"name: t\ncategories: [{{name: {category}}}]\n{extra}checks:\n"
        f"  - id: c\n    name: C\n    category: {category}\n{check}    steps:\n{steps}"
    )
