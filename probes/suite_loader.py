"""Load suite definition files (YAML) into the database, with errors that name file and line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from probes.base import CheckSpec
from probes.engine import KINDS
from runs.models import Category, ImpactTag, Suite, TestCase

LINE_KEY = "__line__"


class SuiteFileError(ValueError):
    """A suite file that cannot be loaded; the message names the file and line."""


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping, for error messages."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE_KEY] = node.start_mark.line + 1
        return mapping


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != LINE_KEY}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def parse_suite_file(path: Path) -> dict[str, Any]:
    """Parse and validate ``path``; return the definition as plain data."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteFileError(f"{path}: cannot read the suite file ({exc})") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteFileError(f"{path}{where}: invalid YAML: {problem}") from None

    def fail(node: Any, message: str) -> SuiteFileError:
        line = node.get(LINE_KEY) if isinstance(node, dict) else None
        return SuiteFileError(f"{path}{f' line {line}' if line else ''}: {message}")

    if not isinstance(data, dict):
        raise SuiteFileError(f"{path}: a suite file must be a mapping with name, categories and checks")
    for key in ("name", "categories", "checks"):
        if not data.get(key):
            raise fail(data, f"missing {key!r}")
    tags = {t.get("name") for t in data.get("impact_tags", []) if isinstance(t, dict)}
    for tag in data.get("impact_tags", []):
        if not isinstance(tag, dict) or not tag.get("name") or not isinstance(tag.get("mrr"), int) or tag["mrr"] < 0:
            raise fail(tag, "each impact tag needs a name and a whole, non-negative mrr")
    categories = set()
    for category in data["categories"]:
        if not isinstance(category, dict) or not category.get("name"):
            raise fail(category, "each category needs a name")
        categories.add(category["name"])
    seen_ids: set[str] = set()
    for check in data["checks"]:
        if not isinstance(check, dict):
            raise fail(data, "each check must be a mapping")
        for key in ("id", "name", "category", "kind"):
            if not check.get(key):
                raise fail(check, f"check is missing {key!r}")
        if check["id"] in seen_ids:
            raise fail(check, f"check id {check['id']!r} is used twice")
        seen_ids.add(check["id"])
        if check["kind"] not in KINDS:
            raise fail(
                check, f"check {check['id']!r} has unknown kind {check['kind']!r} (known: {', '.join(sorted(KINDS))})"
            )
        if check["category"] not in categories:
            raise fail(check, f"check {check['id']!r} names unknown category {check['category']!r}")
        unknown = set(check.get("impact", [])) - tags
        if unknown:
            raise fail(check, f"check {check['id']!r} names unknown impact tags: {', '.join(sorted(unknown))}")
        try:
            float(check.get("timeout_s", 10))
        except (TypeError, ValueError):
            raise fail(check, f"check {check['id']!r}: timeout_s must be a number") from None
    for metric in data.get("critical_metrics", []):
        if not isinstance(metric, dict) or not metric.get("name"):
            raise fail(data, "each critical metric needs a name")
        if metric.get("count", "checks") not in ("checks", "requests", "measurements"):
            raise fail(metric, f"critical metric {metric['name']!r}: count must be checks, requests or measurements")
        unknown = set(metric.get("checks", [])) - seen_ids
        if unknown:
            raise fail(metric, f"critical metric {metric['name']!r} names unknown checks: {', '.join(sorted(unknown))}")
    return _strip_lines(data)


@transaction.atomic
def load_suite_file(path: Path) -> Suite:
    """Create or update the suite from ``path``; checks no longer in the file become inactive."""
    definition = parse_suite_file(path)
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    suite, _ = Suite.objects.update_or_create(
        name=definition["name"],
        defaults={
            "title": definition.get("title", definition["name"]),
            "description": definition.get("description", ""),
            "version": version,
            "source_path": str(path),
            "definition": definition,
        },
    )
    tags = {}
    for tag in definition.get("impact_tags", []):
        tags[tag["name"]], _ = ImpactTag.objects.update_or_create(
            name=tag["name"],
            defaults={
                "mrr": tag["mrr"],
                "severity": tag.get("severity", ImpactTag.Severity.MEDIUM),
                "description": tag.get("description", ""),
            },
        )
    categories = {}
    for order, category in enumerate(definition["categories"]):
        categories[category["name"]], _ = Category.objects.update_or_create(
            suite=suite,
            name=category["name"],
            defaults={"order": order, "critical": bool(category.get("critical", False))},
        )
    for order, check in enumerate(definition["checks"]):
        test_case, _ = TestCase.objects.update_or_create(
            suite=suite,
            node_id=check["id"],
            defaults={
                "name": check["name"],
                "category": categories[check["category"]],
                "kind": check["kind"],
                "order": order,
                "active": True,
            },
        )
        test_case.impact_tags.set([tags[name] for name in check.get("impact", [])])
    suite.test_cases.exclude(node_id__in=[c["id"] for c in definition["checks"]]).update(active=False)
    return suite


def load_all_suites(directory: Path | None = None) -> list[Suite]:
    directory = directory or settings.GOLDPATH_SUITES_DIR
    return [load_suite_file(path) for path in sorted(Path(directory).glob("*.y*ml"))]


def suite_check_specs(suite: Suite) -> list[CheckSpec]:
    return [CheckSpec.from_definition(check) for check in suite.definition["checks"]]
