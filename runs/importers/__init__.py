"""Import test results Goldpath did not run itself (any CI pipeline's) as a finished run.

The whole file is parsed before anything is written, and written in one transaction: a
file that fails leaves nothing behind. Imported runs get the same analysis as probe runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import BinaryIO, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from probes.gcpause import cyclic_gc_paused
from runs import bulk, history
from runs.analysis.classification import MESSAGE_EXCERPT, UNCLASSIFIED, Rule, classify
from runs.analysis.facts import FAILING, ResultFacts
from runs.importers.cases import ImportedCase, ImportFailed, head_encoding
from runs.importers.junit import parse_junit
from runs.importers.pytest_json import parse_pytest_json
from runs.models import Category, Environment, Result, Run, RunStatus, Suite, TestCase
from runs.services import finish_run, result_flags

__all__ = ["ImportFailed", "import_results", "PARSERS"]

PARSERS: dict[str, Callable[[BinaryIO], Iterator[ImportedCase]]] = {
    "junit": parse_junit,
    "pytest-json": parse_pytest_json,
}
# The columns an import writes, in the order of its rows.
TEST_CASE_FIELDS = ("suite", "node_id", "name", "category", "declares", "order", "active")
RESULT_FIELDS = (
    "run",
    "test_case",
    "outcome",
    "duration_s",
    "message",
    "failure_class",
    "evidence",
    "mock_flags",
    "attempt",
    "finished_at",
)


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
    text = head.decode(head_encoding(head), errors="ignore").lstrip("\ufeff \t\r\n")
    if not text:
        raise ImportFailed("the file is empty")
    if text.startswith("<"):
        return "junit"
    if text.startswith("{"):
        return "pytest-json"
    raise ImportFailed("unknown file format: expected JUnit XML (starting with '<') or pytest-json-report JSON")


MAX_CATEGORIES = 200
OTHER_CATEGORY = f"Other suites (past the {MAX_CATEGORIES}-category cap)"


def category_for(case: ImportedCase) -> str:
    """The file's own suite name, else the first part of the class name."""
    return (case.suite or case.classname.split(".")[0] or "Imported")[:100]


def capped_categories(wanted: Iterable[str], existing: Collection[str]) -> dict[str, str]:
    """The category each name a file asks for gets: its own while the suite holds fewer than
    MAX_CATEGORIES (the file's first suites first), then the one OTHER_CATEGORY. A file of
    10,000 one-case suites (go-junit-report writes a suite per package) still imports, and
    the suite's pages list 201 categories, not 10,000."""
    given = {name: name for name in existing}
    room = MAX_CATEGORIES - len(set(existing) - {OTHER_CATEGORY})
    for name in wanted:
        if name in given:
            continue
        if room > 0:
            given[name], room = name, room - 1
        else:
            given[name] = OTHER_CATEGORY
    return given


@cyclic_gc_paused()
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
    try:
        return _store_run(cases, suite_slug, suite_name, env_slug, rules, user)
    except IntegrityError:
        # Another import of the same suite created some of these test cases meanwhile (on
        # PostgreSQL both can read the suite before either commits): now they can be matched.
        return _store_run(cases, suite_slug, suite_name, env_slug, rules, user)


def _store_run(
    cases: list[ImportedCase], suite_slug: str, suite_name: str, env_slug: str, rules: list[Rule], user
) -> Run:
    """Store the parsed cases as one finished run, in one transaction."""
    with transaction.atomic():
        suite, _ = Suite.objects.get_or_create(
            name=suite_slug, defaults={"title": suite_name[:200], "origin": Suite.Origin.IMPORT}
        )
        if suite.origin != Suite.Origin.IMPORT:
            raise ImportFailed(
                f"suite {suite.name!r} is a probe suite: its results come only from Goldpath's own workers. "
                f"Import into a suite of its own (for example {suite.name}-ci)"
            )
        environment, _ = Environment.objects.get_or_create(name=env_slug, defaults={"base_url": ""})
        stored = _test_cases(suite, cases)
        run = Run.objects.create(
            suite=suite,
            environment=environment,
            trigger=Run.Trigger.IMPORT,
            triggered_by=user,
            status=RunStatus.RUNNING,
            started_at=timezone.now(),
            expected=len(cases),
            base_url=environment.base_url,
        )
        failure_class = _classifier(rules)
        facts = [_facts(case, stored[case.key], failure_class) for case in cases]
        flags = result_flags(facts)
        _store_results(run, cases, stored, facts, flags)
        tag_mrr_map = dict(suite.impact_tags.values_list("name", "mrr"))
        finish_run(
            run,
            duration_s=round(sum(c.duration_s for c in cases), 3),
            facts=facts,
            flags=flags,
            tag_mrr_map=tag_mrr_map,
        )
    return run


class StoredCase(NamedTuple):
    """What an import reads of a stored test case (no model instances for 100,000 of them)."""

    id: int
    name: str
    category: Category
    declares: str
    impact: tuple[str, ...]


