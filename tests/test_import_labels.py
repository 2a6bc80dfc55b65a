"""An imported run says so wherever it is shown — its page, the public badge, the API and
every export — so CI's results are never taken for traffic Goldpath's workers measured."""

import csv
import io
import json
from xml.etree import ElementTree

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils.html import escape

from runs import tokens
from runs.exporters.formats import export_run
from runs.importers.service import import_results
from runs.models import Badge, Run, RunStatus
from tests.factories import CategoryFactory, ResultFactory, RunFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory

pytestmark = pytest.mark.django_db

JUNIT = b'<testsuite name="web"><testcase classname="cart" name="sums prices" time="0.1"/></testsuite>'


@pytest.fixture
def imported() -> Run:
    return import_results(io.BytesIO(JUNIT), suite_name="web-ci", environment_name="ci")


@pytest.fixture
def measured() -> Run:
    """A run of a probe suite, as a worker finishes it: one check passed."""
    run = RunFactory(status=RunStatus.FINISHED, verdict="PASS", total=1, passed=1)
    ResultFactory(run=run, test_case=CheckFactory(category=CategoryFactory(suite=run.suite)))
    return run


def test_the_run_page_says_an_import_was_not_measured_by_goldpath(client, imported, measured):
    client.force_login(UserFactory(role="Manager"))
    note = escape(Run.IMPORTED_NOTE)
    assert note in client.get(imported.get_absolute_url()).content.decode()
    assert note not in client.get(measured.get_absolute_url()).content.decode()


def test_the_badge_says_the_latest_run_was_imported(client, imported, measured):
    imported_badge = Badge.objects.create(environment=imported.environment, suite=imported.suite)
    measured_badge = Badge.objects.create(environment=measured.environment, suite=measured.suite)
    assert "PASS 100% (imported)" in client.get(f"/badge/{imported_badge.key}.svg").content.decode()
    assert "imported" not in client.get(f"/badge/{measured_badge.key}.svg").content.decode()


def test_the_api_says_whether_a_run_was_imported(imported, measured):
    engineer = UserFactory(password=None)
    engineer.groups.add(Group.objects.get_or_create(name="Engineer")[0])
    api = Client(HTTP_AUTHORIZATION=f"Bearer {tokens.create_token(engineer, 'tests')[1]}")
    assert api.get(f"/api/v1/runs/{imported.pk}").json()["imported"] is True
    assert api.get(f"/api/v1/runs/{measured.pk}").json()["imported"] is False
    items = api.get("/api/v1/runs").json()["items"]
    assert {item["id"]: item["imported"] for item in items} == {imported.pk: True, measured.pk: False}


def test_every_export_says_whether_the_run_was_imported(imported, measured):
    for run, expected in ((imported, True), (measured, False)):
        assert (Run.IMPORTED_NOTE in export_run(run, "md")[0]) is expected
        assert (escape(Run.IMPORTED_NOTE) in export_run(run, "html")[0]) is expected
        assert json.loads(export_run(run, "json")[0])["imported"] is expected
        rows = list(csv.DictReader(io.StringIO(export_run(run, "csv")[0])))
        assert {row["imported"] for row in rows} == {"yes" if expected else "no"}
        root = ElementTree.fromstring(export_run(run, "junit")[0])
        values = {p.get("value") for p in root.iter("property") if p.get("name") == "goldpath.imported"}
        assert values == {str(expected).lower()}
