"""The overview: one row per environment and suite, from a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max

from runs.models import Environment, Run, Suite
from runs.services import not_runnable_reason
from runs.state import SuiteState, latest_states

SPARKLINE_RUNS = 20


@dataclass
class OverviewRow:
    environment: Environment
    suite: Suite
    last_run_at: datetime | None = None
    state: SuiteState | None = None  # from the latest finished full run
    pass_rates: list[float] = field(default_factory=list)  # oldest first

    @property
    def latest(self) -> Run | None:
        return self.state.run if self.state else None

    @property
    def imported_note(self) -> str:
        """Run.IMPORTED_NOTE for a suite whose results come from CI files (its latest run's
        standing says so; before any finished run, the suite's origin), so that an import
        named like a probe suite never passes for it; "" for a probe suite."""
        imported = self.state.standing.imported if self.state else self.suite.origin == Suite.Origin.IMPORT
        return Run.IMPORTED_NOTE if imported else ""

    @property
    def not_runnable(self) -> str | None:
        return not_runnable_reason(self.suite)

    @property
    def recent_pass_rate(self) -> float | None:
        return sum(self.pass_rates) / len(self.pass_rates) if self.pass_rates else None


def overview_rows() -> list[OverviewRow]:
    """Six queries at most whatever the history's size: environments, suites, pairs with
    their last run time, each pair's state (runs.state), and a bounded slice of recent runs
    for sparklines."""
    environments = {e.pk: e for e in Environment.objects.all()}
    suites = {s.pk: s for s in Suite.objects.defer("description")}
    last_run = {
        (row["environment_id"], row["suite_id"]): row["last"]
        for row in Run.objects.values("environment_id", "suite_id").annotate(last=Max("created")).order_by()
    }
    rows = {key: OverviewRow(environments[key[0]], suites[key[1]], last_at) for key, last_at in last_run.items()}
    for pair, state in latest_states().items():
        if pair in rows:  # not a pair whose first run came after the query above
            rows[pair].state = state
    full_runs = Run.objects.state_of_environment()
    # Enough recent runs for every pair's sparkline when pairs run about as often; a pair
    # that runs far less often shows fewer points rather than making the page slow.
    recent = full_runs.only("environment_id", "suite_id", "passed", "total", "created").order_by("-created", "-pk")
    for run in recent[: SPARKLINE_RUNS * max(len(rows), 1) * 2]:
        row = rows.get((run.environment_id, run.suite_id))
        if row is not None and len(row.pass_rates) < SPARKLINE_RUNS and run.total:
            row.pass_rates.insert(0, run.passed / run.total)
    return sorted(rows.values(), key=lambda r: (r.environment.name, r.suite.name))
