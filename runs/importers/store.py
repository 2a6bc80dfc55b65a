"""Storing an imported file batch by batch while it is parsed, so a file of a million cases
never sits in memory at once: each batch of BATCH cases is matched to the suite's test cases
(new ones created), stored as results, and folded into a RunTally, what the run's analysis
reads. The caller holds one transaction around all batches, so a file refused halfway
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator
from itertools import chain, repeat
from typing import NamedTuple

from runs import bulk
from runs.analysis.classification import MESSAGE_EXCERPT, UNCLASSIFIED, RegexBudget, Rule, classify
from runs.analysis.facts import FAILING, ResultFacts
from runs.importers.cases import ImportedCase
from runs.models import Category, Result, Run, Suite, TestCase
from runs.services import result_flags

BATCH = 5_000  # cases per batch: a few MB of parsed cases, and few enough queries per million
MAX_CATEGORIES = 200
OTHER_CATEGORY = f"Other suites (past the {MAX_CATEGORIES}-category cap)"
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


def classifier(rules: list[Rule], budget: RegexBudget) -> Callable[[ImportedCase], str]:
    """The failure class of an imported case, read from the first MESSAGE_EXCERPT characters
    of its text, each once: its headline (the exception's own message) decides, and only when
    that names nothing a rule knows is the rest of that excerpt read — a stack trace's source
    lines say things like 'timeout=5' or 'certificate' that have nothing to do with why the
    test failed. Each distinct excerpt is classified once (a file's failures often share one
    root cause), so an admin's regex runs on at most MESSAGE_EXCERPT characters per failure.
    The excerpts are remembered by a 16-byte digest: a million distinct 4 KB traces would
    otherwise be kept whole until the import ends. All of them share ``budget``: a rule's
    regex slow on this file's messages costs the import a second or so, not a second per
    hundred failures."""
    classes: dict[bytes, str] = {}

    def classified(text: str) -> str:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if digest not in classes:
            classes[digest] = classify(text, None, rules, budget)
        return classes[digest]

    def failure_class(case: ImportedCase) -> str:
        excerpt = case.message[:MESSAGE_EXCERPT]
        split = len(case.headline) if case.headline and excerpt.startswith(case.headline[:MESSAGE_EXCERPT]) else 0
        headline_class = classified(excerpt[:split]) if split else UNCLASSIFIED
        rest = excerpt[split:].lstrip("\n")
        return headline_class if headline_class != UNCLASSIFIED or not rest else classified(rest)

    return failure_class


class StoredCase(NamedTuple):
    """What an import reads of a stored test case (no model instances for 5,000 of them)."""

    id: int
    name: str
    category: Category
    declares: str
    impact: tuple[str, ...]


class Attempts:
    """The attempt of each result: 1, or 2, 3, … for a test case the file names again (a
    retry), in file order. A bit per test case id says which ones the file has named so far
    (a set of a million ids would hold ~60 MB; this holds one byte per 8 ids up to the
    largest), and only test cases named more than once get a counter."""

    def __init__(self) -> None:
        self.seen = bytearray()
        self.repeated: dict[int, int] = {}

    def make_room(self, largest_id: int) -> None:
        if largest_id // 8 >= len(self.seen):
            self.seen.extend(bytes(largest_id // 8 + 1 - len(self.seen)))

    def next(self, test_case_id: int) -> int:
        byte, mask = test_case_id // 8, 1 << (test_case_id % 8)
        if not self.seen[byte] & mask:
            self.seen[byte] |= mask
            return 1
        self.repeated[test_case_id] = attempt = self.repeated.get(test_case_id, 1) + 1
        return attempt


class RunTally:
    """What the run's analysis (runs.services.finish_imported_run) reads of an import's results,
    without keeping one fact per result: the results are grouped by every fact the run-level
    analysis reads (category and whether it is critical, outcome, failure class, declared
    evidence, impact tags, and a tagged test's name, which MRR at risk lists), each group
    kept as its first result's facts and a count. ``facts()`` repeats each group's facts
    that many times (a list of references to a few hundred objects: 8 MB for a million);
    tests/test_import.py checks the stored analysis against one read from every result."""

    def __init__(self) -> None:
        self.groups: dict[tuple, list] = {}  # key: [facts of its first result, count]
        self.flagged = 0  # results with mock indicators
        self.total = 0
        self.duration_s = 0.0

    def add(self, facts: list[ResultFacts], flags: list[list[str]], durations: Iterable[float]) -> None:
        for fact, case_flags in zip(facts, flags, strict=True):
            key = (
                fact.category,
                fact.critical,
                fact.outcome,
                fact.failure_class,
                fact.declares,
                fact.impact,
                fact.name if fact.impact else "",
            )
            group = self.groups.get(key)
            if group is None:
                self.groups[key] = [fact, 1]
            else:
                group[1] += 1
            self.flagged += bool(case_flags)
        self.total += len(facts)
        for duration in durations:  # one by one, in file order: the sum is the one a list's would be
            self.duration_s += duration

    def facts(self) -> list[ResultFacts]:
        return list(chain.from_iterable(repeat(fact, count) for fact, count in self.groups.values()))


class ImportWriter:
    """Stores one run's results, a batch at a time, inside the caller's transaction."""

    def __init__(self, suite: Suite, run: Run, rules: list[Rule]) -> None:
        self.suite, self.run = suite, run
        self.categories: dict[str, Category] = {}
        self.category_by_pk: dict[int, Category] = {}
        self._read_categories(suite.categories.all())
        # Only tagged test cases: MRR at risk names them. Those a file creates have no tags yet.
        self.impact: dict[int, tuple[str, ...]] = {}
        for pk, tag in TestCase.impact_tags.through.objects.filter(testcase__suite=suite).values_list(
            "testcase_id", "impacttag__name"
        ):
            self.impact[pk] = (*self.impact.get(pk, ()), tag)
        self.next_order = suite.test_cases.count()
        self.regex_budget = RegexBudget()
        self.failure_class = classifier(rules, self.regex_budget)
        self.attempts = Attempts()
        self.tally = RunTally()
        assert run.started_at is not None, "start_imported_run sets it"
        self.finished_at = bulk.datetime_value(run.started_at)

    def store(self, cases: list[ImportedCase]) -> None:
        stored = self.test_cases(cases)
        facts = [self._facts(case, stored[case.key]) for case in cases]
        flags = result_flags(facts)
        self.results(cases, stored, facts, flags)
        self.tally.add(facts, flags, (case.duration_s for case in cases))

    def _read_categories(self, categories: Iterable[Category]) -> None:
        for category in categories:
            self.categories[category.name] = self.category_by_pk[category.pk] = category

    def _stored(self, keys: Collection[str]) -> dict[str, StoredCase]:
        fields = ("node_id", "id", "name", "category", "declares")
        return {
            key: StoredCase(pk, name, self.category_by_pk[category_id], declares, self.impact.get(pk, ()))
            for key, pk, name, category_id, declares in bulk.rows_by_key(
                TestCase, ("suite", self.suite.pk), "node_id", keys, fields
            )
        }

    def test_cases(self, cases: list[ImportedCase]) -> dict[str, StoredCase]:
        """The batch's test cases by node id — existing ones matched (their history
        continues), new ones created in file order, each with the name and category of its
        first case (no other import of the suite runs meanwhile: see import_results)."""
        stored = self._stored({case.key for case in cases})
        new: dict[str, tuple[str, str]] = {}  # node id: name, category name
        for case in cases:
            if case.key not in stored and case.key not in new:
                new[case.key] = case.name[:300], category_for(case)
        if not new:
            return stored
        given = capped_categories((category for _, category in new.values()), self.categories)
        missing = sorted(set(given.values()) - set(self.categories), key=lambda name: (name == OTHER_CATEGORY, name))
        if missing:
            order = len(self.categories)
            self._read_categories(
                Category.objects.bulk_create(
                    Category(suite=self.suite, name=name, order=order + n) for n, name in enumerate(missing)
                )
            )
        suite_id, first = self.suite.pk, self.next_order
        rows = (
            (suite_id, key, name, self.categories[given[category]].pk, "", first + position, True)
            for position, (key, (name, category)) in enumerate(new.items())
        )
        bulk.insert_rows(TestCase, TEST_CASE_FIELDS, rows)
        self.next_order += len(new)
        for key, pk in bulk.rows_by_key(TestCase, ("suite", suite_id), "node_id", new.keys(), ("node_id", "id")):
            name, category = new[key]
            stored[key] = StoredCase(pk, name, self.categories[given[category]], "", ())
        return stored

    def _facts(self, case: ImportedCase, stored: StoredCase) -> ResultFacts:
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
            failure_class=self.failure_class(case) if case.outcome in FAILING else "",
        )

    def results(
        self, cases: list[ImportedCase], stored: dict[str, StoredCase], facts: list[ResultFacts], flags: list[list[str]]
    ) -> None:
        """One row per case; a test case the file names more than once gets attempts 1, 2, …"""
        run_id, finished_at, attempts = self.run.pk, self.finished_at, self.attempts
        attempts.make_room(max(case.id for case in stored.values()))

        def rows() -> Iterator[tuple]:
            for case, fact, case_flags in zip(cases, facts, flags, strict=True):
                test_case_id = stored[case.key].id
                yield (
                    run_id,
                    test_case_id,
                    case.outcome,
                    case.duration_s,
                    case.message,
                    fact.failure_class,
                    bulk.EMPTY_OBJECT_JSON,
                    bulk.json_value(case_flags),
                    attempts.next(test_case_id),
                    finished_at,
                )

        bulk.insert_rows(Result, RESULT_FIELDS, rows())
