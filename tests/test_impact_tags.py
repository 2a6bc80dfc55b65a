"""DevOps set a suite's impact tags (name, MRR, severity) on its page: each save is a new
version of the suite, validated as a suite file is, with who made it; other roles get 403."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from runs.models import Suite
from runs.suites import load_suite_text
from tests.factories import EnvironmentFactory, UserFactory

pytestmark = pytest.mark.django_db

SUITE = """\
name: shop
title: Shop
impact_tags:
  - {name: Checkout, mrr: 120000, severity: high}
  - {name: Search, mrr: 5000, severity: low}
categories: [{name: API, critical: true}]
checks:
  - id: cart
    name: Cart answers
    category: API
    impact: [Checkout, Search]
    steps:
      - request: {path: /cart}
"""
URL = "/suites/shop/tags/"


def member(role: str | None) -> Client:
    user = UserFactory(username=(role or "nobody").lower(), password=None)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def shop() -> Suite:
    return load_suite_text(SUITE, "shop.yaml")


@pytest.fixture
def devops() -> Client:
    return member("DevOps")


def tags_form(*rows: tuple[str, str, str, str], delete: tuple[int, ...] = ()) -> dict[str, str]:
    """The formset as the page posts it: (original name, name, MRR, severity) per row."""
    data = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": "0"}
    for i, (original, name, mrr, severity) in enumerate(rows):
        data |= {f"form-{i}-original": original, f"form-{i}-name": name, f"form-{i}-mrr": mrr}
        data |= {f"form-{i}-severity": severity, f"form-{i}-description": ""}
        if i in delete:
            data[f"form-{i}-DELETE"] = "on"
    return data


def current(suite: Suite) -> dict:
    suite.refresh_from_db()
    return suite.current_version.definition


def test_devops_change_a_tags_mrr_and_severity_as_a_new_version_by_them(shop, devops):
    response = devops.post(
        URL, tags_form(("Checkout", "Checkout", "250000", "high"), ("Search", "Search", "5000", "medium"))
    )
    assert response.status_code == 302 and response["Location"] == "/suites/shop/"
    version = Suite.objects.get(name="shop").current_version
    assert (version.number, version.created_by.username) == (2, "devops")
    assert [(t["name"], t["mrr"], t["severity"]) for t in version.definition["impact_tags"]] == [
        ("Checkout", 250000, "high"),
        ("Search", 5000, "medium"),
    ]
    assert shop.impact_tags.get(name="Checkout").mrr == 250000
    page = devops.get("/suites/shop/").content.decode()
    assert "$250,000" in page and "impact tags edited by devops" in page


def test_a_renamed_tag_stays_on_its_checks_and_a_removed_one_leaves_them(shop, devops):
    form = tags_form(
        ("Checkout", "Payments", "120000", "high"), ("Search", "Search", "5000", "low"), ("", "Chat", "900", "low")
    )
    form["form-1-DELETE"] = "on"
    assert devops.post(URL, form).status_code == 302
    definition = current(shop)
    assert [t["name"] for t in definition["impact_tags"]] == ["Payments", "Chat"]
    assert definition["checks"][0]["impact"] == ["Payments"]
    assert list(shop.test_cases.get().impact_tags.values_list("name", flat=True)) == ["Payments"]


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ((("Checkout", "Checkout", "-1", "high"),), "greater than or equal to 0"),
        ((("Checkout", "Checkout", "10", "urgent"),), "Select a valid choice"),
        ((("Checkout", "Checkout", "10", "high"), ("Search", "Checkout", "10", "low")), "Checkout"),
    ],
)
def test_invalid_tags_are_refused_with_the_reason_and_store_nothing(shop, devops, rows, error):
    response = devops.post(URL, tags_form(*rows))
    assert response.status_code == 200 and error in response.content.decode()
    assert current(shop)["impact_tags"][0]["mrr"] == 120000
    assert shop.versions.count() == 1


def test_the_form_shows_the_current_tags(shop, devops):
    page = devops.get(URL).content.decode()
    assert 'value="Checkout"' in page and 'value="120000"' in page


@pytest.mark.parametrize("role", ["Engineer", "Manager", None])
def test_other_roles_may_not_see_or_change_tags(shop, role):
    client = member(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, tags_form(("Checkout", "Checkout", "1", "low"))).status_code == 403
    assert shop.versions.count() == 1
    assert 'href="/suites/shop/tags/"' not in client.get("/suites/shop/").content.decode()


def test_the_suite_page_links_devops_to_the_tags_form(shop, devops):
    assert 'href="/suites/shop/tags/"' in devops.get("/suites/shop/").content.decode()


def test_a_post_without_the_csrf_token_is_refused(shop):
    client = Client(enforce_csrf_checks=True)
    user = UserFactory(username="ops", password=None)
    user.groups.add(Group.objects.get_or_create(name="DevOps")[0])
    client.force_login(user)
    assert client.post(URL, tags_form(("Checkout", "Checkout", "1", "low"))).status_code == 403
    assert shop.versions.count() == 1


def test_an_import_suite_has_no_tags_to_edit(devops):
    Suite.objects.create(name="unit", title="Unit", origin=Suite.Origin.IMPORT)
    assert devops.get("/suites/unit/tags/").status_code == 404


@pytest.mark.parametrize("path", ["/environments/new/", "/environments/staging/", "/schedules/", URL, "/alerts/"])
@pytest.mark.parametrize("role", ["Engineer", "Manager", None])
def test_only_devops_reach_the_configuration_pages(shop, devops, path, role):
    EnvironmentFactory(name="staging")
    assert devops.get(path).status_code == 200
    assert member(role).get(path).status_code == 403


def test_loading_the_unchanged_file_keeps_the_dashboard_edit_current(shop, devops):
    devops.post(URL, tags_form(("Checkout", "Checkout", "250000", "high"), ("Search", "Search", "5000", "low")))
    edited = current(shop)
    load_suite_text(SUITE, "shop.yaml")  # a deploy's load_suites, the file as it was
    assert current(shop) == edited
    assert shop.impact_tags.get(name="Checkout").mrr == 250000 and shop.source_path == "shop.yaml"
    devops.post(URL, tags_form(("Checkout", "Checkout", "300000", "high"), ("Search", "Search", "5000", "low")))
    load_suite_text(SUITE, "shop.yaml")  # an edit of an edit still starts from the file
    assert shop.impact_tags.get(name="Checkout").mrr == 300000


def test_a_changed_file_wins_over_the_dashboard_edit(shop, devops):
    devops.post(URL, tags_form(("Checkout", "Checkout", "250000", "high"), ("Search", "Search", "5000", "low")))
    load_suite_text(SUITE.replace("mrr: 5000", "mrr: 7000"), "shop.yaml")
    assert [(t["name"], t["mrr"]) for t in current(shop)["impact_tags"]] == [("Checkout", 120000), ("Search", 7000)]
