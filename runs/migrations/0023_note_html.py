"""Notes keep their Markdown rendered as sanitized HTML, made once when they are saved
(rendering on every view let one 1.2 MB note time the run page out), and a note's text is at
most 20,000 characters. Existing notes get their HTML here; a longer one is kept whole."""

from django.db import migrations, models


def render_existing(apps, schema_editor):
    from runs.notes import render_markdown

    Note = apps.get_model("runs", "Note")
    for note in Note.objects.only("pk", "body").iterator(chunk_size=100):
        Note.objects.filter(pk=note.pk).update(html=render_markdown(note.body))


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_squashed_0022_builtin_error_codes_as_words")]

    operations = [
        migrations.AddField(model_name="note", name="html", field=models.TextField(default="", editable=False)),
        migrations.AlterField(model_name="note", name="body", field=models.TextField(max_length=20000)),
        migrations.RunPython(render_existing, migrations.RunPython.noop),
    ]
