"""The pages through Django's test client: login, the runs list, a run's report."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from runs.models import RunStatus
from runs.services import create_run
from tests.conftest import wait_for
from tests.factories import CategoryFactory, ResultFactory, RunFactory, SuiteFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory

PASSWORD = "correct horse battery staple"
LOGIN_URL = "/accounts/login/"
RUNS_URL = "/runs/"


@pytest.fixture(autouse=True)
def no_login_failures_counted():
    """Failed logins are counted in the cache (a rate limit); start each test with none."""
    cache.clear()


@pytest.fixture
def user(db):
    return UserFactory(username="ops", role="Manager")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def run_links(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<a href="/runs/(\d+)/">', response.content.decode())]


@pytest.mark.parametrize("path", ["/", "/runs/", "/runs/1/"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={path}"


def test_it_renders_the_login_page(client, db):
    response = client.get(LOGIN_URL)
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_it_shows_an_error_for_a_wrong_password(client, user):
    response = client.post(LOGIN_URL, {"username": "ops", "password": "wrong"})
    assert response.status_code == 200
    assert b"Your username and password didn't match" in response.content
    assert "_auth_user_id" not in client.session


def test_it_lands_on_the_overview_after_logging_in(client, user):
    response = client.post(LOGIN_URL, {"username": "ops", "password": PASSWORD}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert b"<h1>Overview</h1>" in response.content
    assert b'<span class="who">ops</span>' in response.content


def test_it_returns_to_the_page_asked_for_after_logging_in(client, user):
    response = client.post(LOGIN_URL, {"username": "ops", "password": PASSWORD, "next": RUNS_URL}, follow=True)
    assert response.redirect_chain == [(RUNS_URL, 302)]
    assert b"<h1>Runs</h1>" in response.content


def test_it_lists_runs_newest_first_25_to_a_page(signed_in):
    now = timezone.now()
    # Each run is older than the one made before it, so newest first is by creation time, not by id.
    runs = [RunFactory(created=now - timedelta(minutes=i)) for i in range(30)]
    first = signed_in.get(RUNS_URL)
    assert run_links(first) == [r.pk for r in runs[:25]]
    assert b"Page 1 of 2 (30 in all)" in first.content
    second = signed_in.get(f"{RUNS_URL}?page=2")
    assert run_links(second) == [r.pk for r in runs[25:]]


def test_it_says_how_to_start_when_there_are_no_runs(signed_in):
    response = signed_in.get(RUNS_URL)
    assert b"No runs yet." in response.content
    assert b"run_suite golden-path" in response.content


@pytest.mark.django_db(transaction=True)
def test_it_reports_a_run_from_the_worker(celery_worker, golden_path, target_factory, environment_for, client):
    client.force_login(UserFactory(role="Manager"))
    server = target_factory(["close-after-send"])
    run = wait_for(create_run(golden_path, environment_for(server, name="staging")))
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()

    assert '<span class="verdict verdict-partial-success">PARTIAL SUCCESS</span>' in html
    assert f"<dd>staging (<code>{server.base_url}</code>)</dd>" in html
    assert "<dd>$670,000 MRR in scope</dd>" in html
    rows = re.findall(
        r'<tr><td>([^<]+?)(?: <span class="tag">critical</span>)?</td>'
        r'<td class="num">(\d+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>',
        html,
    )
    assert rows == [
        ("Priority 1 Critical", "1", "0", "1"),
        ("WebSocket Events", "1", "0", "1"),
        ("Message Flow", "3", "2", "1"),
        ("Critical Path", "6", "6", "0"),
        ("Connectivity", "1", "1", "0"),
    ]
    assert "Failing tests (3)" in html and "Passing tests (9)" in html
    assert html.count("closed by the server with code 1000") >= 3
    for measurement in run.measurements.all():
        assert f"<td>{measurement.name}</td>" in html
        assert f"&lt; {measurement.target:.0f} ms" in html
    measured = run.measurements.get(key="api_response_time")
    assert f"{measured.p50:.1f} ms" in html and f"{measured.p95:.1f} ms" in html
    not_measured = '<span class="muted">not measured: step 5 receive: connection &#x27;ws&#x27; closed by the server'
    assert html.count(not_measured) == 3
    assert "Overall status:" in html and "data-progress-url" not in html


def test_it_shows_a_factory_built_run(signed_in):
    critical = CategoryFactory(name="Connectivity", critical=True)
    run = RunFactory(suite=critical.suite, status=RunStatus.FINISHED, verdict="FAIL", total=1, failed=1)
    ResultFactory(
        run=run,
        test_case=CheckFactory(category=critical, name="WebSocket Connection"),
        outcome="failed",
        message="handshake refused with HTTP 503",
    )
    html = signed_in.get(run.get_absolute_url()).content.decode()
    assert '<span class="verdict verdict-fail">FAIL</span>' in html
    assert 'Connectivity <span class="tag">critical</span>' in html
    assert "handshake refused with HTTP 503" in html
    assert "No measurements in this run." in html


FAILED_RESULT = '<li class="result result-failed">'


def test_a_run_page_lists_the_first_50_failing_tests_and_links_to_all_of_them(signed_in):
    category = CategoryFactory(name="Unit")
    run = RunFactory(suite=category.suite, status=RunStatus.FINISHED, verdict="FAIL", total=55, failed=55)
    for i in range(55):
        check = CheckFactory(category=category, name=f"Check {i}", order=i)
        ResultFactory(run=run, test_case=check, outcome="failed", message=f"boom {i}.")
    html = signed_in.get(run.get_absolute_url()).content.decode()
    assert "Failing tests (55)" in html and html.count(FAILED_RESULT) == 50
    assert f'5 more not listed here — <a href="/runs/{run.pk}/results/?outcome=failing">see all 55</a>' in html
    rest = signed_in.get(f"/runs/{run.pk}/results/?outcome=failing&page=2").content.decode()
    assert rest.count(FAILED_RESULT) == 5 and "boom 54." in rest and "boom 49." not in rest
    assert "Page 2 of 2 (55 in all)" in rest
    assert signed_in.get(f"/runs/{run.pk}/results/?outcome=passed").content.count(FAILED_RESULT.encode()) == 0


def test_a_run_page_lists_the_25_categories_with_most_failures_and_sums_up_the_others(client, db):
    client.force_login(UserFactory(username="engineer", role="Engineer"))
    suite = SuiteFactory(name="many")
    run = RunFactory(suite=suite, status=RunStatus.FINISHED, verdict="FAIL", total=30, failed=2, passed=28)
    for i in range(30):
        check = CheckFactory(category=CategoryFactory(suite=suite, name=f"Area {i:02d}", order=i), order=i)
        ResultFactory(run=run, test_case=check, outcome="failed" if i in (27, 28) else "passed")
    html = client.get(run.get_absolute_url()).content.decode()
    listed = [f"Area {i:02d}" for i in (*range(23), 27, 28)]
    assert re.findall(r'<tr(?: class="muted")?><td>([^<]+)</td>', html) == [*listed, "5 more categories"]
    options = re.findall(r'<option value="\d+">([^<]+)</option>', html)  # "Rerun category" offers those listed
    assert options == listed


def test_the_compare_page_lists_50_new_failures_and_counts_the_rest(signed_in):
    category = CategoryFactory(name="Unit")
    before, after = (RunFactory(suite=category.suite, status=RunStatus.FINISHED) for _ in range(2))
    for i in range(60):
        check = CheckFactory(category=category, name=f"Check {i}", order=i)
        ResultFactory(run=before, test_case=check, outcome="passed")
        ResultFactory(run=after, test_case=check, outcome="failed")
    html = signed_in.get(f"/compare/?a={before.pk}&b={after.pk}").content.decode()
    assert "New failures (60)" in html and "<li>Check 49</li>" in html and "<li>Check 50</li>" not in html
    assert f'10 more not listed here — <a href="/runs/{after.pk}/results/?outcome=failing">' in html


def test_it_follows_a_queued_run_live(signed_in):
    run = RunFactory(expected=12)
    html = signed_in.get(run.get_absolute_url()).content.decode()
    assert f'data-progress-url="/runs/{run.pk}/progress/"' in html
    assert "0 of 12 checks done · waiting for a worker" in html
    assert "No results yet." in html
    assert "Overall status:" not in html


def test_it_answers_404_for_an_unknown_run(signed_in):
    assert signed_in.get("/runs/999999/").status_code == 404


def test_it_refuses_logout_by_get(signed_in):
    assert signed_in.get("/accounts/logout/").status_code == 405
    assert signed_in.get("/").status_code == 200


def test_it_logs_out_by_post(signed_in):
    response = signed_in.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == LOGIN_URL
    assert signed_in.get("/").status_code == 302


def test_it_refuses_a_login_without_a_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN_URL, {"username": "ops", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
