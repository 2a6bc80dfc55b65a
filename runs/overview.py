"""The overview: one row per environment and suite, from a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max

from runs.models import Environment, Run, Suite

SPARKLINE_RUNS = 20
RECENT_ROWS = 5000  # finished runs read for sparklines: bounds the work whatever the history


@dataclass
class OverviewRow:
    environment: Environment
    suite: Suite
    last_run_at: datetime | None = None
    latest: Run | None = None  # latest finished run
    pass_rates: list[float] = field(default_factory=list)  # oldest first

    @property
    def recent_pass_rate(self) -> float | None:
        return sum(self.pass_rates) / len(self.pass_rates) if self.pass_rates else None


def overview_rows() -> list[OverviewRow]:
    environments = {e.pk: e for e in Environment.objects.all()}
    suites = {s.pk: s for s in Suite.objects.all()}
    last_run = {
        (row["environment_id"], row["suite_id"]): row["last"]
        for row in Run.objects.values("environment_id", "suite_id").annotate(last=Max("created"))
    }
    rows = {key: OverviewRow(environments[key[0]], suites[key[1]], last_at) for key, last_at in last_run.items()}
    finished = (
        Run.objects.state_of_environment()
        .select_related("environment", "suite")
        .order_by("-created", "-pk")[:RECENT_ROWS]
    )
    for run in finished:
        row = rows.get((run.environment_id, run.suite_id))
        if row is None:
            continue
        if row.latest is None:
            row.latest = run
        if len(row.pass_rates) < SPARKLINE_RUNS and run.total:
            row.pass_rates.insert(0, run.passed / run.total)
    return sorted(rows.values(), key=lambda r: (r.environment.name, r.suite.name))
