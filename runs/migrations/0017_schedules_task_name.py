"""The scheduled-run task moved from the probes app to runs (runs/tasks.py): schedules saved
under its old name would fire a task no worker knows."""

from django.db import migrations

OLD, NEW = "probes.run_scheduled", "runs.run_scheduled"


def rename(apps, schema_editor, old=OLD, new=NEW):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=old).update(task=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0016_suite_versions_cleanup"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(rename, rename_back)]
