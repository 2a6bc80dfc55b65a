"""Where the pages finish reading a run through its standing (runs.analysis.standing): an
imported suite is marked on Overview, so an import named like the probe suite never passes
for it; the run page does not call an import's realness suspect; Business's headline counts
the environments that look mocked."""

import re
from pathlib import Path

import pytest

from runs.importers.service import import_results
from runs.models import Result, Run, RunStatus, Verdict
from tests.factories import (
    CategoryFactory,
    EnvironmentFactory,
    ImpactTagFactory,
    ResultFactory,
    RunFactory,
    SuiteFactory,
)
from tests.factories import TestCaseFactory as CheckFactory

pytestmark = pytest.mark.django_db

SUREFIRE = Path(__file__).parent / "fixtures" / "junit" / "surefire.xml"
PASSED = Result.Outcome.PASSED


@pytest.fixture
def golden():
    """A probe suite titled "Golden Path" whose one check carries $200,000 of MRR."""
    suite = SuiteFactory(name="golden-path", title="Golden Path")
    check = CheckFactory(category=CategoryFactory(suite=suite, name="Priority 1"), node_id="send")
    check.impact_tags.set([ImpactTagFactory(suite=suite, name="Chat", mrr=200_000)])
    suite.check = check
    return suite


def passed_run(suite, env: str, **fields) -> Run:
    run = RunFactory(
        suite=suite,
        environment=EnvironmentFactory(name=env),
        status=RunStatus.FINISHED,
        verdict=Verdict.PASS,
        total=1,
        passed=1,
        **fields,
    )
    ResultFactory(run=run, test_case=suite.check, outcome=PASSED)
    return run


def overview_rows(page: str, env: str) -> list[str]:
    return [row.split("</tr>")[0] for row in page.split("<tr>")[1:] if f"<strong>{env}</strong>" in row]


def text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def test_an_imported_suite_named_like_the_probe_suite_is_marked_imported_on_overview(manager, golden):
    probe = passed_run(golden, "preprod", realness_score=0.9)
    with SUREFIRE.open("rb") as junit:
        lookalike = import_results(junit, suite_name="golden-path-ci", environment_name="preprod")
    lookalike.suite.title = "Golden Path"
    lookalike.suite.save(update_fields=["title"])

    page = manager.get("/").content.decode()
    mark = f'<span class="tag" title="{Run.IMPORTED_NOTE}">imported</span>'.replace("'", "&#x27;")
    by_run = {row.split('class="muted">#')[1].split("<")[0]: row for row in overview_rows(page, "preprod")}
    assert f"<td>Golden Path {mark}</td>" in by_run[str(lookalike.pk)]
    assert "imported</span>" not in by_run[str(probe.pk)] and "<td>Golden Path</td>" in by_run[str(probe.pk)]


def test_an_import_suite_without_a_finished_run_is_marked_imported_too(manager):
    """Its row shows before any run finished (a run of it is still running)."""
    with SUREFIRE.open("rb") as junit:
        imported = import_results(junit, suite_name="unit-tests", environment_name="ci")
    Run.objects.filter(pk=imported.pk).update(status=RunStatus.RUNNING)
    page = manager.get("/").content.decode()
    assert '<td>unit-tests <span class="tag" title="Imported from a CI results file' in page


def test_the_run_page_says_an_imports_realness_was_not_assessed_instead_of_suspect(manager):
    with SUREFIRE.open("rb") as junit:
        imported = import_results(junit, suite_name="unit-tests", environment_name="ci")
    page = manager.get(imported.get_absolute_url()).content
    section = text(page).split("Real service validation", 1)[1].split("Failing tests")[0]
    assert section.strip().startswith(
        "Realness: not assessed (imported results — they never touched the network from Goldpath)."
    )
    assert "SUSPECT" not in section and "Detected mock indicators" not in section


def test_a_probe_runs_validation_section_reads_its_realness_as_its_standing_does(manager, golden):
    """Mock indicators make a probe run suspect whatever its evidence score, as its badge says."""
    mocked = passed_run(golden, "mocked", realness_score=0.9, mock_count=8)
    section = text(manager.get(mocked.get_absolute_url()).content).split("Real service validation", 1)[1]
    assert section.strip().startswith("Realness: SUSPECT")
    clean = passed_run(golden, "clean", realness_score=0.9)
    assert "SUSPECT" not in text(manager.get(clean.get_absolute_url()).content)


def test_the_business_headline_counts_the_environments_that_look_mocked(manager, golden):
    passed_run(golden, "staging", realness_score=0.3, mock_count=8)
    passed_run(golden, "production", realness_score=0.9)
    business = text(manager.get("/business/").content)
    assert "No revenue at risk on any environment · 1 environment looks mocked." in business
    passed_run(golden, "preprod", realness_score=0.2)
    business = text(manager.get("/business/").content)
    assert "No revenue at risk on any environment · 2 environments look mocked." in business
