"""After 0015 moved their data: drop the fields it replaced, tie impact tags to a suite."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0015_suite_versions_data")]

    operations = [
        migrations.RemoveField(model_name="run", name="suite_version"),
        migrations.RemoveField(model_name="suite", name="version"),
        migrations.RemoveField(model_name="suite", name="definition"),
        migrations.RemoveField(model_name="environment", name="client_id"),
        migrations.RemoveField(model_name="environment", name="client_secret_env"),
        migrations.RemoveField(model_name="failurerule", name="close_code"),
        migrations.AlterField(
            model_name="impacttag",
            name="suite",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="impact_tags", to="runs.suite"
            ),
        ),
        migrations.AddConstraint(
            model_name="impacttag",
            constraint=models.UniqueConstraint(fields=("suite", "name"), name="impacttag_unique_name"),
        ),
    ]
