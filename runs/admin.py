from django.contrib import admin
from django.http import HttpRequest

from runs.analysis.classification import backtracking_shape
from runs.models import (
    Category,
    Environment,
    FailureRule,
    ImpactTag,
    Measurement,
    Note,
    Result,
    Run,
    Suite,
    SuiteVersion,
    TestCase,
    Webhook,
    WebhookDelivery,
)


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "ws_url", "allowed_hosts")
    search_fields = ("name", "base_url")


class CategoryInline(admin.TabularInline):
    model = Category
    extra = 0


@admin.register(Suite)
class SuiteAdmin(admin.ModelAdmin):
    """Suites change by loading their file (or the API): a version is never edited."""

    list_display = ("name", "title", "origin", "current_version", "loaded_at")
    readonly_fields = ("origin", "current_version", "source_path", "loaded_at")
    inlines = [CategoryInline]


@admin.register(SuiteVersion)
class SuiteVersionAdmin(admin.ModelAdmin):
    list_display = ("suite", "number", "digest", "created", "created_by")
    list_filter = ("suite",)
    readonly_fields = [field.name for field in SuiteVersion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SuiteVersion | None = None) -> bool:
        return False


@admin.register(FailureRule)
class FailureRuleAdmin(admin.ModelAdmin):
    """Classification rules, tried in order; the first that matches names a failure's class."""

    list_display = ("name", "label", "code", "details", "qualifier", "message_regex", "order", "enabled", "not_applied")
    list_editable = ("order", "enabled")
    search_fields = ("name", "label", "code")

    @admin.display(description="Not applied because")
    def not_applied(self, rule: FailureRule) -> str:
        """A regex saved before the admin refused backtracking shapes is skipped by the
        classifier (``active_rules``); this column says why, so it can be fixed."""
        return backtracking_shape(rule.message_regex) if rule.message_regex else ""


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "suite", "order", "critical")
    list_filter = ("suite", "critical")


@admin.register(ImpactTag)
class ImpactTagAdmin(admin.ModelAdmin):
    list_display = ("name", "suite", "mrr", "severity")
    list_filter = ("suite", "severity")


@admin.register(TestCase)
class TestCaseAdmin(admin.ModelAdmin):
    list_display = ("name", "node_id", "suite", "category", "declares", "active")
    list_filter = ("suite", "category", "active")
    search_fields = ("name", "node_id")
    filter_horizontal = ("impact_tags",)


class ResultInline(admin.TabularInline):
    model = Result
    extra = 0
    fields = ("test_case", "outcome", "duration_s", "message", "failure_class")
    readonly_fields = fields
    can_delete = False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "suite", "environment", "status", "verdict", "trigger", "created", "passed", "total")
    list_filter = ("status", "verdict", "trigger", "environment", "suite")
    raw_id_fields = ("parent", "triggered_by")
    readonly_fields = ("created", "started_at", "finished_at", "heartbeat_at", "worker")
    inlines = [ResultInline]


@admin.register(Result)
class ResultAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "test_case", "outcome", "duration_s", "failure_class")
    list_filter = ("outcome",)
    raw_id_fields = ("run", "test_case")


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ("run", "name", "p50", "p95", "target", "ok")
    raw_id_fields = ("run", "test_case")


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    """Read only: notes are written on the run page, through runs.notes, which keeps their
    limits, their rendered HTML and their history."""

    list_display = ("run", "author", "created")
    readonly_fields = ("run", "author", "body", "created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Note | None = None) -> bool:
        return False


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """The URL is a secret: shown masked, set and changed on the Alerts page only."""

    list_display = ("name", "masked_url", "kind", "environment", "suite", "on_verdict_change", "on_mrr_rise", "enabled")
    list_filter = ("kind", "enabled", "environment", "suite")
    exclude = ("url",)
    readonly_fields = ("masked_url", "created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "webhook", "run", "event", "status", "attempts", "response_code", "created", "delivered_at")
    list_filter = ("status", "event")
    raw_id_fields = ("webhook", "run")
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
