"""Every parameter of every GET endpoint of the API, read from its OpenAPI schema, given
hostile values one at a time: none may end in a server error, and numbers out of range
are refused with 422 and the reason."""

from urllib.parse import quote

import pytest
from django.test import Client

from tests.factories import CategoryFactory, RunFactory, SuiteFactory
from tests.factories import TestCaseFactory as CheckFactory
from tests.test_api import bearer, user_with_role

API = "/api/v1"
HOSTILE = [
    "99999999999999999999",  # past every integer column
    "9223372036854775807",  # the largest bigint: an offset that overflows once the limit is added
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "0",
    "1e3",
    "",
    "\x00",  # PostgreSQL refuses NUL in any string
    "a" * 5000,
    "%",
    "ä",
    "null",
]


@pytest.fixture
def client(db):
    return Client(raise_request_exception=False, **bearer(user_with_role("DevOps")))


def valid_values() -> dict[str, str]:
    check = CheckFactory(node_id="login", category=CategoryFactory(suite=SuiteFactory(name="web")))
    run = RunFactory(suite=check.suite, status="finished")
    return {"run_id": str(run.pk), "test_case_id": str(check.pk), "name": "web"}


def hostile_urls(schema: dict, valid: dict[str, str]):
    """(URL, parameter, value) for each GET parameter and each hostile value."""
    for path, operations in schema["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            for value in HOSTILE:
                url = path
                for name, default in valid.items():
                    url = url.replace(f"{{{name}}}", quote(value, safe="") if name == parameter["name"] else default)
                if parameter["in"] == "query":
                    url += f"?{parameter['name']}={quote(value, safe='')}"
                yield url, parameter, value


def test_it_answers_no_server_error_to_hostile_get_parameters(client):
    schema = client.get(f"{API}/openapi.json").json()
    failures = []
    tried = 0
    for url, _parameter, _value in hostile_urls(schema, valid_values()):
        tried += 1
        response = client.get(url)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {url[:120]}")
    assert tried > 100
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("query", ["offset=99999999999999999999", "offset=9223372036854775807"])
def test_it_refuses_a_runs_page_out_of_range_with_422_and_the_reason(client, query):
    response = client.get(f"{API}/runs?{query}")
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "less_than_equal" and error["msg"].startswith("Input should be less than or equal to")
