"""A dashboard edit of a suite remembers the loaded version it changed, so loading that
unchanged file again keeps the edit current."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0020_note_revisions"),
    ]

    operations = [
        migrations.AddField(
            model_name="suiteversion",
            name="based_on",
            field=models.ForeignKey(
                blank=True,
                help_text="For a version edited in the dashboard: the loaded version the edit started from.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="runs.suiteversion",
            ),
        ),
    ]
