"""The permission matrix: every page, action and API endpoint × every role (and, for the
API, × the session or an API token), then CSRF on every write.

The expectations are written out here, not read from runs/roles.py, so removing or
loosening a check there makes these tests fail. No test here dispatches to a broker: they
run in a rolled-back transaction, where ``on_commit`` (the dispatch) never fires, so a run
an allowed POST creates stays queued and disappears with the transaction.
"""

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from runs import tokens
from runs.models import ApiToken, Environment, Note, Result, Run, RunStatus, SuiteVersion
from tests.factories import CategoryFactory, EnvironmentFactory, ResultFactory, RunFactory, SuiteFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory

ANONYMOUS, MANAGER, ENGINEER, DEVOPS, SUPERUSER = "anonymous", "manager", "engineer", "devops", "superuser"
USERS = (MANAGER, ENGINEER, DEVOPS, SUPERUSER)
READ, EXPORT, RUN, RERUN, NOTES, TOKENS = "read", "export", "run", "rerun", "notes", "tokens"
CONFIGURE = "configure"

# What each role may do: the product's rules, restated (runs/roles.py's docstring and the brief).
MAY: dict[str, set[str]] = {
    ANONYMOUS: set(),
    MANAGER: {READ, EXPORT, TOKENS},
    DEVOPS: {READ, EXPORT, RUN, NOTES, TOKENS, CONFIGURE},
    ENGINEER: {READ, RUN, RERUN, NOTES, TOKENS},
    SUPERUSER: {READ, EXPORT, RUN, RERUN, NOTES, TOKENS, CONFIGURE},
}
SUITE_FILE = (
    b"name: web\ncategories: [{name: Checkout}]\n"
    b"checks:\n  - {id: checkout, name: Checkout, category: Checkout, steps: [{request: {path: /}}]}\n"
)
GROUPS = {MANAGER: "Manager", DEVOPS: "DevOps", ENGINEER: "Engineer"}

JUNIT = b'<testsuite name="unit"><testcase classname="m" name="t" time="0.1"/></testsuite>'


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {run}, {case}, {note}, {token} placeholders
    action: str
    allowed: int  # the status an allowed role gets
    payload: str = ""  # the name of a payload builder below

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


PAGES = [
    Endpoint("GET", "/", READ, 200),
    Endpoint("GET", "/runs/", READ, 200),
    Endpoint("GET", "/runs/{run}/", READ, 200),
    Endpoint("GET", "/runs/{run}/results/?outcome=failing", READ, 200),
    Endpoint("GET", "/runs/{run}/progress/", READ, 200),
    Endpoint("GET", "/runs/{run}/export/md/", EXPORT, 200),
    Endpoint("GET", "/compare/", READ, 200),
    Endpoint("GET", "/compare/?a={run}&b={run}", READ, 200),
    Endpoint("GET", "/cases/{case}/", READ, 200),
    Endpoint("GET", "/trends/", READ, 200),
    Endpoint("GET", "/business/", READ, 200),
    Endpoint("GET", "/tokens/", READ, 200),
    Endpoint("GET", "/suites/", READ, 200),
    Endpoint("GET", "/suites/web/", READ, 200),
    Endpoint("GET", "/environments/", READ, 200),
    Endpoint("GET", "/environments/new/", CONFIGURE, 200),
    Endpoint("GET", "/environments/staging/", CONFIGURE, 200),
    Endpoint("GET", "/suites/web/tags/", CONFIGURE, 200),
    Endpoint("GET", "/schedules/", CONFIGURE, 200),
]
ACTIONS = [
    Endpoint("POST", "/run-now/", RUN, 302, "run_now"),
    Endpoint("POST", "/runs/{run}/rerun/", RERUN, 302, "rerun_form"),
    Endpoint("POST", "/runs/{run}/notes/", NOTES, 302, "note"),
    Endpoint("POST", "/notes/{note}/", NOTES, 302, "note"),
    Endpoint("POST", "/tokens/new/", TOKENS, 200, "token_name"),
    Endpoint("POST", "/suites/reload/", CONFIGURE, 302),
    Endpoint("POST", "/environments/staging/", CONFIGURE, 302, "environment_form"),
]
API = [
    Endpoint("GET", "/api/v1/runs", READ, 200),
    Endpoint("GET", "/api/v1/runs/{run}", READ, 200),
    Endpoint("GET", "/api/v1/test-cases/{case}/history", READ, 200),
    Endpoint("GET", "/api/v1/mrr-at-risk", READ, 200),
    Endpoint("GET", "/api/v1/suites", READ, 200),
    Endpoint("GET", "/api/v1/suites/web", READ, 200),
    Endpoint("POST", "/api/v1/suites", CONFIGURE, 201, "suite_file"),
    Endpoint("POST", "/api/v1/runs", RUN, 202, "run_json"),
    Endpoint("POST", "/api/v1/runs/{run}/rerun", RERUN, 202, "rerun_json"),
    Endpoint("POST", "/api/v1/runs/import", RUN, 201, "import_file"),
]
API_WRITES = [e for e in API if e.method == "POST"]
RUN_STARTS = [e for e in API_WRITES if e.action in (RUN, RERUN)]
FORM_WRITES = [*ACTIONS, Endpoint("POST", "/tokens/{token}/revoke/", TOKENS, 302)]


