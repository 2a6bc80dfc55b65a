"""The Suites and Environments pages and the suites API, as their users use them."""

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from runs import tokens
from runs.models import Environment, Suite
from runs.suites import load_suite_text
from tests.factories import CategoryFactory, EnvironmentFactory, RunFactory, SuiteFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory

pytestmark = pytest.mark.django_db

SUITE = """\
name: shop
title: Shop
impact_tags: [{name: Checkout, mrr: 120000, severity: high}]
categories: [{name: API, critical: true}]
checks:
  - id: cart
    name: Cart answers
    category: API
    impact: [Checkout]
    steps:
      - request: {path: /cart}
        expect: {json: {$.items: {type: array}}}
      - connect: {path: /ws}
      - ping:
"""


def user(role: str | None = None):
    member = UserFactory(password=None)
    if role:
        member.groups.add(Group.objects.get_or_create(name=role)[0])
    return member


@pytest.fixture
def devops(client):
    client.force_login(user("DevOps"))
    return client


@pytest.fixture
def manager(client):
    client.force_login(user("Manager"))
    return client


def test_the_suites_page_lists_each_suite_with_its_version_and_mrr(manager):
    load_suite_text(SUITE, "shop.yaml")
    SuiteFactory(name="unit-tests", origin=Suite.Origin.IMPORT)
    html = manager.get("/suites/").content.decode()
    assert '<a href="/suites/shop/">Shop</a>' in html
    assert "probe suite" in html and "import suite" in html
    assert "v1 <code" in html and "$120,000" in html
    assert "Load suite files again" not in html  # a manager cannot reload


def test_an_imported_suite_of_many_categories_lists_them_50_to_a_page(manager):
    suite = SuiteFactory(name="unit-tests", origin=Suite.Origin.IMPORT)
    for i in range(55):
        CheckFactory(category=CategoryFactory(suite=suite, name=f"pkg{i:02d}", order=i), suite=suite)
    listing = manager.get("/suites/").content.decode()
    assert '<td class="num">55</td>\n      <td class="num">55</td>' in listing  # checks, categories
    first = manager.get("/suites/unit-tests/").content.decode()
    assert "<td>pkg49</td>" in first and "<td>pkg50</td>" not in first and "Page 1 of 2 (55 in all)" in first
    assert "<td>pkg54</td>" in manager.get("/suites/unit-tests/?page=2").content.decode()


def test_a_suite_page_shows_its_checks_steps_tags_versions_and_source(manager):
    suite = load_suite_text(SUITE, "shop.yaml")
    load_suite_text(SUITE.replace("Cart answers", "Cart answers fast"), "shop.yaml")
    RunFactory(suite=suite, version=suite.versions.get(number=1))
    html = manager.get("/suites/shop/").content.decode()
    assert "Cart answers fast" in html
    assert "<code>request</code> GET /cart" in html and "<code>connect</code> /ws as ws" in html
    assert "Checkout" in html and "$120,000" in html and "critical" in html
    assert 'v2</a> <span class="tag tag-ok">current</span>' in html
    assert "name: shop" in html  # the source of the current version
    old = manager.get("/suites/shop/versions/1/").content.decode()
    assert "version 1 (not current)" in old and "Cart answers</a>" in old
    assert manager.get("/suites/shop/versions/9/").status_code == 404
    assert manager.get("/suites/nope/").status_code == 404


@pytest.mark.parametrize(
    "broken",
    ["name: broken\ncategories: [{name: A}]\nchecks: [{id: x, name: X, category: A, steps: [{reqest: {}}]}]\n"],
)
def test_the_suites_page_shows_files_that_do_not_validate(manager, tmp_path, broken):
    (tmp_path / "broken.yaml").write_text(broken)
    with override_settings(GOLDPATH_SUITES_DIR=tmp_path):
        html = manager.get("/suites/").content.decode()
    assert "Files that do not validate" in html
    assert "broken.yaml" in html and "suite broken keeps its current version" in html
    assert "line 3: checks[0].steps[0]: a step needs one of: request" in html


