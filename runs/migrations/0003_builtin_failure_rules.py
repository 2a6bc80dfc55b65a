"""Once seeded the first built-in failure rules by importing them from live code, so what it
did changed whenever the code did. The rules are now seeded, as data written into the
migration, by 0015_suite_versions_data."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("runs", "0002_analysis")]
    operations: list = []