@dataclass
class World:
    users: dict[str, Any]
    run: Run
    note: Note
    case_id: int
    token_id: int
    environment_id: int
    suite_id: int

    def url(self, endpoint: Endpoint) -> str:
        return endpoint.path.format(run=self.run.pk, case=self.case_id, note=self.note.pk, token=self.token_id)

    def payload(self, endpoint: Endpoint) -> dict[str, Any]:
        """Keyword arguments for the test client's get/post."""
        match endpoint.payload:
            case "run_now":
                return {"data": {"environment": self.environment_id, "suite": self.suite_id}}
            case "rerun_form":
                return {"data": {"scope": "all"}}
            case "note":
                return {"data": {"body": "## Root cause\n\nThe message handler closes the socket."}}
            case "token_name":
                return {"data": {"name": "CI pipeline"}}
            case "run_json":
                return {"data": {"suite": "web", "environment": "staging"}, "content_type": "application/json"}
            case "rerun_json":
                return {"data": {"scope": "all"}, "content_type": "application/json"}
            case "import_file":
                upload = SimpleUploadedFile("junit.xml", JUNIT, content_type="application/xml")
                return {"data": {"file": upload, "suite": "unit", "environment": "staging"}}
            case "suite_file":
                return {"data": {"file": SimpleUploadedFile("web.yaml", SUITE_FILE, content_type="application/yaml")}}
            case "environment_form":
                return {"data": {"base_url": "http://127.0.0.1:9", "variables_text": "client_id = ci"}}
        return {}


@pytest.fixture
def world(db) -> World:
    # password=None: an unusable password, so no slow hashing (these users only ever force_login)
    users = {role: UserFactory(username=role, password=None) for role in (MANAGER, ENGINEER, DEVOPS)}
    for role, user in users.items():
        user.groups.add(Group.objects.get_or_create(name=GROUPS[role])[0])
    users[SUPERUSER] = UserFactory(username=SUPERUSER, password=None, is_superuser=True, is_staff=True)
    environment, suite = EnvironmentFactory(name="staging"), SuiteFactory(name="web")
    check = CheckFactory(category=CategoryFactory(suite=suite, name="Checkout"), node_id="checkout")
    run = RunFactory(environment=environment, suite=suite, status=RunStatus.FINISHED, verdict="FAIL", total=1, failed=1)
    ResultFactory(run=run, test_case=check, outcome=Result.Outcome.FAILED, message="HTTP 500")
    note = Note.objects.create(run=run, author=users[ENGINEER], body="first thoughts")
    token, _ = tokens.create_token(users[SUPERUSER], "to revoke")
    return World(users, run, note, check.pk, token.pk, environment.pk, suite.pk)


def state() -> tuple:
    """What a write may change: runs, notes (and their text), API tokens (and revocations),
    suite versions and environments' settings."""
    return (
        tuple(Run.objects.order_by("pk").values_list("pk", "status")),
        tuple(Note.objects.order_by("pk").values_list("pk", "body")),
        tuple(ApiToken.objects.order_by("pk").values_list("pk", "revoked")),
        tuple(SuiteVersion.objects.order_by("pk").values_list("pk", "digest")),
        tuple(Environment.objects.order_by("pk").values_list("pk", "base_url", "variables")),
    )


