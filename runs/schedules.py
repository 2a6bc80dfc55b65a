"""Scheduled runs: "SUITE on ENVIRONMENT every N minutes", kept as django-celery-beat entries.

Every fire of a schedule belongs to a time slot (now rounded to the interval); the run it
starts is keyed by that slot, so two beat processes firing the same slot start one run.
"""

from __future__ import annotations

import json
import time

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.models import Environment, Run, Suite
from runs.services import create_run

SCHEDULED_RUN_TASK = "runs.run_scheduled"
MIN_EVERY_MINUTES = 1


def slot_key(suite: str, environment: str, every_s: int, now: float | None = None) -> str:
    """The slot a fire at ``now`` belongs to: rounded, so beats a little early or late agree."""
    slot = round((time.time() if now is None else now) / every_s)
    return f"schedule:{suite}:{environment}:{every_s}:{slot}"


def schedule_name(suite: Suite, environment: Environment) -> str:
    return f"{suite.name} on {environment.name}"


@transaction.atomic
def set_schedule(suite: Suite, environment: Environment, every_minutes: int, enabled: bool = True) -> PeriodicTask:
    """Create or change the schedule of ``suite`` on ``environment``."""
    if every_minutes < MIN_EVERY_MINUTES:
        raise ValueError(f"run at most every {MIN_EVERY_MINUTES} minute")
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_minutes, period=IntervalSchedule.MINUTES)
    task, _ = PeriodicTask.objects.update_or_create(
        name=schedule_name(suite, environment),
        defaults={
            "task": SCHEDULED_RUN_TASK,
            "interval": interval,
            "kwargs": json.dumps({"suite": suite.name, "environment": environment.name, "every_s": every_minutes * 60}),
            "enabled": enabled,
        },
    )
    return task


def schedules() -> list[PeriodicTask]:
    return list(PeriodicTask.objects.filter(task=SCHEDULED_RUN_TASK).select_related("interval").order_by("name"))


def start_scheduled_run(suite: str, environment: str, every_s: int, now: float | None = None) -> Run | None:
    """The run for this slot (created once, however many beats fire it), or None if the
    suite or environment is gone."""
    suite_obj = Suite.objects.filter(name=suite).first()
    environment_obj = Environment.objects.filter(name=environment).first()
    if suite_obj is None or environment_obj is None:
        return None
    return create_run(
        suite_obj,
        environment_obj,
        trigger=Run.Trigger.SCHEDULE,
        request_key=slot_key(suite, environment, every_s, now),
    )
