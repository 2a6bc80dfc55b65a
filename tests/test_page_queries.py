"""The run page, its results pages and the compare page read a run of 20 results and one of
200 in the same number of queries: nothing is read per result (an import of 10,000 one-case
suites once took seconds on them, most of it Django loading each test case's impact tags).

Each history is real rows: a suite with categories and two impact tags, MIN_RUNS + 1
finished runs on one environment (enough for flakiness), one check in five failing in each
run, a different one each time. Once as an import suite (no version: categories and tags
as stored), once as a probe suite whose version defines its checks."""

from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.analysis.flakiness import MIN_RUNS
from runs.models import Result, Run, RunStatus, Suite, TestCase
from tests.factories import (
    CategoryFactory,
    EnvironmentFactory,
    ImpactTagFactory,
    RunFactory,
    SuiteFactory,
    UserFactory,
)
from tests.factories import TestCaseFactory as CaseFactory  # a Test* name would be collected

FAILING_EVERY = 5
TAGS = {"Checkout": 500, "Search": 200}


@dataclass
class History:
    before: Run
    after: Run
    size: int


def fails(case: int, run: int) -> bool:
    return (case + run) % FAILING_EVERY == 0


def history(origin: str, size: int) -> History:
    """A suite of ``size`` checks and its runs; each check's tag alternates."""
    name = f"{origin}-{size}"
    categories = [f"area {i}" for i in range(3)]
    checks = [
        {"id": f"{name}::case{i}", "category": categories[i % 3], "impact": [list(TAGS)[i % 2]]} for i in range(size)
    ]
    definition = {
        "name": name,
        "checks": checks,
        "categories": [{"name": c, "critical": False} for c in categories],
        "impact_tags": [{"name": t, "mrr": mrr} for t, mrr in TAGS.items()],
    }
    suite = SuiteFactory(name=name, origin=origin, version=definition)
    environment = EnvironmentFactory(name=f"env-{name}")
    category_rows = [CategoryFactory(suite=suite, name=c, order=i) for i, c in enumerate(categories)]
    tags = [ImpactTagFactory(suite=suite, name=t, mrr=mrr) for t, mrr in TAGS.items()]
    cases = [
        CaseFactory(suite=suite, category=category_rows[i % 3], node_id=check["id"], name=f"case {i}", order=i)
        for i, check in enumerate(checks)
    ]
    TestCase.impact_tags.through.objects.bulk_create(
        TestCase.impact_tags.through(testcase_id=case.pk, impacttag_id=tags[i % 2].pk) for i, case in enumerate(cases)
    )
    trigger = Run.Trigger.IMPORT if origin == Suite.Origin.IMPORT else Run.Trigger.MANUAL
    runs = []
    for n in range(MIN_RUNS + 1):
        failing = [i for i in range(size) if fails(i, n)]
        run = RunFactory(
            suite=suite,
            environment=environment,
            trigger=trigger,
            status=RunStatus.FINISHED,
            total=size,
            passed=size - len(failing),
            failed=len(failing),
        )
        Result.objects.bulk_create(
            Result(
                run=run,
                test_case=case,
                outcome=Result.Outcome.FAILED if i in failing else Result.Outcome.PASSED,
                duration_s=0.1,
                message="expected 200, got 500" if i in failing else "",
                failure_class="http-status" if i in failing else "",
            )
            for i, case in enumerate(cases)
        )
        runs.append(run)
    return History(runs[-2], runs[-1], size)


def pages(h: History) -> list[str]:
    run = h.after.pk
    return [
        f"/runs/{run}/",
        f"/runs/{run}/results/",
        f"/runs/{run}/results/?outcome=failing",
        f"/compare/?a={h.before.pk}&b={run}",
    ]


def queries_per_page(client, h: History) -> dict[str, int]:
    counts = {}
    for n, path in enumerate(pages(h)):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, path
        counts[f"page {n}"] = len(queries)
    return counts


@pytest.mark.parametrize("origin", [Suite.Origin.IMPORT, Suite.Origin.PROBE])
def test_the_run_results_and_compare_pages_read_20_or_200_results_in_the_same_queries(client, db, origin):
    client.force_login(UserFactory(username="engineer", role="Engineer"))
    small, large = history(origin, 20), history(origin, 200)
    assert queries_per_page(client, small) == queries_per_page(client, large)

    for h in (small, large):
        failing_now = sum(1 for i in range(h.size) if fails(i, MIN_RUNS))
        run_page = client.get(f"/runs/{h.after.pk}/").content.decode()
        assert "$700 MRR at risk" in run_page  # both tags have a failing check, as stored and as defined
        assert 'class="tag tag-warn">flaky' in run_page  # one failure in five runs flips each check
        compare = client.get(f"/compare/?a={h.before.pk}&b={h.after.pk}").content.decode()
        assert f"New failures ({failing_now})" in compare and f"Fixed ({failing_now})" in compare