def request(client: Client, world: World, endpoint: Endpoint, **extra):
    send = client.post if endpoint.method == "POST" else client.get
    return send(world.url(endpoint), **world.payload(endpoint), **extra)


def signed_in(world: World, role: str, **options) -> Client:
    client = Client(**options)
    if role != ANONYMOUS:
        client.force_login(world.users[role])
    return client


def with_token(world: World, role: str, **options) -> Client:
    _, plain = tokens.create_token(world.users[role], "permissions")
    return Client(HTTP_AUTHORIZATION=f"Bearer {plain}", **options)


def expected(role: str, endpoint: Endpoint) -> int:
    return endpoint.allowed if endpoint.action in MAY[role] else 403


def matrix(endpoints: list[Endpoint], roles=(ANONYMOUS, *USERS)):
    return [pytest.param(role, e, id=f"{role}-{e.id}") for e in endpoints for role in roles]


# --- pages and form actions, by session ---------------------------------------------------


@pytest.mark.parametrize(("role", "endpoint"), matrix(PAGES + ACTIONS))
def test_pages_and_actions_answer_each_role_as_its_rights_say(world, role, endpoint):
    before = state()
    response = request(signed_in(world, role), world, endpoint)
    if role == ANONYMOUS:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=/")
        assert state() == before
        return
    assert response.status_code == expected(role, endpoint), response.content[:300]
    if endpoint.method == "POST":  # an allowed write changes something, a refused one nothing
        assert (state() != before) == (endpoint.action in MAY[role])


@pytest.mark.parametrize("endpoint", PAGES + ACTIONS, ids=lambda e: e.id)
def test_an_anonymous_visitor_is_sent_to_log_in_and_back(world, endpoint):
    response = request(Client(), world, endpoint)
    path = world.url(endpoint)
    assert response.status_code == 302
    if "?" not in path:
        assert response["Location"] == f"/accounts/login/?next={path}"


def test_an_allowed_run_now_queues_a_run_and_goes_to_it(world):
    response = request(signed_in(world, DEVOPS), world, ACTIONS[0])
    run = Run.objects.latest("pk")
    assert (run.status, run.triggered_by) == (RunStatus.QUEUED, world.users[DEVOPS])
    assert response["Location"] == f"/runs/{run.pk}/"


def test_a_refused_export_does_not_leak_the_report(world):
    export = next(page for page in PAGES if "/export/" in page.path)
    response = request(signed_in(world, ENGINEER), world, export)
    assert response.status_code == 403
    assert b"HTTP 500" not in response.content and "attachment" not in response.get("Content-Disposition", "")


def test_the_run_page_offers_only_the_buttons_a_role_may_use(world):
    run_page = next(page for page in PAGES if page.path == "/runs/{run}/")
    pages = {role: request(signed_in(world, role), world, run_page).content.decode() for role in USERS}
    rerun_form, note_form = f'action="/runs/{world.run.pk}/rerun/"', f'action="/runs/{world.run.pk}/notes/"'
    assert {role for role, html in pages.items() if rerun_form in html} == {ENGINEER, SUPERUSER}
    assert {role for role, html in pages.items() if note_form in html} == {ENGINEER, DEVOPS, SUPERUSER}


# --- the API, by session and by token -------------------------------------------------------


@pytest.mark.parametrize(("role", "endpoint"), matrix(API))
def test_the_api_answers_each_session_role_as_its_rights_say(world, role, endpoint):
    before = state()
    response = request(signed_in(world, role), world, endpoint)
    if role == ANONYMOUS:
        assert response.status_code == 401
        assert response.json() == {"detail": "Unauthorized"}
        assert state() == before
        return
    assert response.status_code == expected(role, endpoint), response.content[:300]
    if response.status_code == 403:
        assert response.json()["detail"] == f"Your role may not {endpoint.action}."
    if endpoint.method == "POST":
        assert (state() != before) == (endpoint.action in MAY[role])


@pytest.mark.parametrize(("role", "endpoint"), matrix(API, roles=USERS))
def test_the_api_answers_each_token_role_as_its_rights_say(world, role, endpoint):
    client = with_token(world, role)
    before = state()
    response = request(client, world, endpoint)
    assert response.status_code == expected(role, endpoint), response.content[:300]
    if endpoint.method == "POST":
        assert (state() != before) == (endpoint.action in MAY[role])