def test_the_suites_page_sees_a_file_fixed_or_broken_since_the_last_visit(manager, tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(SUITE.replace("name: shop", "name: shop\nnonsense: 1"))
    with override_settings(GOLDPATH_SUITES_DIR=tmp_path):
        assert "unknown key &#x27;nonsense&#x27;" in manager.get("/suites/").content.decode()
        path.write_text(SUITE)
        assert "Files that do not validate" not in manager.get("/suites/").content.decode()
        path.write_text(SUITE + "oops: [\n")
        assert "invalid YAML" in manager.get("/suites/").content.decode()


def test_devops_reload_the_suite_files(devops, tmp_path):
    (tmp_path / "shop.yaml").write_text(SUITE)
    (tmp_path / "broken.yaml").write_text("name: broken\n")
    with override_settings(GOLDPATH_SUITES_DIR=tmp_path):
        response = devops.post("/suites/reload/", follow=True)
    html = response.content.decode()
    assert "shop: version 1 is current." in html
    assert "broken.yaml was not loaded (its suite keeps its current version)" in html
    assert Suite.objects.get(name="shop").current_version.number == 1


def test_the_environments_page_shows_variables_by_name_only(manager):
    EnvironmentFactory(name="staging", variables={"client_id": "shop", "client_secret": "${env.STAGING_SECRET}"})
    html = manager.get("/environments/").content.decode()
    assert "<code>client_secret = ${env.STAGING_SECRET}</code>" in html
    assert "Edit</a>" not in html  # managers read


def test_devops_edit_an_environment_and_its_variables(devops):
    EnvironmentFactory(name="staging", base_url="http://127.0.0.1:9")
    form = devops.get("/environments/staging/").content.decode()
    assert 'name="variables_text"' in form and "${env.NAME}" in form
    response = devops.post(
        "/environments/staging/",
        {
            "base_url": "https://staging.example.com",
            "ws_url": "",
            "allowed_hosts": "staging.example.com, idp.example.com",
            "variables_text": (
                "# the shop's client\nclient_id = shop\nclient_secret = ${env.STAGING_SECRET}\nretries = 3\nbeta = true"
            ),
        },
    )
    assert response.status_code == 302
    environment = Environment.objects.get(name="staging")
    assert environment.base_url == "https://staging.example.com"
    assert environment.variables == {
        "client_id": "shop",
        "client_secret": "${env.STAGING_SECRET}",
        "retries": 3,
        "beta": True,
    }
    assert environment.allowed_host_set() == {"staging.example.com", "idp.example.com"}


def test_devops_are_warned_of_a_secret_workers_will_not_let_suites_read(devops, settings):
    settings.GOLDPATH_SUITE_ENV = ["SHOP_*"]
    EnvironmentFactory(name="staging", base_url="http://127.0.0.1:9")
    fields = {"base_url": "http://127.0.0.1:9", "ws_url": "", "allowed_hosts": ""}
    text = "token = ${env.SHOP_TOKEN}\nsecret = ${env.STAGING_SECRET}\ndb = ${env.DATABASE_URL}"
    html = devops.post("/environments/staging/", {**fields, "variables_text": text}, follow=True).content.decode()
    assert "will not let suites read STAGING_SECRET, DATABASE_URL" in html and "GOLDPATH_SUITE_ENV" in html
    html = devops.post(
        "/environments/staging/", {**fields, "variables_text": "token = ${env.SHOP_TOKEN}"}, follow=True
    ).content.decode()
    assert "will not let suites read" not in html


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("client_secret = ${uuid}", "only ${env.NAME} references may appear in a value"),
        ("not a line", "Line 1: write NAME = value."),
        ("1abc = x", "is not a variable name"),
    ],
)
def test_an_environment_refuses_bad_variables(devops, text, error):
    EnvironmentFactory(name="staging")
    response = devops.post("/environments/staging/", {"base_url": "http://127.0.0.1:9", "variables_text": text})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Environment.objects.get(name="staging").variables == {}


