"""REST API v1 (django-ninja): runs, reruns, imports, suites, test case history, MRR at risk.

Authenticated by an API token (``Authorization: Bearer gp_…``) or the browser session
(which then needs the CSRF token on writes). A token acts with its user's role.
A user with no role gets 403 everywhere. The OpenAPI schema (/api/v1/openapi.json) and the
docs page (/api/v1/docs) are for the same users: a token's or a session's with a role.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypedDict

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_stubs_ext import WithAnnotations
from ninja import File, Form, Header, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.security import HttpBearer, SessionAuth
from pydantic import Field

from probes.suite.loader import MAX_SUITE_BYTES, SuiteFileError
from runs import history, roles, tokens
from runs.analysis.flakiness import flip_rate
from runs.analysis.standing import Standing
from runs.importers.cases import ImportFailed
from runs.importers.service import FileTooLarge, ImportTooSlow, import_results, stored_names
from runs.models import Category, Environment, Run, RunStatus, Suite, SuiteVersion, TestCase, Verdict
from runs.reporting import build_report, report_json, standing_json
from runs.services import DispatchError, NothingToRerun, NotRunnable, QueueFull, create_rerun, create_run
from runs.state import latest_states, standings
from runs.suites import SuiteRefused, load_suite_text

NO_ROLE = "Your account has no role yet; ask an administrator to give you one (Manager, DevOps or Engineer)."

P = ParamSpec("P")


def require_role(user: User | AnonymousUser) -> None:
    """Every endpoint reads what a Manager reads: a user with no role may read nothing."""
    if not roles.can(user, roles.READ):
        raise HttpError(403, NO_ROLE)


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = tokens.authenticate(token)
        if user is not None:
            request.user = user
            require_role(user)
        return user


@dataclass(frozen=True)
class Upload:
    """An endpoint that takes a file, judged from the request's headers before its body is
    read (dashboard.bodylimit): a 3 GB file from a role that may not upload is refused at
    once, not after the server spooled it to disk."""

    action: str  # what the user's role must allow
    max_bytes: int  # the largest file
    setting: str  # what sets max_bytes, named in the 413

    def too_large(self, size: int) -> str:
        return f"the upload is {size:,} bytes; a file here is at most {self.max_bytes:,} bytes ({self.setting})"


def upload_for(request: HttpRequest) -> Upload | None:
    """The upload rule of the endpoint ``request`` goes to, or None if it takes no file."""
    if request.method != "POST":
        return None
    uploads = {
        reverse("api:import_file"): Upload(roles.RUN, settings.GOLDPATH_IMPORT_MAX_BYTES, "GOLDPATH_IMPORT_MAX_BYTES"),
        reverse("api:suites"): Upload(roles.CONFIGURE, MAX_SUITE_BYTES, "the suite format's limit"),
    }
    return uploads.get(request.path)


def request_user(request: HttpRequest) -> User | None:
    """The user an API request acts as, its token's or its session's (None: neither)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    user = tokens.authenticate(token) if scheme.lower() == "bearer" else None
    if user is None and request.user.is_authenticated:
        user = request.user
    return user


