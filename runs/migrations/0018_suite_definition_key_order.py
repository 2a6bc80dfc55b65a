"""A suite version's definition is kept as JSON text: PostgreSQL's jsonb re-sorted its keys,
so requests, matchers and their messages came out in another order than the file's. (Rows
stored on PostgreSQL before this keep jsonb's order; loading the file again makes a version
in the file's order only when its content changes, as the digest ignores order.)"""

from django.db import migrations

import runs.fields


class Migration(migrations.Migration):
    dependencies = [("runs", "0017_schedules_task_name")]

    operations = [
        migrations.AlterField(
            model_name="suiteversion",
            name="definition",
            field=runs.fields.OrderedJSONField(help_text="The validated suite file, as data, in the file's order."),
        ),
    ]
