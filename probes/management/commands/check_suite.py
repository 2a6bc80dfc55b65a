"""``check_suite FILE…``: validate suite files without running anything."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from probes.suite.loader import SuiteFileError, load_suite_file


class Command(BaseCommand):
    help = "Validate suite files (format 2) without running them: every problem with file, line and key path."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        failed = 0
        for path in options["files"]:
            try:
                loaded = load_suite_file(path)
            except SuiteFileError as exc:
                failed += 1
                for line in exc.lines:
                    self.stderr.write(line)
                continue
            model = loaded.model
            steps = sum(len(check.steps) for check in model.checks)
            self.stdout.write(
                f"{path}: ok — suite {model.name!r}, {len(model.checks)} checks, {steps} steps, "
                f"{len(model.categories)} categories, version {loaded.digest[:12]}"
            )
        if failed:
            raise CommandError(f"{failed} of {len(options['files'])} suite files do not validate")
