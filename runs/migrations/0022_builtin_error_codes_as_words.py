"""The built-in DNS, refused and reset rules match ENOTFOUND, ECONNREFUSED and ECONNRESET only
as words: ``ENOTFOUND`` matched inside ``ModuleNotFoundError``, calling a missing module a DNS
failure. Rows an admin changed keep their pattern (only the seeded one is replaced)."""

from django.db import migrations

PATTERNS = {  # rule name: (as 0015 seeded it, now)
    "dns-failure": (
        "name or service not known|getaddrinfo|ENOTFOUND",
        r"name or service not known|getaddrinfo|\bENOTFOUND\b",
    ),
    "connection-refused": ("connection refused|ECONNREFUSED", r"connection refused|\bECONNREFUSED\b"),
    "connection-reset": ("connection reset|ECONNRESET", r"connection reset|\bECONNRESET\b"),
}


def forwards(apps, schema_editor):
    FailureRule = apps.get_model("runs", "FailureRule")
    for name, (seeded, now) in PATTERNS.items():
        FailureRule.objects.filter(name=name, message_regex=seeded).update(message_regex=now)


def backwards(apps, schema_editor):
    FailureRule = apps.get_model("runs", "FailureRule")
    for name, (seeded, now) in PATTERNS.items():
        FailureRule.objects.filter(name=name, message_regex=now).update(message_regex=seeded)


class Migration(migrations.Migration):
    dependencies = [("runs", "0021_suite_version_based_on")]
    operations = [migrations.RunPython(forwards, backwards)]
