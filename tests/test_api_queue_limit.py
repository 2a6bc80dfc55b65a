"""At most GOLDPATH_MAX_QUEUED_RUNS runs of a suite on an environment are queued or running
at once (issue 14 F10: one Engineer token queued 40 runs in 0.8 s and ten web reruns went
through in 0.6 s, each probing the environment for real). The API answers 429 with what to
do, the pages say it as an error, reruns count, a schedule skips its slot, and requests
racing for the last place get it once — on SQLite and on PostgreSQL alike."""

import logging
import threading
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client

from runs import tokens
from runs.models import Run, RunStatus
from runs.tasks import run_scheduled
from tests.factories import CategoryFactory, EnvironmentFactory, RunFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory

API = "/api/v1"
LIMIT = 3
FULL = f"{LIMIT} runs of web on staging are already queued or running: wait for one to finish"


@pytest.fixture
def pair(settings):
    """The suite "web" (two checks) and the environment "staging", with room for LIMIT runs."""
    settings.GOLDPATH_MAX_QUEUED_RUNS = LIMIT
    suite = CheckFactory.create_batch(2, category=CategoryFactory(suite__name="web"))[0].suite
    return suite, EnvironmentFactory(name="staging")


def member(role: str) -> UserFactory:
    user = UserFactory(password=None)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def token_client(role: str = "Engineer") -> Client:
    _, plain = tokens.create_token(member(role), "tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plain}")


def start(client: Client, **body: str):
    return client.post(
        f"{API}/runs", {"suite": "web", "environment": "staging", **body}, content_type="application/json"
    )


@pytest.mark.django_db
def test_the_api_answers_429_once_the_pair_is_full_and_accepts_again_when_a_run_ends(pair):
    api = token_client()
    assert [start(api).status_code for _ in range(LIMIT)] == [202] * LIMIT
    refused = start(api)
    assert (refused.status_code, refused.json()) == (429, {"detail": FULL})
    assert Run.objects.count() == LIMIT
    Run.objects.filter(pk=Run.objects.first().pk).update(status=RunStatus.FINISHED, verdict="PASS")
    assert start(api).status_code == 202


@pytest.mark.django_db
def test_a_retried_request_with_its_idempotency_key_gets_its_run_even_when_the_pair_is_full(pair):
    api = token_client()
    first = api.post(
        f"{API}/runs",
        {"suite": "web", "environment": "staging"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="ci-build-7",
    )
    for _ in range(LIMIT - 1):
        start(api)
    again = api.post(
        f"{API}/runs",
        {"suite": "web", "environment": "staging"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="ci-build-7",
    )
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])


@pytest.mark.django_db
def test_an_api_rerun_counts_and_is_refused_with_429(pair):
    suite, staging = pair
    parent = RunFactory(suite=suite, environment=staging, status=RunStatus.FINISHED, verdict="FAIL")
    RunFactory.create_batch(LIMIT - 1, suite=suite, environment=staging, status=RunStatus.RUNNING)
    api = token_client()
    assert (
        api.post(f"{API}/runs/{parent.pk}/rerun", {"scope": "all"}, content_type="application/json").status_code == 202
    )
    refused = api.post(f"{API}/runs/{parent.pk}/rerun", {"scope": "all"}, content_type="application/json")
    assert (refused.status_code, refused.json()) == (429, {"detail": FULL})


@pytest.mark.django_db
def test_the_pages_refuse_run_now_and_rerun_with_the_reason_as_an_error(pair):
    suite, staging = pair
    parent = RunFactory(suite=suite, environment=staging, status=RunStatus.FINISHED, verdict="FAIL")
    RunFactory.create_batch(LIMIT, suite=suite, environment=staging)  # queued
    web = Client()
    web.force_login(member("Engineer"))
    run_now = web.post("/run-now/", {"suite": suite.pk, "environment": staging.pk}, follow=True)
    rerun = web.post(f"/runs/{parent.pk}/rerun/", {"scope": "all"}, follow=True)
    for response in (run_now, rerun):
        flashes = [(m.level_tag, m.message) for m in response.context["messages"]]
        assert flashes == [("error", FULL)]
    assert rerun.redirect_chain[-1][0] == f"/runs/{parent.pk}/"
    assert Run.objects.count() == LIMIT + 1


@pytest.mark.django_db
def test_other_pairs_and_ended_runs_leave_room(pair):
    suite, staging = pair
    for status in (RunStatus.FINISHED, RunStatus.ERROR, RunStatus.CANCELLED):
        RunFactory.create_batch(2, suite=suite, environment=staging, status=status)
    RunFactory.create_batch(LIMIT, suite=suite, environment=EnvironmentFactory(name="prod"))
    RunFactory.create_batch(LIMIT, environment=staging)  # another suite
    api = token_client()
    assert [start(api).status_code for _ in range(LIMIT)] == [202] * LIMIT


@pytest.mark.django_db
def test_a_schedule_slot_of_a_full_pair_is_skipped_and_logged(pair, caplog):
    suite, staging = pair
    RunFactory.create_batch(LIMIT, suite=suite, environment=staging, status=RunStatus.RUNNING)
    with caplog.at_level(logging.WARNING, logger="runs.tasks"):
        run_scheduled("web", "staging", 60)  # what beat fires, run in this process
    assert f"schedule of web on staging: {FULL}" in caplog.messages
    assert not Run.objects.filter(trigger=Run.Trigger.SCHEDULE).exists()


@pytest.mark.django_db(transaction=True)
def test_requests_racing_for_the_last_places_get_them_once(pair, settings):
    """Ten API starts at the same moment, each in its own thread and database connection:
    the environment's row lock (PostgreSQL) or the immediate transaction (SQLite) lets the
    count and the insert of one request finish before the next one counts. The runs go to a
    queue no worker serves: the test session's worker would end them and free places."""
    settings.CELERY_TASK_DEFAULT_QUEUE = f"goldpath-unserved-{uuid.uuid4().hex}"
    clients = [token_client() for _ in range(10)]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def race(client: Client) -> None:
        try:
            barrier.wait()
            statuses.append(start(client).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202] * LIMIT + [429] * (len(clients) - LIMIT)
    assert Run.objects.filter(status=RunStatus.QUEUED).count() == LIMIT
