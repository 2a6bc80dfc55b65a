"""Seed the built-in failure classification rules (editable afterwards in the admin)."""

from django.db import migrations


def create_rules(apps, schema_editor):
    from runs.analysis.classification import BUILTIN_RULES

    FailureRule = apps.get_model("runs", "FailureRule")
    for order, rule in enumerate(BUILTIN_RULES, start=1):
        FailureRule.objects.update_or_create(
            name=rule.name,
            defaults={
                "label": rule.label,
                "message_regex": rule.message_regex,
                "close_code": rule.close_code,
                "http_status_min": rule.http_status_min,
                "http_status_max": rule.http_status_max,
                "order": order * 10,
            },
        )


def remove_rules(apps, schema_editor):
    from runs.analysis.classification import BUILTIN_RULES

    apps.get_model("runs", "FailureRule").objects.filter(name__in=[r.name for r in BUILTIN_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("runs", "0002_analysis")]
    operations = [migrations.RunPython(create_rules, remove_rules)]
