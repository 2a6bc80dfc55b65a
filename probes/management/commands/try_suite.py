"""``try_suite FILE --base-url URL``: run a suite file here and now, step by step, storing
nothing — the loop for writing a suite. ``run_suite`` is the way through the workers."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from probes.engine import CheckOutcome, run_checks
from probes.matchers import short
from probes.metrics import percentile_label
from probes.net import NetworkPolicy
from probes.runtime import RunTarget, websocket_origin
from probes.suite.loader import SuiteFileError, load_suite_file
from probes.templates import assignment

MARKS = {"passed": "✓", "failed": "✗", "error": "!"}


class Command(BaseCommand):
    help = (
        "Run a suite file in this process and print a step-by-step trace (each step, its time, what matched, "
        "the first failure with what was expected and what was seen). Stores nothing. Probes reach only the "
        "hosts of --base-url and --ws-url (and --allow-host). Exits 1 if a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--base-url", required=True, help="where request paths go")
        parser.add_argument("--ws-url", default="", help="where connect paths go (default: the base URL with ws://)")
        parser.add_argument("--check", action="append", default=[], metavar="ID", help="only this check (repeatable)")
        parser.add_argument(
            "--var",
            action="append",
            type=assignment,
            default=[],
            metavar="NAME=VALUE",
            help="override a suite variable",
        )
        parser.add_argument(
            "--allow-host", action="append", default=[], metavar="HOST", help="another host steps may reach"
        )
        parser.add_argument("--json", action="store_true", help="print the outcomes as JSON instead of a trace")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            loaded = load_suite_file(options["file"])
        except SuiteFileError as exc:
            raise CommandError(str(exc)) from None
        model = loaded.model
        wanted = set(options["check"])
        unknown = wanted - {c.id for c in model.checks}
        if unknown:
            known = ", ".join(c.id for c in model.checks)
            raise CommandError(f"no check {', '.join(sorted(unknown))} in {options['file']} (checks: {known})")
        checks = [c for c in model.checks if not wanted or c.id in wanted]
        variables = dict(options["var"])
        for name in sorted(set(variables) - set(model.vars)):
            self.stderr.write(f"--var {name}: the suite declares no variable {name!r}; ignored")
        base_url, ws_url = options["base_url"], options["ws_url"]
        hosts = {(urlsplit(u).hostname or "").lower() for u in (base_url, websocket_origin(ws_url or base_url))}
        hosts |= {h.lower() for h in options["allow_host"]}
        target = RunTarget(
            model,
            base_url,
            ws_url=ws_url,
            policy=NetworkPolicy(frozenset(hosts - {""})),
            environment="try",
            run_id="try",
            variables=variables,
        )
        order = {c.id: index for index, c in enumerate(checks)}
        started = time.perf_counter()
        with closing(run_checks(checks, target)) as running:
            outcomes = sorted(running, key=lambda o: order[o.check_id])
        wall = time.perf_counter() - started
        if options["json"]:
            self.stdout.write(json.dumps([_as_json(o) for o in outcomes], indent=2))
        else:
            self.stdout.write(f"{options['file']}: {len(checks)} checks against {base_url}\n")
            for outcome in outcomes:
                self.trace(model.check(outcome.check_id).name, outcome)
            passed = sum(1 for o in outcomes if o.outcome == "passed")
            self.stdout.write(f"{passed} of {len(outcomes)} checks passed in {wall:.2f} s (nothing was stored)")
        if any(o.outcome != "passed" for o in outcomes):
            raise SystemExit(1)

    def trace(self, name: str, outcome: CheckOutcome) -> None:
        evidence = outcome.evidence
        self.stdout.write(f"{MARKS[outcome.outcome]} {outcome.check_id} — {name} ({outcome.duration_s:.3f} s)")
        failed_sample = next((s["sample"] for s in evidence.get("samples", []) if not s["ok"]), None)
        shown = {1, failed_sample}
        connections = {c["name"]: c for c in evidence.get("connections", [])}
        for step in evidence.get("steps", []):
            if step["sample"] not in shown:
                continue
            sample = f"[{step['sample']}] " if len(evidence.get("samples", [])) > 1 else ""
            mark = "✓" if step.get("ok") else ("~" if step.get("optional") else "✗")
            text = step.get("summary") or step.get("error", "").removeprefix(f"step {step['step']} {step['kind']}: ")
            if step.get("optional") and not step.get("ok"):
                text += " (optional: the sample ends here)"
            took = f"({step.get('ms', 0):.1f} ms)"
            self.stdout.write(f"    {sample}{mark} {step['step']:>2} {step['kind']:<12} {text}  {took}")
            matched = step.get("matched")
            connection = connections.get(step.get("connection", ""))
            if matched and connection:
                frames = {i + 1: f for i, f in enumerate(f for f in connection["frames"] if f["dir"] == "in")}
                for index in matched[:10]:
                    if index in frames:
                        self.stdout.write(f"          matched frame {index}: {short(frames[index]['text'], 100)}")
        samples = evidence.get("samples", [])
        if len(samples) > 1:
            self.stdout.write(f"    {len(samples)} samples, {sum(1 for s in samples if s['ok'])} passed")
        for metric in outcome.metrics:
            if metric.p95 is None:
                self.stdout.write(f"    metric {metric.name}: {metric.note}")
            else:
                verdict = "within" if metric.ok else "OVER"
                self.stdout.write(
                    f"    metric {metric.name}: p50 {metric.p50:.1f} ms, {percentile_label(metric.percentile)} "
                    f"{metric.p95:.1f} ms, {verdict} the {metric.target:g} ms target"
                )
        if outcome.outcome != "passed":
            failure = outcome.failure or {}
            if not failure.get("step"):  # a step failure is on its line above
                self.stdout.write(f"    → {outcome.message}")
            if failure:
                details = ", ".join(f"{k}={v}" for k, v in (failure.get("details") or {}).items())
                self.stdout.write(f"      code {failure.get('code')}{f' ({details})' if details else ''}")
        self.stdout.write("")


def _as_json(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "check": outcome.check_id,
        "outcome": outcome.outcome,
        "duration_s": outcome.duration_s,
        "message": outcome.message,
        "failure": outcome.failure,
        "metrics": [
            {"name": m.name, "p50_ms": m.p50, "p95_ms": m.p95, "target_ms": m.target, "ok": m.ok, "note": m.note}
            for m in outcome.metrics
        ],
        "evidence": outcome.evidence,
    }
