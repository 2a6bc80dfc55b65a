"""Goldpath's schema as one migration (the 22 written while the project was unreleased,
squashed on 2026-12-02), plus the data a new installation starts with: the three role
groups and the built-in failure rules, written out here as values so this migration does
the same whatever runs.analysis.classification later says (a changed built-in rule needs a
data migration of its own). A database that applied all 22 takes this one as applied."""

import django.db.models.deletion
import django.utils.timezone
import runs.fields
import runs.models
from django.conf import settings
from django.db import migrations, models


ROLES = ("Manager", "DevOps", "Engineer")

# The built-in rules as 0003-0022 left them, in their order (runs.history.active_rules adds
# any built-in rule the table does not name).
FAILURE_RULES = [
    {'name': 'ws-closed-1000-after-send', 'label': 'WebSocket closed normally (1000) right after send', 'code': 'ws.closed', 'details': {'close_code': 1000, 'initiator': 'server', 'after_send': True}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 10, 'enabled': True},
    {'name': 'ws-1011-server-error', 'label': 'WebSocket closed with 1011 internal error', 'code': 'ws.closed', 'details': {'close_code': 1011}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 20, 'enabled': True},
    {'name': 'ws-1008-policy', 'label': 'WebSocket closed with 1008 policy violation', 'code': 'ws.closed', 'details': {'close_code': 1008}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 30, 'enabled': True},
    {'name': 'connection-closed', 'label': 'Connection closed before the expected frames', 'code': 'ws.closed sse.closed', 'details': {}, 'qualifier': 'close_code', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 40, 'enabled': True},
    {'name': 'message-too-big', 'label': 'Message over the size limit', 'code': '*.too_large', 'details': {}, 'qualifier': '', 'message_regex': 'too large|exceeds \\d+ bytes|payload size', 'http_status_min': None, 'http_status_max': None, 'order': 50, 'enabled': True},
    {'name': 'ws-handshake-rejected', 'label': 'WebSocket handshake rejected', 'code': 'ws.handshake_rejected', 'details': {}, 'qualifier': 'status', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 60, 'enabled': True},
    {'name': 'frame-missing', 'label': 'Expected frame missing', 'code': 'ws.frame_missing sse.event_missing', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 70, 'enabled': True},
    {'name': 'frame-out-of-order', 'label': 'Frames out of order', 'code': 'ws.out_of_order sse.out_of_order', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 80, 'enabled': True},
    {'name': 'forbidden-frame', 'label': 'Forbidden frame received', 'code': 'ws.forbidden_frame sse.forbidden_event', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 90, 'enabled': True},
    {'name': 'unexpected-frame', 'label': 'Unexpected frame in a strict sequence', 'code': 'ws.unexpected_frame sse.unexpected_event', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 100, 'enabled': True},
    {'name': 'not-json', 'label': 'Answer is not the JSON expected', 'code': '*.not_json sse.not_event_stream', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 110, 'enabled': True},
    {'name': 'connect-timeout', 'label': 'Connect timeout', 'code': 'timeout.connect', 'details': {}, 'qualifier': '', 'message_regex': 'connect(?:ion)? timed? ?out', 'http_status_min': None, 'http_status_max': None, 'order': 120, 'enabled': True},
    {'name': 'receive-timeout', 'label': 'Receive timeout', 'code': 'timeout.*', 'details': {}, 'qualifier': '', 'message_regex': 'timed? ?out\\b|timeout', 'http_status_min': None, 'http_status_max': None, 'order': 130, 'enabled': True},
    {'name': 'metric-over-target', 'label': 'Performance target missed', 'code': 'metric.over_target', 'details': {}, 'qualifier': 'metric', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 140, 'enabled': True},
    {'name': 'auth-not-enforced', 'label': 'Authentication not enforced', 'code': 'auth.not_enforced', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 150, 'enabled': True},
    {'name': 'auth-rejected', 'label': 'Credentials refused when asking for a token', 'code': 'auth.rejected auth.no_token', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 160, 'enabled': True},
    {'name': 'http-5xx', 'label': 'HTTP 5xx from the server', 'code': 'http.status', 'details': {}, 'qualifier': '', 'message_regex': '\\bHTTP 5\\d\\d\\b|\\b5\\d\\d (?:Internal Server Error|Bad Gateway|Service Unavailable)', 'http_status_min': 500, 'http_status_max': 599, 'order': 170, 'enabled': True},
    {'name': 'http-4xx', 'label': 'Unexpected HTTP 4xx', 'code': 'http.status', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': 400, 'http_status_max': 499, 'order': 180, 'enabled': True},
    {'name': 'http-status', 'label': 'Unexpected HTTP status', 'code': 'http.status', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 190, 'enabled': True},
    {'name': 'response-mismatch', 'label': 'Response does not match', 'code': 'http.json_mismatch http.header_mismatch http.body_mismatch http.schema http.time *.save_missing ws.close_code ws.not_closed ws.handshake_accepted', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 200, 'enabled': True},
    {'name': 'dns-failure', 'label': 'DNS failure', 'code': 'net.dns', 'details': {}, 'qualifier': '', 'message_regex': 'name or service not known|getaddrinfo|\\bENOTFOUND\\b', 'http_status_min': None, 'http_status_max': None, 'order': 210, 'enabled': True},
    {'name': 'connection-refused', 'label': 'Connection refused', 'code': 'net.refused', 'details': {}, 'qualifier': '', 'message_regex': 'connection refused|\\bECONNREFUSED\\b', 'http_status_min': None, 'http_status_max': None, 'order': 220, 'enabled': True},
    {'name': 'connection-reset', 'label': 'Connection reset by the server', 'code': 'net.reset', 'details': {}, 'qualifier': '', 'message_regex': 'connection reset|\\bECONNRESET\\b', 'http_status_min': None, 'http_status_max': None, 'order': 230, 'enabled': True},
    {'name': 'tls-error', 'label': 'TLS error', 'code': 'net.tls', 'details': {}, 'qualifier': '', 'message_regex': '\\bTLS\\b|\\bSSL\\b|certificate verify', 'http_status_min': None, 'http_status_max': None, 'order': 240, 'enabled': True},
    {'name': 'host-not-allowed', 'label': "Host outside the environment's allowlist", 'code': 'net.not_allowed', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 250, 'enabled': True},
    {'name': 'network-error', 'label': 'Network error', 'code': 'net.* http.protocol', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 260, 'enabled': True},
    {'name': 'missing-variable', 'label': 'Variable missing on the worker', 'code': 'config.*', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 270, 'enabled': True},
    {'name': 'probe-error', 'label': 'Probe engine error', 'code': 'probe.error', 'details': {}, 'qualifier': '', 'message_regex': '', 'http_status_min': None, 'http_status_max': None, 'order': 280, 'enabled': True},
    {'name': 'assertion', 'label': 'Assertion mismatch', 'code': '', 'details': {}, 'qualifier': '', 'message_regex': 'assert|expected|mismatch|!=|not equal|\\bwant\\b|but was', 'http_status_min': None, 'http_status_max': None, 'order': 290, 'enabled': True},
]


def seed(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    FailureRule = apps.get_model("runs", "FailureRule")
    FailureRule.objects.bulk_create(FailureRule(**rule) for rule in FAILURE_RULES)


class Migration(migrations.Migration):

    initial = True

    replaces = [
        ("runs", "0001_initial"),
        ("runs", "0002_analysis"),
        ("runs", "0003_builtin_failure_rules"),
        ("runs", "0004_roles"),
        ("runs", "0005_run_progress_and_request_key"),
        ("runs", "0006_run_attempts"),
        ("runs", "0007_api_tokens"),
        ("runs", "0008_run_results_pruned_at"),
        ("runs", "0009_badges"),
        ("runs", "0010_webhooks"),
        ("runs", "0011_result_failure_class_index"),
        ("runs", "0012_drop_indexes_covered_by_unique"),
        ("runs", "0013_webhook_delivery_next_attempt"),
        ("runs", "0014_suite_versions"),
        ("runs", "0015_suite_versions_data"),
        ("runs", "0016_suite_versions_cleanup"),
        ("runs", "0017_schedules_task_name"),
        ("runs", "0018_suite_definition_key_order"),
        ("runs", "0019_webhook_errors_without_receiver_text"),
        ("runs", "0020_note_revisions"),
        ("runs", "0021_suite_version_based_on"),
        ("runs", "0022_builtin_error_codes_as_words"),
    ]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name='FailureRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(help_text='The class name results carry.', max_length=64, unique=True)),
                ('label', models.CharField(max_length=200)),
                ('code', models.CharField(blank=True, help_text='Failure codes it matches, space-separated; * matches any part (ws.*).', max_length=200)),
                ('details', models.JSONField(blank=True, default=dict, help_text='Details the failure must carry, e.g. {"close_code": 1000}.', validators=[runs.models.validate_rule_details])),
                ('qualifier', models.CharField(blank=True, help_text='A detail whose value is added to the class (metric: one class per metric).', max_length=50)),
                ('message_regex', models.CharField(blank=True, help_text='Tried on the first 4 KB of the message.', max_length=500, validators=[runs.models.validate_regex])),
                ('http_status_min', models.PositiveIntegerField(blank=True, null=True)),
                ('http_status_max', models.PositiveIntegerField(blank=True, null=True)),
                ('order', models.PositiveIntegerField(default=100)),
                ('enabled', models.BooleanField(default=True)),
            ],
            options={
                'ordering': ['order', 'name'],
            },
        ),
        migrations.CreateModel(
            name='Suite',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(max_length=64, unique=True)),
                ('title', models.CharField(max_length=200)),
                ('description', models.TextField(blank=True)),
                ('origin', models.CharField(choices=[('probe', 'probe suite'), ('import', 'import suite')], default='probe', max_length=10)),
                ('source_path', models.CharField(blank=True, help_text='The file the current version came from.', max_length=500)),
                ('loaded_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text="What it is for, e.g. 'CI staging pipeline'.", max_length=100)),
                ('prefix', models.CharField(help_text='Public part, shown to tell tokens apart.', max_length=12, unique=True)),
                ('secret_hash', models.CharField(max_length=64)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_used', models.DateTimeField(blank=True, null=True)),
                ('revoked', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created'],
            },
        ),
        migrations.CreateModel(
            name='Environment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(max_length=64, unique=True)),
                ('base_url', models.CharField(max_length=500, validators=[runs.models.validate_probe_url])),
                ('ws_url', models.CharField(blank=True, help_text="Where connect steps' paths go. Empty: the base URL with ws:// or wss://.", max_length=500, validators=[runs.models.validate_probe_url], verbose_name='WebSocket URL')),
                ('allowed_hosts', models.CharField(blank=True, help_text='Comma-separated host names probes may reach. Empty: the hosts of the URLs above.', max_length=1000)),
                ('variables', models.JSONField(blank=True, default=dict, help_text='Overrides of suite variables; secrets only as ${env.NAME}.', validators=[runs.models.validate_variables])),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='Note',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('body', models.TextField()),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated', models.DateTimeField(auto_now=True)),
                ('author', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['created'],
            },
        ),
        migrations.CreateModel(
            name='NoteRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('body', models.TextField()),
                ('as_moderator', models.BooleanField(default=False)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('editor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('note', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='revisions', to='runs.note')),
            ],
            options={
                'ordering': ['created', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Run',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('trigger', models.CharField(choices=[('manual', 'Manual'), ('rerun', 'Rerun'), ('schedule', 'Schedule'), ('api', 'Api'), ('import', 'Import')], default='manual', max_length=20)),
                ('scope', models.CharField(choices=[('all', 'All'), ('failed', 'Failed'), ('category', 'Category'), ('test', 'Test')], default='all', max_length=20)),
                ('expected', models.PositiveIntegerField(default=0, help_text='Checks in scope, for progress.')),
                ('request_key', models.CharField(blank=True, help_text='One run per submitted form (double clicks).', max_length=64, null=True, unique=True)),
                ('base_url', models.CharField(help_text="Where this run's probes were sent.", max_length=500)),
                ('ws_url', models.CharField(blank=True, max_length=500)),
                ('variables', models.JSONField(blank=True, default=dict, help_text="The environment's variables when it was created.")),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('finished', 'Finished'), ('error', 'Error'), ('cancelled', 'Cancelled')], default='queued', max_length=20)),
                ('verdict', models.CharField(blank=True, choices=[('PASS', 'PASS'), ('PARTIAL SUCCESS', 'PARTIAL SUCCESS'), ('FAIL', 'FAIL')], max_length=20)),
                ('status_message', models.TextField(blank=True)),
                ('worker', models.CharField(blank=True, max_length=200)),
                ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveIntegerField(default=0, help_text='Times a worker has claimed the run.')),
                ('created', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('duration_s', models.FloatField(blank=True, null=True)),
                ('total', models.PositiveIntegerField(default=0)),
                ('passed', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('errors', models.PositiveIntegerField(default=0)),
                ('skipped', models.PositiveIntegerField(default=0)),
                ('mrr_at_risk', models.PositiveIntegerField(default=0)),
                ('realness_score', models.FloatField(blank=True, null=True)),
                ('mock_flags', models.JSONField(blank=True, default=list, help_text='Run-level mock indicators.')),
                ('mock_count', models.PositiveIntegerField(default=0, help_text='Results and run-level indicators flagged.')),
                ('flaky_count', models.PositiveIntegerField(default=0, help_text='Test cases flaky over recent runs.')),
                ('results_pruned_at', models.DateTimeField(blank=True, help_text='When prune_runs removed its results (the summary above stays).', null=True)),
                ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='runs.environment')),
                ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reruns', to='runs.run')),
                ('triggered_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                ('suite', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='runs.suite')),
            ],
            options={
                'ordering': ['-created', '-id'],
            },
        ),
        migrations.AddField(
            model_name='note',
            name='run',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notes', to='runs.run'),
        ),
        migrations.CreateModel(
            name='ImpactTag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('mrr', models.PositiveIntegerField(help_text='Monthly recurring revenue, in dollars.')),
                ('severity', models.CharField(choices=[('high', 'High'), ('medium', 'Medium'), ('low', 'Low')], default='medium', max_length=10)),
                ('description', models.TextField(blank=True)),
                ('suite', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='impact_tags', to='runs.suite')),
            ],
            options={
                'ordering': ['-mrr', 'name'],
            },
        ),
        migrations.CreateModel(
            name='Category',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('order', models.PositiveIntegerField(default=0)),
                ('critical', models.BooleanField(default=False)),
                ('suite', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='categories', to='runs.suite')),
            ],
            options={
                'verbose_name_plural': 'categories',
                'ordering': ['suite', 'order', 'name'],
            },
        ),
        migrations.CreateModel(
            name='Badge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(default=runs.models.new_badge_key, max_length=64, unique=True)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('environment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='runs.environment')),
                ('suite', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='runs.suite')),
            ],
        ),
        migrations.CreateModel(
            name='SuiteVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('digest', models.CharField(help_text='SHA-256 of the definition: same content, same version.', max_length=64)),
                ('definition', runs.fields.OrderedJSONField(help_text="The validated suite file, as data, in the file's order.")),
                ('source', models.TextField(blank=True, help_text="The file's text.")),
                ('source_path', models.CharField(blank=True, max_length=500)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('based_on', models.ForeignKey(blank=True, help_text='For a version edited in the dashboard: the loaded version the edit started from.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='runs.suiteversion')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                ('suite', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='runs.suite')),
            ],
            options={
                'ordering': ['suite', '-number'],
            },
        ),
        migrations.AddField(
            model_name='suite',
            name='current_version',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='runs.suiteversion'),
        ),
        migrations.AddField(
            model_name='run',
            name='version',
            field=models.ForeignKey(blank=True, help_text='Empty for imports.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='runs.suiteversion'),
        ),
        migrations.CreateModel(
            name='TestCase',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('node_id', models.CharField(max_length=500)),
                ('name', models.CharField(max_length=300)),
                ('declares', models.CharField(blank=True, help_text='The evidence its steps can show (http ws sse auth); empty when imported.', max_length=50)),
                ('order', models.PositiveIntegerField(default=0)),
                ('active', models.BooleanField(default=True, help_text='Still defined in the suite file.')),
                ('category', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='test_cases', to='runs.category')),
                ('impact_tags', models.ManyToManyField(blank=True, related_name='test_cases', to='runs.impacttag')),
                ('suite', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='test_cases', to='runs.suite')),
            ],
            options={
                'ordering': ['suite', 'order', 'name'],
            },
        ),
        migrations.AddField(
            model_name='run',
            name='scope_test_cases',
            field=models.ManyToManyField(blank=True, related_name='+', to='runs.testcase'),
        ),
        migrations.CreateModel(
            name='Result',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('outcome', models.CharField(choices=[('passed', 'Passed'), ('failed', 'Failed'), ('error', 'Error'), ('skipped', 'Skipped')], max_length=10)),
                ('duration_s', models.FloatField()),
                ('message', models.TextField(blank=True)),
                ('failure_class', models.CharField(blank=True, max_length=100)),
                ('evidence', models.JSONField(blank=True, default=dict)),
                ('mock_flags', models.JSONField(blank=True, default=list)),
                ('attempt', models.PositiveIntegerField(default=1)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('run', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='results', to='runs.run')),
                ('test_case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='results', to='runs.testcase')),
            ],
            options={
                'ordering': ['test_case__order', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Measurement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.SlugField(max_length=100)),
                ('name', models.CharField(max_length=200)),
                ('unit', models.CharField(default='ms', max_length=20)),
                ('target', models.FloatField()),
                ('comparison', models.CharField(choices=[('lt', '<'), ('gt', '>')], default='lt', max_length=2)),
                ('p50', models.FloatField(blank=True, null=True)),
                ('p95', models.FloatField(blank=True, null=True)),
                ('samples', models.JSONField(blank=True, default=list)),
                ('ok', models.BooleanField(null=True)),
                ('note', models.CharField(blank=True, max_length=500)),
                ('percentile', models.FloatField(default=95, help_text='The percentile p95 holds and the target judges.')),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='measurements', to='runs.run')),
                ('test_case', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='runs.testcase')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='Webhook',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('url', models.CharField(max_length=1000, validators=[runs.models.validate_webhook_url])),
                ('kind', models.CharField(choices=[('generic', 'Generic JSON'), ('slack', 'Slack-compatible')], default='generic', max_length=10)),
                ('on_verdict_change', models.BooleanField(default=True, verbose_name='alert when the verdict changes')),
                ('on_mrr_rise', models.BooleanField(default=True, verbose_name='alert when the MRR at risk rises')),
                ('enabled', models.BooleanField(default=True)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('environment', models.ForeignKey(blank=True, help_text='Empty: every environment.', null=True, on_delete=django.db.models.deletion.CASCADE, to='runs.environment')),
                ('suite', models.ForeignKey(blank=True, help_text='Empty: every suite.', null=True, on_delete=django.db.models.deletion.CASCADE, to='runs.suite')),
            ],
            options={
                'ordering': ['name', 'id'],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(max_length=30)),
                ('payload', models.JSONField(default=dict)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('response_code', models.PositiveIntegerField(blank=True, null=True)),
                ('error', models.CharField(blank=True, max_length=500)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('run', models.ForeignKey(blank=True, help_text='Empty for a test send.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runs.run')),
                ('webhook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='runs.webhook')),
            ],
            options={
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-created', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='impacttag',
            constraint=models.UniqueConstraint(fields=('suite', 'name'), name='impacttag_unique_name'),
        ),
        migrations.AddConstraint(
            model_name='category',
            constraint=models.UniqueConstraint(fields=('suite', 'name'), name='category_unique_name'),
        ),
        migrations.AddConstraint(
            model_name='badge',
            constraint=models.UniqueConstraint(fields=('environment', 'suite'), name='badge_unique_pair'),
        ),
        migrations.AddConstraint(
            model_name='suiteversion',
            constraint=models.UniqueConstraint(fields=('suite', 'number'), name='suiteversion_unique_number'),
        ),
        migrations.AddConstraint(
            model_name='suiteversion',
            constraint=models.UniqueConstraint(fields=('suite', 'digest'), name='suiteversion_unique_digest'),
        ),
        migrations.AddConstraint(
            model_name='testcase',
            constraint=models.UniqueConstraint(fields=('suite', 'node_id'), name='testcase_unique_node'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['environment', 'suite', '-created'], name='runs_run_environ_58701a_idx'),
        ),
        migrations.AddIndex(
            model_name='result',
            index=models.Index(condition=models.Q(('failure_class', ''), _negated=True), fields=['failure_class', 'run'], name='result_class_run'),
        ),
        migrations.AddConstraint(
            model_name='result',
            constraint=models.UniqueConstraint(fields=('run', 'test_case', 'attempt'), name='result_unique_attempt'),
        ),
        migrations.AddConstraint(
            model_name='measurement',
            constraint=models.UniqueConstraint(fields=('run', 'key'), name='measurement_unique_key'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='delivery_pending_due'),
        ),
        migrations.AddConstraint(
            model_name='webhookdelivery',
            constraint=models.UniqueConstraint(condition=models.Q(('event', 'test'), _negated=True), fields=('webhook', 'run', 'event'), name='webhookdelivery_once_per_event'),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
