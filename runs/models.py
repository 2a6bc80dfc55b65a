"""Goldpath's domain: what was checked, where, when, with what outcome and evidence."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import regex
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from probes.net import NetworkPolicy, parse_address, refused_host, resolver_form
from probes.runtime import websocket_origin
from runs.analysis.classification import backtracking_shape
from runs.fields import OrderedJSONField


def validate_probe_url(value: str) -> None:
    """A scheme probes speak and a host they may reach (the workers refuse a metadata
    address anyway; saying so here spares DevOps a run that fails)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port, and for an IPv6 address without brackets
    except ValueError:
        raise ValidationError(
            f"{value!r} is not a usable URL: check the port; an IPv6 address goes in brackets (http://[fd00::1]/)."
        ) from None
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ValidationError(f"{value!r} is not a usable URL: give a scheme (http, https, ws or wss) and a host.")
    if refused_host(connected_host(parts.hostname), settings.GOLDPATH_ALLOW_LINK_LOCAL):
        raise ValidationError(
            f"{parts.hostname} is a link-local or cloud-metadata address; probes never reach those "
            "(GOLDPATH_ALLOW_LINK_LOCAL=1 allows it)."
        )


def connected_host(hostname: str) -> str:
    """The host a connection to ``hostname`` goes to, as the resolver reads it
    (probes.net.resolver_form), or ValidationError when that is not the host as written
    and never could be used: an address in other characters (①⑥⑨.②⑤④.①⑥⑨.②⑤④ or
    169。254。169。254 is 169.254.169.254) would be allowed, listed and shown as one host
    while connections go to another. A metadata address so written is returned, for the
    caller to refuse with its own reason."""
    host = resolver_form(hostname)
    if host is None:
        raise ValidationError(f"{hostname} is not a host name a resolver can read.")
    if host != hostname and parse_address(host) is not None and not refused_host(host):
        raise ValidationError(f"{hostname} is the address {host} written in other characters: write {host}.")
    return host


VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATE_IN_VALUE = re.compile(r"\$\{([^}]*)\}")
ENV_REFERENCE = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")


def validate_variables(value: object) -> None:
    """Overrides of suite variables: plain values, or ``${env.NAME}`` for a secret the
    workers read from their environment. A value is never a secret itself."""
    if not isinstance(value, dict):
        raise ValidationError("Variables are a mapping of names to values.")
    for name, item in value.items():
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            raise ValidationError(
                f"{name!r} is not a variable name (letters, digits and _, not starting with a digit)."
            )
        if not isinstance(item, str | int | float | bool):
            raise ValidationError(f"{name}: a value is text, a number or true/false.")
        for reference in TEMPLATE_IN_VALUE.findall(item) if isinstance(item, str) else ():
            if not ENV_REFERENCE.match(reference.strip()):
                raise ValidationError(
                    f"{name}: only ${{env.NAME}} references may appear in a value (found ${{{reference}}})."
                )


def env_references(variables: dict[str, object]) -> list[str]:
    """The worker environment variables that ``variables`` read (``${env.NAME}``), in order."""
    names = []
    for value in variables.values():
        for reference in TEMPLATE_IN_VALUE.findall(value) if isinstance(value, str) else ():
            name = reference.strip().removeprefix("env.")
            if name not in names:
                names.append(name)
    return names


class Environment(models.Model):
    """A deployment that probes may reach (staging, production, a local target).

    Probes only connect to hosts in ``allowed_hosts``. ``variables`` override the suites'
    variables here; secrets appear only as ``${env.NAME}`` references that the workers
    resolve from their own environment, so no secret is ever stored or shown.
    """

    name = models.SlugField(max_length=64, unique=True)
    base_url = models.CharField(max_length=500, validators=[validate_probe_url])
    ws_url = models.CharField(
        "WebSocket URL",
        max_length=500,
        blank=True,
        validators=[validate_probe_url],
        help_text="Where connect steps' paths go. Empty: the base URL with ws:// or wss://.",
    )
    allowed_hosts = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Comma-separated host names probes may reach. Empty: the hosts of the URLs above.",
    )
    variables = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_variables],
        help_text="Overrides of suite variables; secrets only as ${env.NAME}.",
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_ws_url(self) -> str:
        return websocket_origin(self.ws_url or self.base_url)

    def allowed_host_set(self) -> set[str]:
        hosts = {h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()}
        if not hosts:
            hosts = {(urlsplit(u).hostname or "").lower() for u in (self.base_url, self.effective_ws_url)}
        return hosts - {""}


