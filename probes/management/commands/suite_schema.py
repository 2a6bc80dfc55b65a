"""``suite_schema``: print the JSON Schema of the suite format (docs/suite.schema.json)."""

import json
from typing import Any

from django.core.management.base import BaseCommand

from probes.suite.schema import suite_json_schema


class Command(BaseCommand):
    help = "Print the JSON Schema of the suite format, for editors (shipped as docs/suite.schema.json)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(suite_json_schema(), indent=2, sort_keys=True))
