"""An import through the web either completes or stops itself with a reason before gunicorn
would kill its worker (issue 14, F2: a 1,000,000-case upload got a 500 after gunicorn's
30 s). The API's imports stop after GOLDPATH_WEB_IMPORT_SECONDS with a 413 that says to use
manage.py import_results; gunicorn.conf.py gives its workers 30 s more than that."""

import io
import runpy

import httpx
import pytest
from django.conf import settings

from runs.importers.service import ImportTooSlow, import_results
from runs.importers.store import BATCH
from tests.conftest import BASE_DIR, subprocess_env
from tests.factories import EnvironmentFactory
from tests.test_api import bearer, stored_rows, user_with_role
from tests.webserver import gunicorn

HANG_GUARD_S = 60  # not a timing assertion: only a hung server would reach it


def junit_of(cases: int) -> bytes:
    testcases = "".join(f'<testcase classname="c" name="t{i}" time="0.001"/>' for i in range(cases))
    return f'<testsuite name="s">{testcases}</testsuite>'.encode()


@pytest.mark.django_db
def test_an_import_past_its_time_limit_stops_before_its_next_batch_and_stores_nothing():
    before = stored_rows()
    with pytest.raises(ImportTooSlow) as refused:
        import_results(io.BytesIO(junit_of(BATCH + 1)), suite_name="ci", environment_name="ci", time_limit_s=0)
    assert str(refused.value) == (
        f"the import ran past the web's limit of 0 s (GOLDPATH_WEB_IMPORT_SECONDS) after {BATCH:,} test cases; "
        "import a file this large with manage.py import_results"
    )
    assert stored_rows() == before


@pytest.mark.django_db
def test_a_file_of_one_batch_always_completes():
    run = import_results(io.BytesIO(junit_of(BATCH)), suite_name="ci", environment_name="ci", time_limit_s=0)
    assert run.total == BATCH


@pytest.mark.parametrize("seconds", [None, "600"])
def test_gunicorns_timeout_is_the_web_import_limit_and_90_s(monkeypatch, seconds):
    if seconds is None:
        monkeypatch.delenv("GOLDPATH_WEB_IMPORT_SECONDS", raising=False)
        expected = settings.GOLDPATH_WEB_IMPORT_SECONDS  # the default, read the same way
    else:
        monkeypatch.setenv("GOLDPATH_WEB_IMPORT_SECONDS", seconds)
        expected = int(seconds)
    assert runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))["timeout"] == expected + 90


@pytest.mark.django_db(transaction=True)
def test_real_gunicorn_answers_413_with_the_reason_and_keeps_its_worker(django_db_setup, tmp_path):
    """A limit of 0 s stops every import of more than one batch: deterministic, whatever the
    machine's speed; the worker answers the next request (a killed one would not)."""
    EnvironmentFactory(name="ci")
    token = bearer(user_with_role("Engineer"))["HTTP_AUTHORIZATION"]
    before = stored_rows()
    env = subprocess_env(GOLDPATH_WEB_IMPORT_SECONDS="0")
    with gunicorn(env, tmp_path / "gunicorn.log") as base_url:
        response = httpx.post(
            f"{base_url}/api/v1/runs/import",
            headers={"Authorization": token},
            data={"suite": "unit", "environment": "ci"},
            files={"file": ("junit.xml", junit_of(BATCH + 1))},
            timeout=HANG_GUARD_S,
        )
        assert (response.status_code, response.json()) == (
            413,
            {
                "detail": f"the import ran past the web's limit of 0 s (GOLDPATH_WEB_IMPORT_SECONDS) after "
                f"{BATCH:,} test cases; import a file this large with manage.py import_results; nothing was imported"
            },
        )
        assert httpx.get(f"{base_url}/accounts/login/", timeout=HANG_GUARD_S).status_code == 200
    assert stored_rows() == before
    assert "WORKER TIMEOUT" not in (tmp_path / "gunicorn.log").read_text()
