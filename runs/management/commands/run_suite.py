"""Run a suite through the broker and a worker: `python manage.py run_suite golden-path ...`."""

import argparse
import json
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from probes.templates import assignment
from runs.models import Environment, Run, RunStatus, Suite, Verdict, validate_probe_url, validate_variables
from runs.reporting import RunReport, build_report, report_json
from runs.services import DispatchError, NotRunnable, QueueFull, create_run
from runs.suites import declared_name, load_all_suites

# `run_suite --wait` exits with its run's verdict, so that a CI step or a shell `&&` stops on
# a run that did not pass. 1 is CommandError's: no run, no worker, an unreachable broker, a
# run that ended in error or was cancelled.
VERDICT_EXIT_CODES: dict[str, int] = {Verdict.PASS: 0, Verdict.FAIL: 2, Verdict.PARTIAL: 3}
EXIT_CODES_HELP = "0 PASS, 1 error (could not run, ended in error or cancelled), 2 FAIL, 3 PARTIAL SUCCESS"


class Command(BaseCommand):
    help = (
        "Queue a run of SUITE; with --wait, follow it to the end, print the report and exit with "
        f"the run's verdict: {EXIT_CODES_HELP}."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("suite")
        parser.add_argument("--env", default="local", help="Environment name (created if new). Default: local")
        parser.add_argument("--base-url", help="HTTP base URL of the service; sets the environment's URL")
        parser.add_argument("--ws-url", help="WebSocket URL for connect steps (default: the base URL with ws://)")
        parser.add_argument(
            "--var",
            action="append",
            type=assignment,
            default=[],
            metavar="NAME=VALUE",
            help="Set a variable on the environment (repeatable); a secret as NAME='${env.VARIABLE}'",
        )
        parser.add_argument(
            "--wait", action="store_true", help=f"Wait for the run to end; exit codes: {EXIT_CODES_HELP}"
        )
        parser.add_argument("--json", action="store_true", help="Print the report as one JSON object")
        parser.add_argument(
            "--pickup-timeout", type=float, default=30, help="Seconds to wait for a worker to start the run"
        )
        parser.add_argument("--timeout", type=float, default=600, help="Seconds to wait for the run to end")

    def handle(self, *args: Any, **options: Any) -> None:
        loaded = load_all_suites()
        for path, error in loaded.errors.items():
            if declared_name(path) == options["suite"]:
                raise CommandError(str(error))
            self.stderr.write(f"Not loaded (its suite keeps its current version): {error}")
        suite = Suite.objects.filter(name=options["suite"]).first()
        if suite is None:
            known = ", ".join(Suite.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"unknown suite {options['suite']!r}; known suites: {known}")
        environment = self.environment(options)
        try:
            run = create_run(suite, environment, trigger=Run.Trigger.MANUAL)
        except (DispatchError, NotRunnable, QueueFull) as exc:
            raise CommandError(str(exc)) from None
        if not options["wait"]:
            self.stdout.write(f"Run #{run.pk} queued: {settings.SITE_URL}{run.get_absolute_url()}")
            return
        run = self.wait(run, options["pickup_timeout"], options["timeout"])
        report = build_report(run)
        if options["json"]:
            self.stdout.write(json.dumps(report_json(report), indent=2))
        else:
            self.print_summary(report)
        if run.status == RunStatus.ERROR:
            raise CommandError(f"run #{run.pk} ended in error: {run.status_message}")
        if run.status == RunStatus.CANCELLED:
            raise CommandError(f"run #{run.pk} was cancelled")
        raise SystemExit(VERDICT_EXIT_CODES[run.verdict])

    def environment(self, options: dict[str, Any]) -> Environment:
        name = options["env"]
        environment = Environment.objects.filter(name=name).first()
        if environment is None and not options["base_url"]:
            raise CommandError(f"environment {name!r} does not exist; give --base-url to create it")
        if environment is None:
            environment = Environment(name=name)
        changes: list[str] = []
        if options["base_url"]:
            for url in filter(None, (options["base_url"], options["ws_url"])):
                try:
                    validate_probe_url(url)
                except ValidationError as exc:
                    raise CommandError(exc.messages[0]) from None
            if environment.pk is not None:
                changes = url_changes(environment, options["base_url"], options["ws_url"] or "")
            environment.base_url = options["base_url"]
            environment.ws_url = options["ws_url"] or ""
        if options["var"]:
            variables = {**environment.variables, **dict(options["var"])}
            try:
                validate_variables(variables)
            except ValidationError as exc:
                raise CommandError(f"--var: {exc.messages[0]}") from None
            environment.variables = variables
        allowed = environment.allowed_host_set()
        for url in (environment.base_url, environment.effective_ws_url):
            host = urlsplit(url).hostname
            if host not in allowed:
                raise CommandError(
                    f"host {host!r} is not in environment {name!r}'s allowed hosts ({', '.join(sorted(allowed))}); "
                    "add it to the environment's allowed hosts first"
                )
        environment.save()
        if changes:
            self.stderr.write(f"Changed environment {name!r}: {' and '.join(changes)} (its later runs go there too)")
        return environment

    def wait(self, run: Run, pickup_timeout: float, timeout: float) -> Run:
        started = time.monotonic()
        while True:
            run.refresh_from_db()
            waited = time.monotonic() - started
            if run.is_done:
                return run
            if run.status == RunStatus.QUEUED and run.attempts == 0 and waited > pickup_timeout:
                raise CommandError(
                    f"run #{run.pk} is still queued after {pickup_timeout:g} s: no worker picked it up. "
                    "Start one with `celery -A dashboard worker` (it will then run), or check CELERY_BROKER_URL."
                )
            if waited > timeout:
                raise CommandError(f"run #{run.pk} did not finish within {timeout:g} s (status: {run.status})")
            time.sleep(0.25)

    def print_summary(self, report: RunReport) -> None:
        run = report.run
        duration = f" in {run.duration_s:.2f} s" if run.duration_s is not None else ""
        self.stdout.write(f"Run #{run.pk} {run.verdict or run.status}: {run.passed}/{run.total} passed{duration}")
        for result in report.failing:
            self.stdout.write(f"  FAILED {result.test_case.name}: {result.message}")
        for m in report.measurements:
            figure = f"p50 {m.p50:.1f} ms, p{m.percentile:g} {m.p95:.1f} ms" if m.p95 is not None else m.note
            self.stdout.write(f"  {m.name}: {figure} (target < {m.target:g} ms)")
        self.stdout.write(f"Report: {settings.SITE_URL}{run.get_absolute_url()}")


def url_changes(environment: Environment, base_url: str, ws_url: str) -> list[str]:
    """What giving ``base_url`` and ``ws_url`` changes in a stored environment, said as
    'its base URL from OLD to NEW': runs of it from the dashboard and its schedules go there
    from now on, so the command says so instead of re-pointing it silently."""
    changes: list[str] = []
    if environment.base_url != base_url:
        changes.append(f"its base URL from {environment.base_url} to {base_url}")
    if environment.ws_url != ws_url:
        old, new = (url or "(from the base URL)" for url in (environment.ws_url, ws_url))
        changes.append(f"its WebSocket URL from {old} to {new}")
    return changes
