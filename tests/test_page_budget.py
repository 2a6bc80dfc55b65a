"""Every page stays small whatever was imported (issue 14): a 778 KB JUnit file of 10,000
one-case suites imports in a fraction of a second, and once it had, the trends page weighed
56 MB and the run page 12 MB. Here that file goes through the real importer beside a normal
golden-path history, and every page is fetched as each role within a size and query budget."""

import io
from dataclasses import dataclass
from itertools import cycle, islice

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Left
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.importers.service import import_results
from runs.models import NOTE_MAX_CHARS, Category, Result, Run, RunStatus, Suite, Verdict
from runs.notes import MAX_NOTES_PER_RUN, add_note
from tests.factories import EnvironmentFactory, ResultFactory, RunFactory, UserFactory
from tests.samples import one_case_suites

SUITES = 10_000
FAILING_EVERY = 7  # one suite in 7 fails: 1,429 failures
PAGE_BYTES = 250_000  # the golden path's biggest page weighs 40 KB
PAGE_QUERIES = 40
GOLDEN_RUNS = 48  # with the two imports: the 50 runs a heatmap shows
ROLES = {"manager": "Manager", "devops": "DevOps", "engineer": "Engineer", "superuser": None}
# Notes at the length limit that python-markdown rendered slowly or that render largest.
WORST_NOTES = [
    "*a" * (NOTE_MAX_CHARS // 2),
    "<" * NOTE_MAX_CHARS,
    "[" * NOTE_MAX_CHARS,
    "> " * (NOTE_MAX_CHARS // 2),
    "#\n" * (NOTE_MAX_CHARS // 2),
    "".join("  " * (i % 40) + "- [a\n" for i in range(NOTE_MAX_CHARS))[:NOTE_MAX_CHARS],
]


@dataclass
class World:
    imported: Run
    reimported: Run
    golden: Run
    imported_case: int
    golden_case: int
    clients: dict[str, Client]


@pytest.fixture
def world(golden_path) -> World:
    staging = EnvironmentFactory(name="staging")
    golden = None
    for i in range(GOLDEN_RUNS):
        failing = i % 2 == 1
        cases = list(golden_path.test_cases.all())
        golden = RunFactory(
            suite=golden_path,
            environment=staging,
            status=RunStatus.FINISHED,
            verdict=Verdict.PARTIAL if failing else Verdict.PASS,
            total=len(cases),
            passed=len(cases) - int(failing),
            failed=int(failing),
        )
        for n, case in enumerate(cases):
            outcome = Result.Outcome.FAILED if failing and n == 0 else Result.Outcome.PASSED
            ResultFactory(run=golden, test_case=case, outcome=outcome)
    writer = UserFactory(username="note-writer", password=None)
    for text in islice(cycle(WORST_NOTES), MAX_NOTES_PER_RUN):  # the most a run takes, each at the limit
        add_note(golden, writer, text)
    files = (io.BytesIO(one_case_suites(SUITES, FAILING_EVERY, shift)) for shift in (0, 3))
    imported, reimported = (import_results(f, suite_name="ci-huge", environment_name="ci") for f in files)
    one_category_per_suite(imported.suite)
    clients = {}
    for role, group in ROLES.items():
        user = UserFactory(username=role, password=None, is_superuser=group is None)
        if group:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        clients[role] = Client()
        clients[role].force_login(user)
    failing_case = imported.results.filter(outcome=Result.Outcome.FAILED).values_list("test_case_id", flat=True)[0]
    return World(
        imported, reimported, golden, failing_case, golden.results.values_list("test_case_id", flat=True)[0], clients
    )


def one_category_per_suite(suite: Suite) -> None:
    """Give each of the file's suites its own category, as imports did before they capped
    categories per suite: the pages must hold with those rows too."""
    categories = (Category(suite=suite, name=f"s{i:05d}", order=i) for i in range(SUITES))
    Category.objects.bulk_create(categories, ignore_conflicts=True)  # the first 200 exist
    own = Category.objects.filter(suite=suite, name=Left(OuterRef("node_id"), 6)).values("pk")[:1]
    suite.test_cases.update(category=Subquery(own))
    suite.categories.filter(test_cases__isnull=True).delete()
    assert suite.categories.count() == SUITES


PAGES = [
    "/",
    "/runs/",
    "/runs/{imported}/",
    "/runs/{golden}/",
    "/runs/{imported}/progress/",
    "/runs/{imported}/results/",
    "/runs/{imported}/results/?outcome=failing&page=2",
    "/runs/{imported}/results/?outcome=passed&page=last",
    "/trends/",
    "/trends/?days=7",
    "/trends/?days=90",
    "/trends/?environment=ci",
    "/trends/?suite=ci-huge",
    "/trends/?environment=staging&suite=golden-path",
    "/business/",
    "/business/?days=7",
    "/business/?days=90",
    "/cases/{imported_case}/",
    "/cases/{golden_case}/",
    "/compare/",
    "/compare/?a={imported}&b={reimported}",
    "/compare/?a={golden}&b={imported}",
    "/suites/",
    "/suites/ci-huge/",
    "/suites/golden-path/",
    "/environments/",
    "/schedules/",
    "/alerts/",
    "/tokens/",
]
# Configuration pages other roles may not open (everything else: every role reads it).
REFUSED = {(page, role) for page in ("/schedules/", "/alerts/") for role in ("manager", "engineer")}


def test_every_page_keeps_its_budget_after_a_10000_suite_import(world):
    over = []
    for template in PAGES:
        path = template.format(
            imported=world.imported.pk,
            reimported=world.reimported.pk,
            golden=world.golden.pk,
            imported_case=world.imported_case,
            golden_case=world.golden_case,
        )
        for role, client in world.clients.items():
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            expected = 403 if (template, role) in REFUSED else 200
            assert response.status_code == expected, (path, role, response.status_code)
            size = len(response.content)
            if size > PAGE_BYTES or len(queries) > PAGE_QUERIES:
                over.append(f"{path} as {role}: {size:,} bytes, {len(queries)} queries")
    assert over == []
