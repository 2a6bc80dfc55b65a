"""Secure by default: headers, deploy checks, login limits, the database down, secrets."""

import json
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from runs.exporters.formats import FORMATS, export_run
from runs.models import Measurement, Result, Run
from runs.services import create_run
from tests.conftest import BASE_DIR, manage, subprocess_env, wait_for
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


@pytest.mark.django_db
def test_pages_send_security_headers(client):
    client.force_login(UserFactory(role="Manager"))
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_deploy_check_passes_with_production_settings():
    env = subprocess_env(
        GOLDPATH_HTTPS="1",
        GOLDPATH_SECRET_KEY=secrets.token_urlsafe(60),
        GOLDPATH_ALLOWED_HOSTS="goldpath.example.com",
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_it_limits_failed_logins_per_user_name(settings):
    settings.LOGIN_RATE = "3/15m"
    UserFactory(username="target-user")
    client = Client(REMOTE_ADDR="10.0.0.7")
    statuses = [
        client.post("/accounts/login/", {"username": "target-user", "password": "guess"}).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    # even the right password waits now: the limit is on the name, not on the guesser
    right = client.post("/accounts/login/", {"username": "target-user", "password": PASSWORD})
    assert right.status_code == 429


@pytest.mark.django_db
def test_successful_logins_do_not_count_against_the_limit(settings):
    settings.LOGIN_RATE = "3/15m"
    UserFactory(username="busy")
    for _ in range(5):
        client = Client()
        assert client.post("/accounts/login/", {"username": "busy", "password": PASSWORD}).status_code == 302


def test_pages_answer_503_while_the_database_is_down(tmp_path):
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='dashboard.settings';"
        "from dashboard.installation import prepare; prepare(); django.setup();"
        "from django.test import Client; from django.test.utils import setup_test_environment;"
        "setup_test_environment(); r = Client().post('/accounts/login/', {'username': 'a', 'password': 'b'});"
        "print(r.status_code); print(r.headers.get('Retry-After')); print(r.content.decode())"
    )
    env = subprocess_env(DATABASE_URL="postgres://nobody@127.0.0.1:1/goldpath", GOLDPATH_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True)
    status, retry_after, body = result.stdout.split("\n", 2)
    assert (status, retry_after) == ("503", "30")
    assert "can't reach its database" in body and "Traceback" not in body


@pytest.mark.django_db(transaction=True)
def test_secrets_never_reach_stored_rows_exports_or_logs(celery_worker, golden_path, target, environment_for):
    """The client secret and every issued JWT stay out of everything Goldpath keeps."""
    run = wait_for(create_run(golden_path, environment_for(target)))
    assert run.verdict == "PASS"
    stored = json.dumps(
        [
            list(Result.objects.filter(run=run).values_list("message", "evidence")),
            list(Measurement.objects.filter(run=run).values_list("note", "samples")),
            list(Run.objects.filter(pk=run.pk).values_list("status_message", "base_url")),
        ]
    )
    exports = [export_run(run, fmt)[0] for fmt in FORMATS]
    log = celery_worker.log_path.read_text()
    for text in [stored, *exports, log]:
        assert target.client_secret not in text
        assert "eyJ" not in text  # no JWT (their header always starts so)