class Suite(models.Model):
    """A named set of checks. A *probe* suite is loaded from a suite file and run by
    Goldpath's workers; each load that changes it makes a new immutable SuiteVersion. An
    *import* suite receives results of CI pipelines. The origin is fixed at creation."""

    class Origin(models.TextChoices):
        PROBE = "probe", "probe suite"
        IMPORT = "import", "import suite"

    name = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    origin = models.CharField(max_length=10, choices=Origin, default=Origin.PROBE)
    current_version = models.ForeignKey(
        "SuiteVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_path = models.CharField(max_length=500, blank=True, help_text="The file the current version came from.")
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def definition(self) -> dict:
        """The current version's definition (empty for import suites)."""
        return self.current_version.definition if self.current_version else {}


class SuiteVersion(models.Model):
    """A suite's definition as it was loaded: runs point at the version they ran, so old
    reports, resumed runs and reruns use it, not whatever the file says today."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the definition: same content, same version.")
    definition = OrderedJSONField(help_text="The validated suite file, as data, in the file's order.")
    source = models.TextField(blank=True, help_text="The file's text.")
    source_path = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    based_on = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="For a version edited in the dashboard: the loaded version the edit started from.",
    )

    class Meta:
        ordering = ["suite", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "number"], name="suiteversion_unique_number"),
            models.UniqueConstraint(fields=["suite", "digest"], name="suiteversion_unique_digest"),
        ]

    def __str__(self) -> str:
        return f"{self.suite.name} v{self.number}"


class Category(models.Model):
    """A group of checks; a failure in a *critical* category blocks the verdict."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=100)
    order = models.PositiveIntegerField(default=0)
    critical = models.BooleanField(default=False)

    class Meta:
        ordering = ["suite", "order", "name"]
        constraints = [models.UniqueConstraint(fields=["suite", "name"], name="category_unique_name")]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class ImpactTag(models.Model):
    """A business capability of one suite and the monthly recurring revenue that depends on
    it (two suites may both name "Chat" with their own figures)."""

    class Severity(models.TextChoices):
        HIGH = "high"
        MEDIUM = "medium"
        LOW = "low"

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="impact_tags")
    name = models.CharField(max_length=100)
    mrr = models.PositiveIntegerField(help_text="Monthly recurring revenue, in dollars.")
    severity = models.CharField(max_length=10, choices=Severity, default=Severity.MEDIUM)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["-mrr", "name"]
        constraints = [models.UniqueConstraint(fields=["suite", "name"], name="impacttag_unique_name")]

    def __str__(self) -> str:
        return self.name


class TestCase(models.Model):
    """The stable identity of one check across runs."""

    __test__ = False  # not a pytest test class

    # No index of its own: the unique (suite, node_id) index serves lookups by suite.
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="test_cases", db_index=False)
    node_id = models.CharField(max_length=500)
    name = models.CharField(max_length=300)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="test_cases")
    impact_tags = models.ManyToManyField(ImpactTag, blank=True, related_name="test_cases")
    declares = models.CharField(
        max_length=50,
        blank=True,
        help_text="The evidence its steps can show (http ws sse auth); empty when imported.",
    )
    order = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True, help_text="Still defined in the suite file.")

    class Meta:
        ordering = ["suite", "order", "name"]
        constraints = [models.UniqueConstraint(fields=["suite", "node_id"], name="testcase_unique_node")]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    """Allowed changes (enforced by ``runs.services.transition``):

    queued  -> running | cancelled | error   (error: could not be dispatched)
    running -> finished | error | cancelled | queued   (queued: resumed after a lost worker)
    finished, error, cancelled: final.
    """

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELLED = "cancelled"


ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    RunStatus.QUEUED: {RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.ERROR},
    RunStatus.RUNNING: {RunStatus.FINISHED, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.QUEUED},
    RunStatus.FINISHED: set(),
    RunStatus.ERROR: set(),
    RunStatus.CANCELLED: set(),
}


