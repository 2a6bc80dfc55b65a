"""``load_suites [FILE …]``: validate suite files and store each one that changed as a new version."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from probes.suite.loader import SuiteFileError
from runs.suites import LoadReport, SuiteRefused, load_all_suites, load_suite_path


class Command(BaseCommand):
    help = (
        "Load suite files (default: every file in GOLDPATH_SUITES_DIR). A file that changed becomes the suite's "
        "new version; a file that does not validate is reported and its suite keeps its current version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", type=Path, help="suite files (default: GOLDPATH_SUITES_DIR/*.yaml)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = LoadReport()
        if options["files"]:
            for path in options["files"]:
                try:
                    report.suites.append(load_suite_path(path))
                except (SuiteFileError, SuiteRefused) as exc:
                    report.errors[path] = exc
        else:
            report = load_all_suites()
        for suite in report.suites:
            version = suite.current_version
            assert version is not None, "storing a suite makes a version current"

            self.stdout.write(
                f"Loaded {suite.name} version {version.number} ({version.digest[:12]}, "
                f"{suite.test_cases.filter(active=True).count()} checks)"
            )
        for path, error in report.errors.items():
            self.stderr.write(
                f"Not loaded: {error}" if isinstance(error, SuiteFileError) else f"Not loaded: {path}: {error}"
            )
        if report.errors:
            raise CommandError(
                f"{len(report.errors)} suite file(s) did not load; their suites keep their current version"
            )
