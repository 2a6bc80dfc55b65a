"""Suites as versioned data: SuiteVersion, impact tags per suite, environment variables,
structured failure rules, the judged percentile of a measurement."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import runs.models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0013_webhook_delivery_next_attempt"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SuiteVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField()),
                (
                    "digest",
                    models.CharField(help_text="SHA-256 of the definition: same content, same version.", max_length=64),
                ),
                ("definition", models.JSONField(help_text="The validated suite file, as data.")),
                ("source", models.TextField(blank=True, help_text="The file's text.")),
                ("source_path", models.CharField(blank=True, max_length=500)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "suite",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="versions", to="runs.suite"
                    ),
                ),
            ],
            options={"ordering": ["suite", "-number"]},
        ),
        migrations.AddConstraint(
            model_name="suiteversion",
            constraint=models.UniqueConstraint(fields=("suite", "number"), name="suiteversion_unique_number"),
        ),
        migrations.AddConstraint(
            model_name="suiteversion",
            constraint=models.UniqueConstraint(fields=("suite", "digest"), name="suiteversion_unique_digest"),
        ),
        migrations.AddField(
            model_name="suite",
            name="origin",
            field=models.CharField(
                choices=[("probe", "probe suite"), ("import", "import suite")], default="probe", max_length=10
            ),
        ),
        migrations.AddField(
            model_name="suite",
            name="current_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="runs.suiteversion",
            ),
        ),
        migrations.AlterField(
            model_name="suite",
            name="source_path",
            field=models.CharField(blank=True, help_text="The file the current version came from.", max_length=500),
        ),
        migrations.AddField(
            model_name="impacttag",
            name="suite",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="impact_tags", to="runs.suite"
            ),
        ),
        migrations.AlterField(model_name="impacttag", name="name", field=models.CharField(max_length=100)),
        migrations.RenameField(model_name="testcase", old_name="kind", new_name="declares"),
        migrations.AlterField(
            model_name="testcase",
            name="declares",
            field=models.CharField(
                blank=True,
                help_text="The evidence its steps can show (http ws sse auth); empty when imported.",
                max_length=50,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="version",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty for imports.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runs",
                to="runs.suiteversion",
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="variables",
            field=models.JSONField(
                blank=True, default=dict, help_text="The environment's variables when it was created."
            ),
        ),
        migrations.AddField(
            model_name="environment",
            name="variables",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Overrides of suite variables; secrets only as ${env.NAME}.",
                validators=[runs.models.validate_variables],
            ),
        ),
        migrations.AlterField(
            model_name="environment",
            name="ws_url",
            field=models.CharField(
                blank=True,
                help_text="Where connect steps' paths go. Empty: the base URL with ws:// or wss://.",
                max_length=500,
                validators=[runs.models.validate_probe_url],
                verbose_name="WebSocket URL",
            ),
        ),
        migrations.AddField(
            model_name="measurement",
            name="percentile",
            field=models.FloatField(default=95, help_text="The percentile p95 holds and the target judges."),
        ),
        migrations.AddField(
            model_name="failurerule",
            name="code",
            field=models.CharField(
                blank=True,
                help_text="Failure codes it matches, space-separated; * matches any part (ws.*).",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="failurerule",
            name="details",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='Details the failure must carry, e.g. {"close_code": 1000}.',
                validators=[runs.models.validate_rule_details],
            ),
        ),
        migrations.AddField(
            model_name="failurerule",
            name="qualifier",
            field=models.CharField(
                blank=True,
                help_text="A detail whose value is added to the class (metric: one class per metric).",
                max_length=50,
            ),
        ),
        migrations.AlterField(
            model_name="failurerule",
            name="message_regex",
            field=models.CharField(
                blank=True,
                help_text="Tried on the first 4 KB of the message.",
                max_length=500,
                validators=[runs.models.validate_regex],
            ),
        ),
    ]
