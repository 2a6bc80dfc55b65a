"""Request bodies are judged from their headers before any of them is read: over a real
socket to a real gunicorn, the client announces gigabytes, sends none of them, and still
gets its answer (a server that read first would wait for the body and never answer)."""

import json

import pytest
from django.test import Client

from tests.conftest import subprocess_env
from tests.test_api import bearer, user_with_role
from tests.webserver import gunicorn, raw_request

GB = 1_000_000_000
MB = 1_000_000
BOUNDARY = "goldpath-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
JUNIT = b'<testsuite name="unit"><testcase classname="m" name="t" time="0.1"/></testsuite>'
HANG_GUARD_S = 15  # not a timing assertion: a server waiting for the body would hit it

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    with gunicorn(subprocess_env(), tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as base_url:
        yield base_url


def token_header(role: str) -> dict[str, str]:
    return {"Authorization": bearer(user_with_role(role))["HTTP_AUTHORIZATION"]}


def announce(server: str, path: str, length: int, headers: dict[str, str]) -> tuple[int, dict]:
    """POST headers announcing ``length`` bytes of body, and send none of it."""
    status, answer = raw_request(
        server, f"POST {path}", {**MULTIPART, **headers, "Content-Length": str(length)}, timeout=HANG_GUARD_S
    )
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1] or b"{}")


def test_it_refuses_a_managers_3_gb_import_before_reading_a_byte_of_it(server):
    status, answer = announce(server, "/api/v1/runs/import", 3 * GB, token_header("Manager"))
    assert (status, answer) == (403, {"detail": "Your role may not run."})


def test_it_answers_413_to_an_engineers_250_mb_import_before_reading_it(server):
    status, answer = announce(server, "/api/v1/runs/import", 250 * MB, token_header("Engineer"))
    assert status == 413
    assert answer["detail"] == (
        "the upload is 250,000,000 bytes; a file here is at most 209,715,200 bytes (GOLDPATH_IMPORT_MAX_BYTES)"
    )


def test_it_answers_413_to_a_huge_form_post_before_the_csrf_check_reads_it(server):
    status, answer = raw_request(
        server, "POST /accounts/login/", {**MULTIPART, "Content-Length": str(3 * GB)}, timeout=HANG_GUARD_S
    )
    assert status == 413
    assert b"the request body is 3,000,000,000 bytes; this page takes at most 2,621,440" in answer


def test_it_answers_411_to_a_chunked_upload(server):
    chunk = b"%x\r\n%s\r\n" % (len(JUNIT), JUNIT)  # the first chunk of an endless body
    status, answer = raw_request(
        server,
        "POST /api/v1/runs/import",
        {**MULTIPART, **token_header("Engineer"), "Transfer-Encoding": "chunked"},
        chunk,
        timeout=HANG_GUARD_S,
    )
    assert status == 411
    assert b"send the body with a Content-Length" in answer


def test_it_answers_431_to_more_headers_than_gunicorn_conf_allows(server):
    many = {f"X-Padding-{n}": "x" for n in range(60)}
    assert raw_request(server, "GET /accounts/login/", many, timeout=HANG_GUARD_S)[0] == 431


def test_it_checks_the_role_of_a_session_upload_before_reading_it():
    client = Client()
    client.force_login(user_with_role("Manager"))
    response = client.post("/api/v1/suites", data=b"", content_type=MULTIPART["Content-Type"], CONTENT_LENGTH=str(GB))
    assert response.status_code == 403
    assert response.json() == {"detail": "Your role may not configure."}
