"""Notes keep their history. A note's text from before gets one version with no editor:
who wrote it is not known (anyone who could write notes could edit any note)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def first_versions(apps, schema_editor):
    Note, NoteRevision = apps.get_model("runs", "Note"), apps.get_model("runs", "NoteRevision")
    NoteRevision.objects.bulk_create(
        NoteRevision(note=note, body=note.body, created=note.updated) for note in Note.objects.iterator()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0019_webhook_errors_without_receiver_text"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NoteRevision",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("body", models.TextField()),
                ("as_moderator", models.BooleanField(default=False)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "editor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "note",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="revisions", to="runs.note"
                    ),
                ),
            ],
            options={
                "ordering": ["created", "id"],
            },
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
    ]
