"""A broker that refuses work: the user is told what to do, the operator's log says why.
A real gunicorn on a file-system broker whose queue folder became a file."""

import shutil

import httpx
import pytest

from runs.models import Run, RunStatus
from runs.services import NOT_DISPATCHED
from tests.conftest import subprocess_env
from tests.factories import EnvironmentFactory, SuiteFactory
from tests.test_api import bearer, user_with_role
from tests.webserver import gunicorn


@pytest.mark.django_db(transaction=True)
def test_it_tells_the_user_what_to_do_and_logs_the_path_when_the_broker_is_unwritable(tmp_path):
    headers = {"Authorization": bearer(user_with_role("Engineer"))["HTTP_AUTHORIZATION"]}
    SuiteFactory(name="web")
    EnvironmentFactory(name="staging")
    data = tmp_path / "data"
    env = subprocess_env(GOLDPATH_DATA_DIR=str(data), CELERY_BROKER_URL="filesystem://localhost/")
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, log) as base_url:
        queue = data / "broker" / "queue"
        shutil.rmtree(queue)
        queue.write_text("")  # the folder messages are written to is no folder any more
        response = httpx.post(
            f"{base_url}/api/v1/runs", headers=headers, json={"suite": "web", "environment": "staging"}
        )
    assert response.status_code == 503
    assert response.json() == {"detail": NOT_DISPATCHED}
    assert str(tmp_path) not in response.text
    run = Run.objects.get()
    assert (run.status, run.status_message) == (RunStatus.ERROR, NOT_DISPATCHED)
    logged = log.read_text()
    assert f"run {run.pk} not dispatched: the Celery broker at filesystem://localhost/ could not be reached" in logged
    assert str(queue) in logged