def docs_for_roles(
    view: Callable[Concatenate[HttpRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """The docs page and the schema: a login first, then a role, as for every endpoint."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        user = request_user(request)
        if user is None:
            return redirect_to_login(request.get_full_path())
        if not roles.can(user, roles.READ):
            raise PermissionDenied(NO_ROLE)
        return view(request, *args, **kwargs)

    return wrapper


class LoggedInSession(SessionAuth):
    """The browser session, CSRF-checked; a request with no session is not treated as a
    session (so a script with a missing or wrong token gets 401, not a CSRF error)."""

    def __call__(self, request: HttpRequest) -> User | None:
        if not request.user.is_authenticated:
            return None
        user = super().__call__(request)
        if user is not None:
            require_role(user)
        return user


api = NinjaAPI(
    title="Goldpath API",
    version="1",
    description="Golden-path run history: runs, reruns, JUnit/pytest imports, test history, MRR at risk.",
    auth=[TokenAuth(), LoggedInSession()],
    urls_namespace="api",
    docs_decorator=docs_for_roles,
)

# A CI step that retries a POST sends the same key again and gets the run the first one
# started, not a second run.
IdempotencyKey = Header(
    None,
    alias="Idempotency-Key",
    max_length=255,
    description="Repeat it to get the run the first request with it started (per user)",
)


def request_key(request: HttpRequest, idempotency_key: str | None) -> str | None:
    """The Run.request_key of an ``Idempotency-Key``: scoped to its user, so two users'
    keys never meet, and of a fixed length whatever the key's."""
    if not idempotency_key:
        return None
    return hashlib.sha256(f"api:{request.user.pk}:{idempotency_key}".encode()).hexdigest()


def _not_replayed_elsewhere(run: Run, **expected: Any) -> Run:
    """A key reused for another request is refused, not answered with an unrelated run."""
    if any(getattr(run, field) != value for field, value in expected.items()):
        raise HttpError(422, "this Idempotency-Key was already used for another request")
    return run


class ErrorOut(Schema):
    detail: str


class StandingOut(Schema):
    key: str = Field(description="unreachable, pass-mocked, pass, partial-success or fail")
    label: str = Field(description="as the pages print it: COULD NOT REACH, PASS · mocked?, or the verdict")
    reached: bool = Field(description="false: every check failed before any response; revenue not assessed")
    realness: str = Field(description="real, suspect or not assessed (imports: their tests never touched the network)")
    notes: list[str]


class RunOut(Schema):
    id: int
    url: str
    status: str
    verdict: str | None
    suite: str
    environment: str
    trigger: str
    imported: bool
    scope: str
    parent_id: int | None
    created: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    total: int
    passed: int
    failed: int
    errors: int
    skipped: int
    mrr_at_risk: int | None = Field(description="null when not assessed: the probes never reached the service")
    standing: StandingOut | None = Field(description="how the finished run reads on every page; null before a verdict")
    realness_score: float | None
    mock_count: int
    status_message: str


class RunPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[RunOut]


# Environment and suite names are slugs: anything else (a NUL byte, which PostgreSQL
# refuses in any string) is a 422, never a query.
SLUG = r"^[-a-zA-Z0-9_]{1,64}$"
# Past any real history, and small enough that offset + limit stays a 64-bit integer.
MAX_OFFSET = 1_000_000_000


class PageParams(Schema):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class RunFilters(PageParams):
    environment: str | None = Field(None, pattern=SLUG)
    suite: str | None = Field(None, pattern=SLUG)
    verdict: Verdict | None = None
    status: RunStatus | None = None
    trigger: Run.Trigger | None = None


class RunRequest(Schema):
    suite: str
    environment: str


class RerunRequest(Schema):
    scope: Run.Scope = Run.Scope.FAILED
    category: str | None = Field(None, description="Category name, for scope=category")
    test_case: str | None = Field(None, description="Test case node id, for scope=test")


class MrrOut(Schema):
    environment: str
    suite: str
    run_id: int
    run_url: str
    verdict: str | None
    finished_at: datetime | None
    mrr_at_risk: int | None = Field(
        description="Monthly revenue at risk as of that run; null when not assessed: "
        "every check failed before any response (the service could not be reached)"
    )


def _require(request: HttpRequest, action: str) -> User:
    """The request's user, if their role allows ``action`` (403 otherwise)."""
    user = request.user
    if not user.is_authenticated or not roles.can(user, action):
        raise HttpError(403, f"Your role may not {action}.")
    return user


def runs_out(runs: list[Run]) -> list[dict[str, Any]]:
    """Runs as the API gives them, each with its standing (one query at most for all)."""
    by_run = standings(run for run in runs if run.verdict)
    return [_run_out(run, by_run.get(run.pk)) for run in runs]


def run_out(run: Run) -> dict[str, Any]:
    (out,) = runs_out([run])
    return out


def _run_out(run: Run, standing: Standing | None) -> dict[str, Any]:
    return {
        "id": run.pk,
        "url": f"{settings.SITE_URL}{run.get_absolute_url()}",
        "status": run.status,
        "verdict": run.verdict or None,
        "suite": run.suite.name,
        "environment": run.environment.name,
        "trigger": run.trigger,
        "imported": run.is_imported,
        "scope": run.scope,
        "parent_id": run.parent_id,
        "created": run.created,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_s": run.duration_s,
        "total": run.total,
        "passed": run.passed,
        "failed": run.failed,
        "errors": run.errors,
        "skipped": run.skipped,
        "mrr_at_risk": run.mrr_at_risk if standing is None or standing.reached else None,
        "standing": standing_json(standing),
        "realness_score": run.realness_score,
        "mock_count": run.mock_count,
        "status_message": run.status_message,
    }


def _run(run_id: int) -> Run:
    return get_object_or_404(Run.objects.select_related("suite", "environment", "version"), pk=run_id)


@api.get("/runs", response=RunPage, summary="List runs, newest first")
def list_runs(request: HttpRequest, filters: Query[RunFilters]) -> dict[str, Any]:
    runs = Run.objects.for_lists().order_by("-created", "-pk")
    for field in ("status", "verdict", "trigger"):
        if value := getattr(filters, field):
            runs = runs.filter(**{field: value})
    if filters.environment:
        runs = runs.filter(environment__name=filters.environment)
    if filters.suite:
        runs = runs.filter(suite__name=filters.suite)
    page = runs[filters.offset : filters.offset + filters.limit]
    return {
        "count": runs.count(),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": runs_out(list(page)),
    }


@api.get("/runs/{int:run_id}", response=dict[str, Any], summary="A run with its results and analysis")
def get_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    run = _run(run_id)
    return report_json(build_report(run)) | {"url": f"{settings.SITE_URL}{run.get_absolute_url()}"}


def _queued(run: Run) -> Status:
    if run.status == RunStatus.ERROR:
        raise HttpError(503, run.status_message)
    return Status(202, run_out(run))


@api.post(
    "/runs",
    response={202: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    summary="Start a run",
)
def start_run(request: HttpRequest, body: RunRequest, idempotency_key: str | None = IdempotencyKey) -> Status:
    user = _require(request, roles.RUN)
    suite = Suite.objects.filter(name=body.suite).first()
    if suite is None:
        raise HttpError(404, f"no suite named {body.suite!r}")
    environment = Environment.objects.filter(name=body.environment).first()
    if environment is None:
        raise HttpError(404, f"no environment named {body.environment!r}")
    try:
        run = create_run(
            suite,
            environment,
            user=user,
            trigger=Run.Trigger.API,
            request_key=request_key(request, idempotency_key),
        )
    except NotRunnable as exc:
        raise HttpError(400, str(exc)) from None
    except QueueFull as exc:
        raise HttpError(429, str(exc)) from None
    except DispatchError as exc:
        raise HttpError(503, str(exc)) from None
    return _queued(_not_replayed_elsewhere(run, suite_id=suite.pk, environment_id=environment.pk, parent_id=None))


@api.post(
    "/runs/{int:run_id}/rerun",
    response={202: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    summary="Rerun all, the failed checks, a category or one check of a run",
)
def rerun(
    request: HttpRequest, run_id: int, body: RerunRequest, idempotency_key: str | None = IdempotencyKey
) -> Status:
    user = _require(request, roles.RERUN)
    parent = _run(run_id)
    category_id = test_case_id = None
    if body.category:
        category_id = get_object_or_404(parent.suite.categories, name=body.category).pk
    if body.test_case:
        test_case_id = get_object_or_404(parent.suite.test_cases, node_id=body.test_case).pk
    try:
        child = create_rerun(
            parent,
            body.scope,
            user,
            category_id=category_id,
            test_case_id=test_case_id,
            request_key=request_key(request, idempotency_key),
        )
    except (NothingToRerun, NotRunnable) as exc:
        raise HttpError(400, str(exc)) from None
    except QueueFull as exc:
        raise HttpError(429, str(exc)) from None
    except DispatchError as exc:
        raise HttpError(503, str(exc)) from None
    return _queued(_not_replayed_elsewhere(child, parent_id=parent.pk, scope=body.scope))


@api.post(
    "/runs/import",
    response={201: RunOut, 400: ErrorOut, 403: ErrorOut, 413: ErrorOut},
    summary="Import a JUnit XML or pytest-json-report file as a finished run",
    description="The suite is stored under its slug, which is also its title, and made an import suite if new. "
    "The environment must exist, unless the user may configure environments (DevOps): then it is created.",
)
def import_file(
    request: HttpRequest,
    file: File[UploadedFile],
    suite: Form[str],
    environment: Form[str],
    format: Form[str] = "auto",
    idempotency_key: str | None = IdempotencyKey,
) -> Status:
    user = _require(request, roles.RUN)
    limit = settings.GOLDPATH_IMPORT_MAX_BYTES
    if file.size is not None and file.size > limit:
        raise HttpError(
            413, f"the file is {file.size:,} bytes; the import limit is {limit:,} (GOLDPATH_IMPORT_MAX_BYTES)"
        )
    key = request_key(request, idempotency_key)
    if key and (earlier := _imported_before(key, suite, environment)):
        return Status(201, run_out(earlier))
    assert file.file is not None, "Django's upload handlers give every uploaded file its file"
    try:
        run = import_results(
            file.file,
            suite_name=suite,
            environment_name=environment,
            fmt=format,
            user=user,
            request_key=key,
            time_limit_s=settings.GOLDPATH_WEB_IMPORT_SECONDS,
        )

    except (FileTooLarge, ImportTooSlow) as exc:
        raise HttpError(413, f"{exc}; nothing was imported") from None
    except ImportFailed as exc:
        raise HttpError(400, f"{exc}; nothing was imported") from None
    except IntegrityError:  # a twin upload with the same key stored its run first
        if key and (earlier := _imported_before(key, suite, environment)):
            return Status(201, run_out(earlier))
        raise
    return Status(201, run_out(run))


def _imported_before(key: str, suite: str, environment: str) -> Run | None:
    """The run an earlier upload with this Idempotency-Key made: a CI step that retries
    after a lost answer must not store the file twice."""
    earlier = Run.objects.filter(request_key=key).first()
    if earlier is None:
        return None
    suite_name, environment_name = stored_names(suite, environment)
    return _not_replayed_elsewhere(
        earlier,
        trigger=Run.Trigger.IMPORT,
        suite_id=Suite.objects.filter(name=suite_name).values_list("pk", flat=True).first(),
        environment_id=Environment.objects.filter(name=environment_name).values_list("pk", flat=True).first(),
    )


@api.get("/test-cases/{int:test_case_id}/history", response=dict[str, Any], summary="A check's outcomes over runs")
def test_case_history(request: HttpRequest, test_case_id: int, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    test_case = get_object_or_404(TestCase.objects.select_related("suite", "category"), pk=test_case_id)
    results = history.recent_results(test_case, limit)[::-1]  # newest first
    return {
        "id": test_case.pk,
        "node_id": test_case.node_id,
        "name": test_case.name,
        "suite": test_case.suite.name,
        "category": test_case.category.name,
        "flip_rate": flip_rate([r.outcome for r in reversed(results)]),  # oldest first
        "results": [
            {
                "run_id": r.run_id,
                "environment": r.run.environment.name,
                "outcome": r.outcome,
                "duration_s": r.duration_s,
                "failure_class": r.failure_class or None,
                "message": r.message,
                "finished_at": r.finished_at,
            }
            for r in results
        ],
    }


class SuiteVersionOut(Schema):
    number: int
    digest: str
    created: datetime
    source_path: str


class TagOut(Schema):
    name: str
    mrr: int
    severity: str


class SuiteSummaryOut(Schema):
    name: str
    title: str
    origin: str
    url: str
    version: SuiteVersionOut | None
    check_count: int = Field(description="Checks it defines now (an import suite: the test cases its files named)")
    category_count: int
    version_count: int
    impact_tags: list[TagOut]


class SuitePage(Schema):
    count: int
    limit: int
    offset: int
    items: list[SuiteSummaryOut]


class CheckOut(Schema):
    id: int = Field(description="The test case's id, as in /test-cases/{test_case_id}/history")
    node_id: str
    name: str
    category: str


class CheckPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[CheckOut]


class SuiteOut(SuiteSummaryOut):
    categories: list[str]
    checks: CheckPage = Field(description="Its checks in the suite's order, a page at a time (limit, offset)")


class SuiteProblemOut(Schema):
    detail: str
    problems: list[str]


def _count(model: type[models.Model], **filters: Any) -> Coalesce:
    """How many rows of ``model`` the suite of the outer query has, counted in the database."""
    rows = model._default_manager.filter(suite=OuterRef("pk"), **filters).order_by().values("suite")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


class SuiteCounts(TypedDict):
    check_count: int
    category_count: int
    version_count: int


if TYPE_CHECKING:  # a suite of _suites(), for django-stubs (at run time WithAnnotations takes one argument)
    CountedSuite = WithAnnotations[Suite, SuiteCounts]


def _suites() -> QuerySet[CountedSuite]:
    """Suites with the counts the API gives instead of lists: an import suite may hold
    500,000 checks, and listing every node id of every suite made /suites 17 MB."""
    return (
        Suite.objects.select_related("current_version")
        .prefetch_related("impact_tags")
        .annotate(
            check_count=_count(TestCase, active=True),
            category_count=_count(Category),
            version_count=_count(SuiteVersion),
        )
        .order_by("name")
    )


def suite_summary_out(suite: CountedSuite) -> dict[str, Any]:
    """A suite of _suites() as the list shows it: bounded whatever the suite holds."""
    version = suite.current_version
    return {
        "name": suite.name,
        "title": suite.title,
        "origin": suite.origin,
        "url": f"{settings.SITE_URL}{reverse('dashboard-suite', args=[suite.name])}",
        "version": version
        and {
            "number": version.number,
            "digest": version.digest,
            "created": version.created,
            "source_path": version.source_path,
        },
        "check_count": suite.check_count,
        "category_count": suite.category_count,
        "version_count": suite.version_count,
        "impact_tags": [{"name": t.name, "mrr": t.mrr, "severity": t.severity} for t in suite.impact_tags.all()],
    }


def suite_out(suite: CountedSuite, page: PageParams) -> dict[str, Any]:
    """One suite with its categories (at most a couple of hundred: imports cap them) and one
    page of its checks."""
    checks = suite.test_cases.filter(active=True).order_by("order", "pk")
    rows = checks.values_list("pk", "node_id", "name", "category__name")[page.offset : page.offset + page.limit]
    return suite_summary_out(suite) | {
        "categories": list(suite.categories.values_list("name", flat=True)),
        "checks": {
            "count": suite.check_count,
            "limit": page.limit,
            "offset": page.offset,
            "items": [{"id": pk, "node_id": node, "name": name, "category": cat} for pk, node, name, cat in rows],
        },
    }


@api.get("/suites", response=SuitePage, summary="List suites with their current version and counts", url_name="suites")
def list_suites(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    suites = _suites()
    return {
        "count": Suite.objects.count(),
        "limit": page.limit,
        "offset": page.offset,
        "items": [suite_summary_out(suite) for suite in suites[page.offset : page.offset + page.limit]],
    }


@api.get("/suites/{name}", response={200: SuiteOut, 404: ErrorOut}, summary="One suite, with a page of its checks")
def get_suite(request: HttpRequest, page: Query[PageParams], name: str = Path(..., pattern=SLUG)) -> dict[str, Any]:
    return suite_out(get_object_or_404(_suites(), name=name), page)


@api.post(
    "/suites",
    response={201: SuiteOut, 400: SuiteProblemOut, 403: ErrorOut, 409: ErrorOut, 413: ErrorOut},
    summary="Upload a suite file (YAML): validated like a file on disk; a changed one becomes the new version",
)
def upload_suite(request: HttpRequest, file: File[UploadedFile]) -> Status:
    user = _require(request, roles.CONFIGURE)
    if file.size is not None and file.size > MAX_SUITE_BYTES:
        raise HttpError(413, f"a suite file is at most {MAX_SUITE_BYTES:,} bytes")
    data = file.read(MAX_SUITE_BYTES + 1)
    if len(data) > MAX_SUITE_BYTES:
        raise HttpError(413, f"a suite file is at most {MAX_SUITE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Status(400, {"detail": "the suite file is not UTF-8 text", "problems": []})
    name = (file.name or "suite.yaml").rsplit("/", 1)[-1]
    try:
        suite = load_suite_text(text, name, user=user)
    except SuiteFileError as exc:
        return Status(400, {"detail": "the suite file does not validate; nothing changed", "problems": exc.lines})
    except SuiteRefused as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, suite_out(get_object_or_404(_suites(), pk=suite.pk), PageParams(limit=50, offset=0)))


@api.get("/mrr-at-risk", response=list[MrrOut], summary="MRR at risk now, per environment and suite")
def mrr_summary(request: HttpRequest) -> list[dict[str, Any]]:
    states = sorted(latest_states().values(), key=lambda state: (state.environment.name, state.suite.name))
    return [
        {
            "environment": state.environment.name,
            "suite": state.suite.name,
            "run_id": state.run.pk,
            "run_url": f"{settings.SITE_URL}{state.run.get_absolute_url()}",
            "verdict": state.run.verdict or None,
            "finished_at": state.run.finished_at,
            "mrr_at_risk": state.mrr_at_risk,
        }
        for state in states
    ]