def test_devops_add_an_environment(devops):
    response = devops.post(
        "/environments/new/", {"name": "prod", "base_url": "https://example.com", "variables_text": ""}
    )
    assert response.status_code == 302
    assert Environment.objects.get(name="prod").effective_ws_url == "wss://example.com"


# -- API -----------------------------------------------------------------------------------


def bearer(role: str) -> dict[str, str]:
    _, plain = tokens.create_token(user(role), "ci")
    return {"HTTP_AUTHORIZATION": f"Bearer {plain}"}


def test_the_api_lists_suites_with_their_version_checks_and_tags(client):
    load_suite_text(SUITE, "shop.yaml")
    [suite] = client.get("/api/v1/suites", **bearer("Manager")).json()["items"]
    assert suite["name"] == "shop" and suite["origin"] == "probe"
    assert suite["version"]["number"] == 1 and len(suite["version"]["digest"]) == 64
    assert (suite["check_count"], suite["category_count"], suite["version_count"]) == (1, 1, 1)
    assert suite["impact_tags"] == [{"name": "Checkout", "mrr": 120000, "severity": "high"}]
    assert suite["url"].endswith("/suites/shop/")
    shop = client.get("/api/v1/suites/shop", **bearer("Manager")).json()
    assert [check["node_id"] for check in shop["checks"]["items"]] == ["cart"] and shop["categories"] == ["API"]


def test_devops_upload_a_suite_file_and_a_change_makes_a_new_version(client):
    upload = SimpleUploadedFile("shop.yaml", SUITE.encode(), content_type="application/yaml")
    response = client.post("/api/v1/suites", {"file": upload}, **bearer("DevOps"))
    assert response.status_code == 201 and response.json()["version"]["number"] == 1
    again = SimpleUploadedFile("shop.yaml", SUITE.replace("Cart answers", "Cart").encode())
    assert client.post("/api/v1/suites", {"file": again}, **bearer("DevOps")).json()["version"]["number"] == 2
    assert Suite.objects.get(name="shop").current_version.created_by is not None


def test_an_uploaded_file_that_does_not_validate_gets_400_with_every_problem(client):
    load_suite_text(SUITE, "shop.yaml")
    bad = SUITE.replace("{path: /cart}", "{path: /cart, expect_staus: 200}").replace("category: API", "category: Nope")
    upload = SimpleUploadedFile("shop.yaml", bad.encode())
    response = client.post("/api/v1/suites", {"file": upload}, **bearer("DevOps"))
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "the suite file does not validate; nothing changed"
    assert "shop.yaml line 11: checks[0].steps[0].request: unknown key 'expect_staus'" in body["problems"]
    assert Suite.objects.get(name="shop").versions.count() == 1


def test_an_upload_is_refused_when_too_large_not_text_or_named_like_an_import_suite(client):
    headers = bearer("DevOps")
    big = SimpleUploadedFile("big.yaml", b"#" * (2 * 1024 * 1024 + 1))
    assert client.post("/api/v1/suites", {"file": big}, **headers).status_code == 413
    binary = SimpleUploadedFile("x.yaml", b"\xff\xfe\x00")
    assert (
        client.post("/api/v1/suites", {"file": binary}, **headers).json()["detail"]
        == "the suite file is not UTF-8 text"
    )
    SuiteFactory(name="shop", origin=Suite.Origin.IMPORT)
    clash = client.post("/api/v1/suites", {"file": SimpleUploadedFile("shop.yaml", SUITE.encode())}, **headers)
    assert clash.status_code == 409 and "holds imported CI results" in clash.json()["detail"]


def test_only_devops_may_upload_a_suite(client):
    upload = SimpleUploadedFile("shop.yaml", SUITE.encode())
    response = client.post("/api/v1/suites", {"file": upload}, **bearer("Engineer"))
    assert response.status_code == 403 and not Suite.objects.exists()