class Verdict(models.TextChoices):
    PASS = "PASS", "PASS"
    PARTIAL = "PARTIAL SUCCESS", "PARTIAL SUCCESS"
    FAIL = "FAIL", "FAIL"


class RunQuerySet(models.QuerySet):
    def state_of_environment(self) -> RunQuerySet:
        """Finished runs of a whole suite: what the overview, trends, badges and the
        business view read. A rerun of a few checks says little about the environment."""
        return self.filter(status=RunStatus.FINISHED, scope=Run.Scope.ALL)

    def for_lists(self) -> RunQuerySet:
        """With environment and suite names, without the suite's whole definition (decoding
        it for every listed run cost more than the query)."""
        return self.select_related("environment", "suite").defer("suite__description")


class Run(models.Model):
    class Trigger(models.TextChoices):
        MANUAL = "manual"
        RERUN = "rerun"
        SCHEDULE = "schedule"
        API = "api"
        IMPORT = "import"

    class Scope(models.TextChoices):
        ALL = "all"
        FAILED = "failed"
        CATEGORY = "category"
        TEST = "test"

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="runs")
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(
        SuiteVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        help_text="Empty for imports.",
    )
    trigger = models.CharField(max_length=20, choices=Trigger, default=Trigger.MANUAL)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    scope = models.CharField(max_length=20, choices=Scope, default=Scope.ALL)
    scope_test_cases = models.ManyToManyField(TestCase, blank=True, related_name="+")
    expected = models.PositiveIntegerField(default=0, help_text="Checks in scope, for progress.")
    request_key = models.CharField(
        max_length=64, null=True, blank=True, unique=True, help_text="One run per submitted form (double clicks)."
    )
    base_url = models.CharField(max_length=500, help_text="Where this run's probes were sent.")
    ws_url = models.CharField(max_length=500, blank=True)
    variables = models.JSONField(default=dict, blank=True, help_text="The environment's variables when it was created.")

    status = models.CharField(max_length=20, choices=RunStatus, default=RunStatus.QUEUED)
    verdict = models.CharField(max_length=20, choices=Verdict, blank=True)
    status_message = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker has claimed the run.")

    created = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    total = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)

    # Analysis kept with the run when it ends, so lists and trends need no recomputation.
    mrr_at_risk = models.PositiveIntegerField(default=0)
    realness_score = models.FloatField(null=True, blank=True)
    mock_flags = models.JSONField(default=list, blank=True, help_text="Run-level mock indicators.")
    mock_count = models.PositiveIntegerField(default=0, help_text="Results and run-level indicators flagged.")
    flaky_count = models.PositiveIntegerField(default=0, help_text="Test cases flaky over recent runs.")
    results_pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="When prune_runs removed its results (the summary above stays)."
    )

    # What the page, badge, API and exports say of a run whose results came from a file.
    IMPORTED_NOTE = "Imported from a CI results file: these results were not measured by Goldpath's workers."

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["environment", "suite", "-created"])]

    def __str__(self) -> str:
        return f"Run #{self.pk} {self.suite.name} on {self.environment.name}"

    def get_absolute_url(self) -> str:
        return reverse("runs-detail", args=[self.pk])

    @property
    def is_imported(self) -> bool:
        """Its results came from a CI file (runs.importers), not from Goldpath's workers: every
        view of the run says so, so no one takes them for traffic Goldpath measured."""
        return self.trigger == self.Trigger.IMPORT

    @property
    def is_done(self) -> bool:
        return not ALLOWED_TRANSITIONS[self.status]

    @property
    def definition(self) -> dict:
        """The definition of the suite version this run ran (empty for imports)."""
        return self.version.definition if self.version_id and self.version else {}

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.total if self.total else None


class Result(models.Model):
    class Outcome(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"
        SKIPPED = "skipped"

    # No index of its own: the unique (run, test_case, attempt) index serves lookups by run.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="results", db_index=False)
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="results")
    outcome = models.CharField(max_length=10, choices=Outcome)
    duration_s = models.FloatField()
    message = models.TextField(blank=True)
    failure_class = models.CharField(max_length=100, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    mock_flags = models.JSONField(default=list, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["test_case__order", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "test_case", "attempt"], name="result_unique_attempt")]
        indexes = [
            # Where a failure class was first seen, and how often since (run reports).
            models.Index(
                fields=["failure_class", "run"], name="result_class_run", condition=~models.Q(failure_class="")
            )
        ]

    def __str__(self) -> str:
        return f"{self.test_case} {self.outcome}"