@pytest.mark.parametrize("endpoint", RUN_STARTS, ids=lambda e: e.id)
def test_a_run_started_with_a_token_belongs_to_the_tokens_user(world, endpoint):
    response = request(with_token(world, ENGINEER), world, endpoint)
    run = Run.objects.get(pk=response.json()["id"])
    assert run.triggered_by == world.users[ENGINEER]


@pytest.mark.parametrize("endpoint", API, ids=lambda e: e.id)
def test_a_revoked_token_of_a_superuser_gets_401_everywhere(world, endpoint):
    token, plain = tokens.create_token(world.users[SUPERUSER], "gone")
    tokens.revoke(token)
    before = state()
    response = request(Client(HTTP_AUTHORIZATION=f"Bearer {plain}"), world, endpoint)
    assert response.status_code == 401
    assert state() == before


# --- CSRF -------------------------------------------------------------------------------------


def csrf_client(world: World, role: str = SUPERUSER) -> tuple[Client, str]:
    """A browser-like client (CSRF enforced) signed in as ``role``, and its CSRF token."""
    client = signed_in(world, role, enforce_csrf_checks=True)
    assert client.get("/tokens/").status_code == 200  # a page with a form sets the CSRF cookie
    return client, client.cookies["csrftoken"].value


@pytest.mark.parametrize("endpoint", FORM_WRITES, ids=lambda e: e.id)
def test_every_form_action_refuses_a_post_without_the_csrf_token(world, endpoint):
    client, _ = csrf_client(world)
    before = state()
    response = request(client, world, endpoint)
    assert response.status_code == 403
    assert b"CSRF verification failed" in response.content
    assert state() == before


@pytest.mark.parametrize("endpoint", FORM_WRITES, ids=lambda e: e.id)
def test_every_form_action_accepts_a_post_with_the_csrf_token(world, endpoint):
    client, csrf = csrf_client(world)
    before = state()
    response = request(client, world, endpoint, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == endpoint.allowed
    assert state() != before


@pytest.mark.parametrize("endpoint", API_WRITES, ids=lambda e: e.id)
def test_a_session_api_write_without_the_csrf_token_is_refused(world, endpoint):
    client, _ = csrf_client(world)
    before = state()
    response = request(client, world, endpoint)
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check Failed"}
    assert state() == before


@pytest.mark.parametrize("endpoint", API_WRITES, ids=lambda e: e.id)
def test_a_session_api_write_with_the_csrf_token_is_accepted(world, endpoint):
    client, csrf = csrf_client(world)
    response = request(client, world, endpoint, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == endpoint.allowed, response.content[:300]


@pytest.mark.parametrize("endpoint", API_WRITES, ids=lambda e: e.id)
def test_a_token_api_write_needs_no_csrf_token(world, endpoint):
    client = with_token(world, SUPERUSER, enforce_csrf_checks=True)
    before = state()
    response = request(client, world, endpoint)
    assert response.status_code == endpoint.allowed, response.content[:300]
    assert state() != before
    assert "csrftoken" not in client.cookies


@pytest.mark.parametrize("endpoint", API_WRITES, ids=lambda e: e.id)
def test_a_session_with_a_bad_token_still_needs_the_csrf_token(world, endpoint):
    """A wrong Authorization header must not turn a cookie-authenticated write into a CSRF-free one."""
    client, _ = csrf_client(world)
    before = state()
    response = request(client, world, endpoint, HTTP_AUTHORIZATION="Bearer gp_000000000000_nope")
    assert response.status_code == 403
    assert state() == before


@pytest.mark.parametrize("authorization", [None, "Bearer gp_000000000000_revoked"], ids=["no-token", "bad-token"])
@pytest.mark.parametrize("endpoint", API_WRITES, ids=lambda e: e.id)
def test_an_api_write_from_a_script_without_a_valid_token_gets_401(world, endpoint, authorization):
    client = Client(enforce_csrf_checks=True)  # what curl or a CI job is: no cookies, CSRF enforced
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = request(client, world, endpoint, **extra)
    assert response.status_code == 401
