"""Import test results Goldpath did not run itself (any CI pipeline's) as a finished run.

The whole file is parsed before anything is written, and written in one transaction: a
file that fails leaves nothing behind. Imported runs get the same analysis as probe runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from runs import history
from runs.analysis.classification import classify
from runs.analysis.facts import ResultFacts
from runs.importers.cases import ImportedCase, ImportFailed
from runs.importers.junit import parse_junit
from runs.importers.pytest_json import parse_pytest_json
from runs.models import Category, Environment, ImpactTag, Result, Run, RunStatus, Suite, TestCase
from runs.services import finish_run, result_flags

__all__ = ["ImportFailed", "import_results", "PARSERS"]

PARSERS: dict[str, Callable[[BinaryIO], Iterator[ImportedCase]]] = {
    "junit": parse_junit,
    "pytest-json": parse_pytest_json,
}
BATCH = 2000


class LimitedReader:
    """A file wrapper that refuses to read past ``limit`` bytes (uploads of unknown size)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.limit, self.read_bytes = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size and size > 0 else self.limit + 1)
        self.read_bytes += len(chunk)
        if self.read_bytes > self.limit:
            raise FileTooLarge(self.limit)
        return chunk


class FileTooLarge(ImportFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the import limit of {limit:,} bytes (GOLDPATH_IMPORT_MAX_BYTES)")
        self.limit = limit


def detect_format(stream: BinaryIO) -> str:
    """JUnit or pytest-json, from the first bytes (the stream is rewound or peeked)."""
    if stream.seekable():
        head = stream.read(64)
        stream.seek(0)
    else:
        head = stream.peek(64)[:64]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise ImportFailed("the file is empty")
    if text.startswith(b"<"):
        return "junit"
    if text.startswith(b"{"):
        return "pytest-json"
    raise ImportFailed("unknown file format: expected JUnit XML (starting with '<') or pytest-json-report JSON")


def category_for(case: ImportedCase, rules: Iterable[dict]) -> str:
    """The suite file's ``import_categories`` rules (regex over 'suite classname name')
    decide; otherwise the file's own suite name, else the first part of the class name."""
    subject = f"{case.suite} {case.classname} {case.name}"
    for rule in rules:
        if re.search(rule["pattern"], subject):
            return rule["category"][:100]
    return (case.suite or case.classname.split(".")[0] or "Imported")[:100]


def import_results(
    stream: BinaryIO,
    *,
    suite_name: str,
    environment_name: str,
    fmt: str = "auto",
    user=None,
    max_bytes: int | None = None,
) -> Run:
    """Parse ``stream`` and store it as a finished run of ``suite_name`` on ``environment_name``."""
    limited = LimitedReader(stream, max_bytes or settings.GOLDPATH_IMPORT_MAX_BYTES)
    if fmt == "auto":
        fmt = detect_format(stream)
    if fmt not in PARSERS:
        raise ImportFailed(f"unknown format {fmt!r}; use one of {', '.join(PARSERS)}")
    cases = list(PARSERS[fmt](limited))
    if not cases:
        raise ImportFailed("the file holds no test cases")
    suite_slug, env_slug = slugify(suite_name)[:64], slugify(environment_name)[:64]
    if not suite_slug or not env_slug:
        raise ImportFailed("give a suite and an environment name (letters, digits, hyphens)")
    rules = history.active_rules()
    with transaction.atomic():
        suite, _ = Suite.objects.get_or_create(
            name=suite_slug,
            defaults={"title": suite_name[:200], "version": "imported", "definition": {"imported": True, "checks": []}},
        )
        environment, _ = Environment.objects.get_or_create(name=env_slug, defaults={"base_url": ""})
        test_cases, impact = _test_cases(suite, cases)
        run = Run.objects.create(
            suite=suite,
            suite_version=suite.version,
            environment=environment,
            trigger=Run.Trigger.IMPORT,
            triggered_by=user,
            status=RunStatus.RUNNING,
            started_at=timezone.now(),
            expected=len(cases),
            base_url=environment.base_url,
        )
        facts = [_facts(case, test_cases[case.key], impact.get(case.key, ()), rules) for case in cases]
        flags = result_flags(facts)
        attempts: dict[str, int] = {}
        for first in range(0, len(cases), BATCH):  # objects made per batch: memory stays flat
            batch = []
            for case, fact, case_flags in zip(
                cases[first : first + BATCH], facts[first : first + BATCH], flags[first : first + BATCH], strict=True
            ):
                attempts[case.key] = attempts.get(case.key, 0) + 1
                batch.append(
                    Result(
                        run=run,
                        test_case=test_cases[case.key],
                        outcome=case.outcome,
                        duration_s=case.duration_s,
                        message=case.message,
                        failure_class=fact.failure_class,
                        mock_flags=case_flags,
                        attempt=attempts[case.key],
                        finished_at=run.started_at,
                    )
                )
            Result.objects.bulk_create(batch)
        tag_mrr_map = dict(ImpactTag.objects.filter(test_cases__suite=suite).distinct().values_list("name", "mrr"))
        finish_run(
            run,
            duration_s=round(sum(c.duration_s for c in cases), 3),
            facts=facts,
            flags=flags,
            tag_mrr_map=tag_mrr_map,
        )
    return run


def _facts(case: ImportedCase, test_case: TestCase, impact: tuple[str, ...], rules) -> ResultFacts:
    """What the analysis reads of an imported result, without a database round trip."""
    failing = case.outcome in ("failed", "error")
    return ResultFacts(
        name=test_case.name,
        category=test_case.category.name,
        outcome=case.outcome,
        duration_s=case.duration_s,
        critical=test_case.category.critical,
        message=case.message,
        node_id=test_case.node_id,
        kind=test_case.kind,
        impact=impact,
        failure_class=classify(case.message, {}, rules) if failing else "",
    )


def _test_cases(suite: Suite, cases: list[ImportedCase]) -> tuple[dict[str, TestCase], dict[str, tuple[str, ...]]]:
    """Test cases by node id — existing ones matched (their history continues), new ones
    created — and the impact tag names of those that have any."""
    rules = suite.definition.get("import_categories", [])
    categories = {c.name: c for c in suite.categories.all()}
    wanted = {category_for(case, rules) for case in cases} - set(categories)
    order = len(categories)
    for offset, name in enumerate(sorted(wanted)):
        categories[name] = Category.objects.create(suite=suite, name=name, order=order + offset)
    existing = {tc.node_id: tc for tc in suite.test_cases.select_related("category")}
    impact: dict[str, list[str]] = {}
    for node_id, tag in TestCase.impact_tags.through.objects.filter(testcase__suite=suite).values_list(
        "testcase__node_id", "impacttag__name"
    ):
        impact.setdefault(node_id, []).append(tag)
    new = {}
    for case in cases:
        if case.key not in existing and case.key not in new:
            new[case.key] = TestCase(
                suite=suite,
                node_id=case.key,
                name=case.name[:300],
                category=categories[category_for(case, rules)],
                order=len(existing) + len(new),
            )
    TestCase.objects.bulk_create(new.values(), batch_size=BATCH)
    existing.update(new)
    return existing, {node_id: tuple(tags) for node_id, tags in impact.items()}