class Measurement(models.Model):
    """A performance figure measured from real traffic, as percentiles over samples.

    ``p50``/``p95`` are null when the metric could not be measured in this run;
    ``note`` then says why.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="measurements")
    test_case = models.ForeignKey(TestCase, null=True, blank=True, on_delete=models.SET_NULL)
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=20, default="ms")
    target = models.FloatField()
    comparison = models.CharField(max_length=2, default="lt", choices=[("lt", "<"), ("gt", ">")])
    p50 = models.FloatField(null=True, blank=True)
    p95 = models.FloatField(null=True, blank=True)
    samples = models.JSONField(default=list, blank=True)
    ok = models.BooleanField(null=True)
    note = models.CharField(max_length=500, blank=True)
    percentile = models.FloatField(default=95, help_text="The percentile p95 holds and the target judges.")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="measurement_unique_key")]

    def __str__(self) -> str:
        return f"{self.name}: {self.p50} {self.unit}"


def validate_regex(value: str) -> None:
    try:
        regex.compile(value)
    except regex.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from None
    if problem := backtracking_shape(value):
        raise ValidationError(problem)


def validate_rule_details(value: object) -> None:
    """Details a failure must carry: a mapping of names to plain values."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError('Details are a mapping of names to values, e.g. {"close_code": 1000}.')
    if any(isinstance(v, dict | list) for v in value.values()):
        raise ValidationError("Each detail is a plain value (text, a number, true/false).")


class FailureRule(models.Model):
    """A rule that names a failure's class (see runs.analysis.classification).

    Rules are tried in ``order``; the first whose conditions all hold wins. The built-in
    set is created by a migration and may be edited, reordered or extended in the admin.
    Probe failures carry a code and details; imported results only a message.
    """

    name = models.SlugField(max_length=64, unique=True, help_text="The class name results carry.")
    label = models.CharField(max_length=200)
    code = models.CharField(
        max_length=200, blank=True, help_text="Failure codes it matches, space-separated; * matches any part (ws.*)."
    )
    details = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_rule_details],
        help_text='Details the failure must carry, e.g. {"close_code": 1000}.',
    )
    qualifier = models.CharField(
        max_length=50,
        blank=True,
        help_text="A detail whose value is added to the class (metric: one class per metric).",
    )
    message_regex = models.CharField(
        max_length=500, blank=True, validators=[validate_regex], help_text="Tried on the first 4 KB of the message."
    )
    http_status_min = models.PositiveIntegerField(null=True, blank=True)
    http_status_max = models.PositiveIntegerField(null=True, blank=True)
    order = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.label


NOTE_MAX_CHARS = 20_000  # a long root-cause write-up (about 3,000 words); runs.notes enforces it


class Note(models.Model):
    """Human analysis of a run (root cause, five whys, next steps), in Markdown, and that
    Markdown as sanitized HTML, rendered once when the note is saved (``runs.notes``)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField(max_length=NOTE_MAX_CHARS)
    html = models.TextField(default="", editable=False)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"Note on run #{self.run_id}"


class NoteRevision(models.Model):
    """One version of a note as it was saved: the note's history, oldest first (written by
    ``runs.notes``). ``as_moderator`` marks a version someone other than the author wrote
    (DevOps moderating); ``editor`` is empty for the text a note had before history was kept."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField()
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    as_moderator = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"Version of note {self.note_id} by {self.editor or 'unknown'}"


def new_badge_key() -> str:
    return secrets.token_urlsafe(24)


