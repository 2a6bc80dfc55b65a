"""Schedules: the page, slot keys, and two real beat processes starting one run per slot."""

import json
import subprocess
import sys
import time

import pytest
from django.contrib.auth.models import Group
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.models import Run, Suite
from runs.schedules import SCHEDULED_RUN_TASK, slot_key, start_scheduled_run
from tests.conftest import BASE_DIR, isolated_env, start_worker, stop_process
from tests.factories import EnvironmentFactory, SuiteFactory, UserFactory


def test_beats_a_little_early_or_late_agree_on_the_slot():
    assert slot_key("gp", "staging", 900, now=899_999.9 * 900 / 900) == slot_key("gp", "staging", 900, now=900_000.2)
    assert slot_key("gp", "staging", 900, now=0) != slot_key("gp", "staging", 900, now=900)


@pytest.mark.django_db
def test_a_slot_starts_one_run_however_often_it_fires():
    SuiteFactory(name="gp")
    EnvironmentFactory(name="staging")
    first = start_scheduled_run("gp", "staging", 900, now=1_000_000.0)
    again = start_scheduled_run("gp", "staging", 900, now=1_000_000.4)
    assert first.pk == again.pk and first.trigger == Run.Trigger.SCHEDULE
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_devops_sets_a_schedule_on_the_page(client):
    SuiteFactory(name="golden-path")
    environment = EnvironmentFactory(name="staging")
    user = UserFactory()
    user.groups.add(Group.objects.get_or_create(name="DevOps")[0])
    client.force_login(user)
    suite_pk = SuiteFactory(name="golden-path").pk
    response = client.post(
        "/schedules/", {"suite": suite_pk, "environment": environment.pk, "every_minutes": 15, "enabled": "on"}
    )
    assert response.status_code == 302
    task = PeriodicTask.objects.get(task=SCHEDULED_RUN_TASK)
    assert (task.interval.every, task.interval.period) == (15, IntervalSchedule.MINUTES)
    assert json.loads(task.kwargs) == {"suite": "golden-path", "environment": "staging", "every_s": 900}
    assert "golden-path on staging" in client.get("/schedules/").content.decode()


@pytest.mark.django_db
def test_the_schedule_form_offers_probe_suites_and_says_why_imports_are_absent(client):
    SuiteFactory(name="golden-path")
    SuiteFactory(name="unit-tests", origin=Suite.Origin.IMPORT)
    user = UserFactory()
    user.groups.add(Group.objects.get_or_create(name="DevOps")[0])
    client.force_login(user)
    html = client.get("/schedules/").content.decode()
    assert ">golden-path</option>" in html and "unit-tests" not in html
    assert "an imported suite holds uploaded results and has nothing to run" in html


@pytest.mark.django_db
def test_only_devops_see_schedules(client):
    engineer = UserFactory()
    engineer.groups.add(Group.objects.get_or_create(name="Engineer")[0])
    client.force_login(engineer)
    assert client.get("/schedules/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_start_one_run_per_slot(tmp_path, golden_path, target, environment_for):
    environment_for(target, "staging")
    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="golden-path on staging",
        task=SCHEDULED_RUN_TASK,
        interval=every,
        kwargs=json.dumps({"suite": "golden-path", "environment": "staging", "every_s": 2}),
    )
    env = isolated_env(tmp_path)
    worker = start_worker(env, tmp_path / "worker.log")
    beats = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "dashboard",
                "beat",
                "-l",
                "info",
                "--pidfile=",
                "-s",
                str(tmp_path / f"beat{i}"),
            ],
            env=env,
            cwd=BASE_DIR,
            stdout=(tmp_path / f"beat{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    started = time.monotonic()
    try:
        time.sleep(9)
    finally:
        for beat in beats:
            stop_process(beat)
        elapsed = time.monotonic() - started
        time.sleep(1)
        stop_process(worker)
    runs = list(Run.objects.filter(trigger=Run.Trigger.SCHEDULE))
    fires = sum((tmp_path / f"beat{i}.log").read_text().count("Sending due task") for i in range(2))
    assert len(runs) >= 2  # the beats fired
    assert len(runs) < fires  # both beats fired the same slots, and each slot made one run
    assert len(runs) <= elapsed / 2 + 2  # one run per 2-second slot, not one per beat per slot
    assert len({run.request_key for run in runs}) == len(runs)
