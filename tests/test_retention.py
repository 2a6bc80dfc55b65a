"""prune_runs removes old results while the trends read from runs stay the same."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from runs.models import Measurement, Result, Run, RunStatus
from runs.state import standings
from runs.trends import TrendFilter, finished_runs, mrr_series, pass_rate_series
from tests.factories import ResultFactory, RunFactory

pytestmark = pytest.mark.django_db


def finished(created, passed: int, total: int = 4):
    run = RunFactory(
        status=RunStatus.FINISHED, created=created, passed=passed, total=total, mrr_at_risk=1000 * (total - passed)
    )
    for index in range(total):
        ResultFactory(run=run, outcome="passed" if index < passed else "failed")
    Measurement.objects.create(run=run, key="api_response", name="API", target=100, p50=10, p95=12, ok=True)
    return run


def trends(filters: TrendFilter) -> tuple[list[dict], list[dict]]:
    """The pass-rate and MRR series, the MRR read through each run's standing."""
    runs = finished_runs(filters)
    return pass_rate_series(runs), mrr_series(runs, standings(runs))


def test_it_prunes_old_results_and_keeps_the_trends():
    now = timezone.now()
    old = finished(now - timedelta(days=120), passed=1)
    recent = finished(now - timedelta(days=5), passed=4)
    filters = TrendFilter(days=365)
    before = trends(filters)

    call_command("prune_runs", "--older-than", "90d", stdout=StringIO())

    assert not Result.objects.filter(run=old).exists()
    assert Result.objects.filter(run=recent).count() == 4
    old.refresh_from_db()
    assert old.results_pruned_at is not None and (old.passed, old.total) == (1, 4)
    assert Measurement.objects.filter(run=old).exists()
    assert trends(filters) == before


def test_a_dry_run_removes_nothing():
    finished(timezone.now() - timedelta(days=120), passed=2)
    out = StringIO()
    call_command("prune_runs", "--older-than", "90d", "--dry-run", stdout=out)
    assert "Would remove 4 results of 1 runs" in out.getvalue()
    assert Result.objects.count() == 4


def test_it_leaves_running_runs_alone():
    run = RunFactory(status=RunStatus.RUNNING, created=timezone.now() - timedelta(days=200))
    ResultFactory(run=run)
    call_command("prune_runs", "--older-than", "90d", stdout=StringIO())
    assert Result.objects.filter(run=run).count() == 1
    assert Run.objects.get(pk=run.pk).results_pruned_at is None


@pytest.mark.parametrize("age", ["90", "ninety days", "-5d", "90y"])
def test_it_refuses_an_unclear_age(age):
    with pytest.raises(CommandError, match="give a number and a unit"):
        call_command("prune_runs", f"--older-than={age}")