class Badge(models.Model):
    """A status badge for one environment and suite, public only to who knows its key."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE)
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE)
    key = models.CharField(max_length=64, unique=True, default=new_badge_key)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "suite"], name="badge_unique_pair")]

    def __str__(self) -> str:
        return f"{self.suite.name} on {self.environment.name}"


class ApiToken(models.Model):
    """A user's API token. Only a SHA-256 of its secret part is stored: the token is shown
    once, at creation. Tokens act with their user's role and can be revoked."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'CI staging pipeline'.")
    prefix = models.CharField(max_length=12, unique=True, help_text="Public part, shown to tell tokens apart.")
    secret_hash = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} (gp_{self.prefix}_…)"

    @property
    def active(self) -> bool:
        return self.revoked is None


# Webhook alerts (runs.alerts decides and builds payloads; runs.tasks delivers).

MASK_TAIL_CHARS = 4


def mask_url(url: str) -> str:
    """Scheme, host and the last characters of a secret URL: ``https://hooks.slack.com/…a1B2``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "…"
    if ":" in host:
        host = f"[{host}]"
    secret = url.split(parts.netloc, 1)[-1] if parts.netloc else url
    tail = secret[-MASK_TAIL_CHARS:] if len(secret) >= 3 * MASK_TAIL_CHARS else ""
    return f"{parts.scheme}://{host}{port}/…{tail}"


WEBHOOK_ALLOWLIST_HINT = (
    "GOLDPATH_WEBHOOK_ALLOWED_HOSTS may name it (an address, a network, or localhost for this machine)."
)


def webhook_policy() -> NetworkPolicy:
    """Where webhooks may connect: the probes' address rule (probes.net.NetworkPolicy) with
    GOLDPATH_WEBHOOK_ALLOWED_HOSTS as the allowlist, so by default public addresses only. A
    webhook on loopback or a private network would let anyone who configures alerts POST
    to the installation's own services."""
    return NetworkPolicy(frozenset(settings.GOLDPATH_WEBHOOK_ALLOWED_HOSTS), settings.GOLDPATH_ALLOW_LINK_LOCAL)


def validate_webhook_url(value: str) -> None:
    """http(s) with a host, not a link-local or metadata address, and, when the host is an
    address, one webhook_policy allows. Messages never echo the URL: it is a secret."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValidationError("That is not a usable URL (check the host and port).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("A webhook URL starts with http:// or https:// and names a host.")
    # A host name is checked again, on the address it resolves to, before each delivery.
    host = connected_host(parts.hostname)
    if refused_host(host, settings.GOLDPATH_ALLOW_LINK_LOCAL):
        raise ValidationError(f"Webhooks may not target link-local or cloud-metadata addresses ({parts.hostname}).")
    if parse_address(host) is not None and not webhook_policy().address_allowed(host):
        raise ValidationError(
            f"Webhooks reach public addresses only; {parts.hostname} is not one. {WEBHOOK_ALLOWLIST_HINT}"
        )


class Webhook(models.Model):
    """Where alerts go. The URL is a secret (Slack's carry their token): it is shown only
    masked (``masked_url``) and never sent back to a browser."""

    class Kind(models.TextChoices):
        GENERIC = "generic", "Generic JSON"
        SLACK = "slack", "Slack-compatible"

    name = models.CharField(max_length=100)
    url = models.CharField(max_length=1000, validators=[validate_webhook_url])
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.GENERIC)
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: every environment."
    )
    suite = models.ForeignKey(Suite, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: every suite.")
    on_verdict_change = models.BooleanField("alert when the verdict changes", default=True)
    on_mrr_rise = models.BooleanField("alert when the MRR at risk rises", default=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


class WebhookDelivery(models.Model):
    """One alert for one webhook; the delivery log. ``payload`` is built when the alert is
    decided, so every retry sends the same thing.

    Allowed changes (enforced by ``runs.tasks.deliver``): pending -> delivered | failed;
    delivered and failed are final. ``attempts`` counts the POSTs made. ``next_attempt_at``
    says when a pending delivery is due: while an attempt is in flight it lies past that
    attempt's time limit, so a duplicate message cannot POST twice at once; one overdue by
    much means the broker lost its message (``runs.alerts.resend_lost_deliveries``).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text="Empty for a test send."
    )
    event = models.CharField(max_length=30)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "run", "event"],
                condition=~models.Q(event="test"),
                name="webhookdelivery_once_per_event",
            )
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_pending_due", condition=models.Q(status="pending"))
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook} ({self.status})"
