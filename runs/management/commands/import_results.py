import json as _json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.importers.cases import ImportFailed
from runs.importers.service import PARSERS, import_results
from runs.reporting import build_report, report_json


class Command(BaseCommand):
    help = "Import a JUnit XML or pytest-json-report file as a finished run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--suite", required=True, help="Suite name, stored as its slug, which is also its title (created if new)"
        )
        parser.add_argument(
            "--env",
            required=True,
            help="Environment name (created if new: the command line may, as DevOps may; an API upload by an "
            "Engineer needs an existing one)",
        )
        parser.add_argument("--format", choices=["auto", *PARSERS], default="auto")
        parser.add_argument("--json", action="store_true", help="Print the run as one JSON object (as run_suite)")

    def handle(self, *args: Any, file: str, suite: str, env: str, format: str, json: bool, **options: Any) -> None:
        try:
            with open(file, "rb") as stream:
                run = import_results(stream, suite_name=suite, environment_name=env, fmt=format)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except ImportFailed as exc:
            raise CommandError(f"{file}: {exc}; nothing was imported") from None
        if json:
            self.stdout.write(_json.dumps(report_json(build_report(run)), indent=2))
        else:
            self.stdout.write(
                f"Imported run #{run.pk}: {run.verdict}, {run.passed}/{run.total} passed "
                f"({run.failed} failed, {run.errors} errors, {run.skipped} skipped). "
                f"{settings.SITE_URL}{run.get_absolute_url()}"
            )