def _classifier(rules: list[Rule]) -> Callable[[ImportedCase], str]:
    """The failure class of an imported case, read from the first MESSAGE_EXCERPT characters
    of its text, each once: its headline (the exception's own message) decides, and only when
    that names nothing a rule knows is the rest of that excerpt read — a stack trace's source
    lines say things like 'timeout=5' or 'certificate' that have nothing to do with why the
    test failed. Each distinct excerpt is classified once (a file's failures often share one
    root cause), so an admin's regex runs on at most MESSAGE_EXCERPT characters per failure."""
    classes: dict[str, str] = {}

    def classified(text: str) -> str:
        if text not in classes:
            classes[text] = classify(text, None, rules)
        return classes[text]

    def failure_class(case: ImportedCase) -> str:
        excerpt = case.message[:MESSAGE_EXCERPT]
        split = len(case.headline) if case.headline and excerpt.startswith(case.headline[:MESSAGE_EXCERPT]) else 0
        headline_class = classified(excerpt[:split]) if split else UNCLASSIFIED
        rest = excerpt[split:].lstrip("\n")
        return headline_class if headline_class != UNCLASSIFIED or not rest else classified(rest)

    return failure_class


def _facts(case: ImportedCase, stored: StoredCase, failure_class: Callable[[ImportedCase], str]) -> ResultFacts:
    """What the analysis reads of an imported result, without a database round trip."""
    return ResultFacts(
        name=stored.name,
        category=stored.category.name,
        outcome=case.outcome,
        duration_s=case.duration_s,
        critical=stored.category.critical,
        message=case.message,
        node_id=case.key,
        declares=stored.declares,
        impact=stored.impact,
        failure_class=failure_class(case) if case.outcome in FAILING else "",
    )


def _store_results(
    run: Run, cases: list[ImportedCase], stored: dict[str, StoredCase], facts: list[ResultFacts], flags: list[list[str]]
) -> None:
    """One row per case; a test case seen more than once in the file gets attempts 1, 2, …"""
    run_id, finished_at = run.pk, bulk.datetime_value(run.started_at)
    attempts: dict[str, int] = {}

    def rows():
        for case, fact, case_flags in zip(cases, facts, flags, strict=True):
            attempts[case.key] = attempt = attempts.get(case.key, 0) + 1
            yield (
                run_id,
                stored[case.key].id,
                case.outcome,
                case.duration_s,
                case.message,
                fact.failure_class,
                bulk.EMPTY_OBJECT_JSON,
                bulk.json_value(case_flags),
                attempt,
                finished_at,
            )

    bulk.insert_rows(Result, RESULT_FIELDS, rows())


def _test_cases(suite: Suite, cases: list[ImportedCase]) -> dict[str, StoredCase]:
    """The suite's test cases by node id — existing ones matched (their history continues),
    new ones created — with their category and impact tag names."""
    categories = {c.name: c for c in suite.categories.all()}
    stored = _stored_cases(suite, categories.values())
    new: dict[str, tuple[str, str]] = {}  # node id: name, category name (its first case decides)
    for case in cases:
        if case.key not in stored and case.key not in new:
            new[case.key] = case.name[:300], category_for(case)
    if not new:
        return stored
    given = capped_categories((category for _, category in new.values()), categories)
    missing = sorted(set(given.values()) - set(categories), key=lambda name: (name == OTHER_CATEGORY, name))
    created = Category.objects.bulk_create(
        Category(suite=suite, name=name, order=len(categories) + offset) for offset, name in enumerate(missing)
    )
    categories.update((category.name, category) for category in created)
    suite_id, category_ids, first = suite.pk, {name: category.pk for name, category in categories.items()}, len(stored)
    rows = (
        (suite_id, key, name, category_ids[given[category]], "", first + position, True)
        for position, (key, (name, category)) in enumerate(new.items())
    )
    bulk.insert_rows(TestCase, TEST_CASE_FIELDS, rows)
    for key, pk in suite.test_cases.order_by().values_list("node_id", "pk"):  # the rest is known
        if key in new:
            name, category = new[key]
            stored[key] = StoredCase(pk, name, categories[given[category]], "", ())
    return stored


def _stored_cases(suite: Suite, categories: Iterable[Category]) -> dict[str, StoredCase]:
    by_pk = {category.pk: category for category in categories}
    impact: dict[str, list[str]] = {}
    for node_id, tag in TestCase.impact_tags.through.objects.filter(testcase__suite=suite).values_list(
        "testcase__node_id", "impacttag__name"
    ):
        impact.setdefault(node_id, []).append(tag)
    return {
        node_id: StoredCase(pk, name, by_pk[category_id], declares, tuple(impact.get(node_id, ())))
        for node_id, pk, name, category_id, declares in suite.test_cases.order_by().values_list(
            "node_id", "pk", "name", "category_id", "declares"
        )
    }
