"""Upgrading a database of the first version (migration 0013) keeps what its admins wrote:
failure rules, built-in rule settings, environments' client settings and schedules."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEAT = ("django_celery_beat", "0019_alter_periodictasks_options")
BEFORE = [("runs", "0013_webhook_delivery_next_attempt"), BEAT]
AFTER = [("runs", "0017_schedules_task_name"), BEAT]


@pytest.fixture
def migrate():
    """Migrate to the given targets; the database goes back to the latest afterwards."""

    def to(targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield to
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_keeps_rules_settings_environments_and_schedules(migrate):
    old = migrate(BEFORE)
    FailureRule = old.get_model("runs", "FailureRule")
    FailureRule.objects.create(name="gateway-1001", label="Gateway going away", close_code=1001, order=5)
    FailureRule.objects.create(name="upstream-5xx", label="Upstream 5xx", http_status_min=500, http_status_max=599)
    # as 0003 seeded it; a flush by an earlier transactional test may have removed the row
    FailureRule.objects.update_or_create(
        name="ws-1011-server-error", defaults={"close_code": 1011, "enabled": False, "order": 1, "label": "Ours: 1011"}
    )
    old.get_model("runs", "Environment").objects.create(
        name="staging", base_url="http://127.0.0.1:8001", client_id="demo", client_secret_env="STAGING_SECRET"
    )
    interval = old.get_model("django_celery_beat", "IntervalSchedule").objects.create(every=5, period="minutes")
    old.get_model("django_celery_beat", "PeriodicTask").objects.create(
        name="golden path every 5 min", task="probes.run_scheduled", interval=interval
    )

    new = migrate(AFTER)
    rules = {rule.name: rule for rule in new.get_model("runs", "FailureRule").objects.all()}
    assert (rules["gateway-1001"].code, rules["gateway-1001"].details) == ("ws.closed", {"close_code": 1001})
    assert (rules["upstream-5xx"].code, rules["upstream-5xx"].http_status_min) == ("http.status", 500)
    builtin = rules["ws-1011-server-error"]
    assert (builtin.enabled, builtin.order, builtin.label) == (False, 1, "Ours: 1011")
    assert (builtin.code, builtin.details) == ("ws.closed", {"close_code": 1011})
    assert "connection-closed" in rules and "events-missing" not in rules  # a class that no longer occurs
    environment = new.get_model("runs", "Environment").objects.get(name="staging")
    assert environment.variables == {"client_id": "demo", "client_secret": "${env.STAGING_SECRET}"}
    [task] = new.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="golden path every 5 min")
    assert task.task == "runs.run_scheduled"


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_clears_what_receivers_answered_from_the_delivery_log(migrate):
    old = migrate([("runs", "0018_suite_definition_key_order")])
    webhook = old.get_model("runs", "Webhook").objects.create(name="ops", url="http://127.0.0.1:9/hook")
    logged = {
        "HTTP 500: <pre>postgres://app:hunter2@db</pre>": "HTTP 500 Internal Server Error",
        "HTTP 599: hunter2": "HTTP 599",
        "RemoteProtocolError: illegal status line: bytearray(b'hunter2')": "RemoteProtocolError",
        "HTTP 302: redirects are not followed; give the final URL": None,
        "DNS failure: cannot resolve hooks.example.com (Name or service not known)": None,
    }
    Delivery = old.get_model("runs", "WebhookDelivery")
    for error in logged:
        Delivery.objects.create(webhook=webhook, event="test", error=error)

    new = migrate([("runs", "0019_webhook_errors_without_receiver_text")])
    kept = list(new.get_model("runs", "WebhookDelivery").objects.order_by("pk").values_list("error", flat=True))
    assert kept == [after or before for before, after in logged.items()]


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_gives_each_note_its_text_as_a_first_version_of_unknown_editor(migrate):
    old = migrate([("runs", "0019_webhook_errors_without_receiver_text")])
    environment = old.get_model("runs", "Environment").objects.create(name="staging", base_url="http://127.0.0.1:9")
    suite = old.get_model("runs", "Suite").objects.create(name="web", title="Web")
    run = old.get_model("runs", "Run").objects.create(environment=environment, suite=suite, base_url="http://x")
    old.get_model("runs", "Note").objects.create(run=run, body="Root cause: DNS.")

    new = migrate([("runs", "0020_note_revisions")])
    [version] = new.get_model("runs", "NoteRevision").objects.all()
    assert (version.body, version.editor_id, version.as_moderator) == ("Root cause: DNS.", None, False)


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_renders_each_notes_html_once(migrate):
    old = migrate([("runs", "0022_builtin_error_codes_as_words")])
    environment = old.get_model("runs", "Environment").objects.create(name="staging", base_url="http://127.0.0.1:9")
    suite = old.get_model("runs", "Suite").objects.create(name="web", title="Web")
    run = old.get_model("runs", "Run").objects.create(environment=environment, suite=suite, base_url="http://x")
    old.get_model("runs", "Note").objects.create(run=run, body="Root cause: **DNS** <script>x</script>")

    new = migrate([("runs", "0023_note_html")])
    [note] = new.get_model("runs", "Note").objects.all()
    assert note.html == "<p>Root cause: <strong>DNS</strong> &lt;script&gt;x&lt;/script&gt;</p>\n"
