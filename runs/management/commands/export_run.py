from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.exporters.formats import FORMATS, export_run
from runs.models import Run


class Command(BaseCommand):
    help = "Export a stored run as Markdown (the report), printable HTML, JSON, CSV or JUnit XML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int)
        parser.add_argument("--format", choices=sorted(FORMATS), default="md")
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output")

    def handle(self, *args: Any, run_id: int, format: str, output: str | None, **options: Any) -> None:
        run = Run.objects.select_related("suite", "environment").filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"run #{run_id} does not exist; list runs on the dashboard's Runs page")
        text, _ = export_run(run, format)
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {output}: {exc.strerror}") from None
            self.stderr.write(f"Wrote run #{run_id} as {format} to {output}")
        else:
            self.stdout.write(text, ending="")
