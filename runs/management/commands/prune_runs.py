"""Remove the results (and their evidence) of old runs; keep what the trends read.

Runs stay with their counters, verdict, MRR at risk, realness and mock counts, and so do
their measurements and notes: pass-rate, MRR, performance and mock-indicator trends stay
correct over any window. Work is done in batches, each in its own transaction.
"""

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from runs.models import Result, Run, RunStatus

UNITS = {"d": "days", "h": "hours", "w": "weeks"}
BATCH_RUNS = 500


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([dhw])", text.strip())
    if not match:
        raise CommandError(f"--older-than {text!r}: give a number and a unit, e.g. 90d, 36h or 12w")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Delete the results of runs older than an age (e.g. 90d), keeping runs and measurements."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", required=True, help="Age such as 90d, 36h or 12w")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be removed, remove nothing")

    def handle(self, *args: Any, older_than: str, dry_run: bool, **options: Any) -> None:
        cutoff = timezone.now() - parse_age(older_than)
        old_runs = Run.objects.filter(
            created__lt=cutoff,
            results_pruned_at__isnull=True,
            status__in=[RunStatus.FINISHED, RunStatus.ERROR, RunStatus.CANCELLED],
        )
        if dry_run:
            results = Result.objects.filter(run__in=old_runs).count()
            self.stdout.write(
                f"Would remove {results} results of {old_runs.count()} runs created before {cutoff:%Y-%m-%d %H:%M}."
            )
            return
        runs_done = results_done = 0
        while ids := list(old_runs.order_by("pk").values_list("pk", flat=True)[:BATCH_RUNS]):
            with transaction.atomic():
                deleted, _ = Result.objects.filter(run_id__in=ids).delete()
                Run.objects.filter(pk__in=ids).update(results_pruned_at=timezone.now())
            runs_done += len(ids)
            results_done += deleted
        self.stdout.write(
            f"Removed {results_done} results of {runs_done} runs created before {cutoff:%Y-%m-%d %H:%M}; "
            "the runs, their measurements and notes are kept."
        )
