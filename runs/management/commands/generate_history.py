"""``generate_history``: fill the database with a realistic run history, fast.

For benchmarks and demos. Runs go in with ``bulk_create``, their results and measurements
as plain rows (``runs.bulk.insert_rows``: COPY on PostgreSQL); one transaction per batch of
runs, no per-row saves, no Celery, no network. Runs are simulated in time
order per environment, each environment following a health profile, so the pages show
what a real history shows: a regression that starts part-way, a flaky check, outages,
a stubbed target that the mock indicators catch.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from probes.perf.checks import percentile
from probes.suite_loader import SuiteFileError, load_suite_file

from runs import bulk
from runs.analysis.classification import classify
from runs.analysis.facts import PASSED, ResultFacts
from runs.analysis.flakiness import DEFAULT_WINDOW, FLAKY_FLIP_RATE, MIN_RUNS
from runs.analysis.mock import (
    CONSTANT_RUNS,
    NETWORK_KINDS,
    auth_never_enforced,
    realness,
    result_indicators,
    round_trip_ms,
    run_indicators,
)
from runs.analysis.mrr import mrr_at_risk
from runs.analysis.verdict import DEFAULT_MIN_PASS_RATE, compute_verdict
from runs.history import active_rules
from runs.models import Environment, Measurement, Note, Result, Run, RunStatus, Suite, TestCase

ENV_PREFIX = "env-"
# Cycled over env-1, env-2, …: env-2 is the seed report's failure mode.
PROFILES = ("healthy", "ws-closed-1000", "flaky", "stubbed", "healthy")
REGRESSION_STARTS_AT = 0.25  # share of the window after which env-2's WebSocket closes after send
REGRESSION_RATE = 0.97  # share of runs after that point that show it
FLAKY_FAIL_RATE = 0.19  # independent failures at this rate flip ~30 % of the time (2·p·(1-p))
OUTAGE_RATE = 0.008  # chance that a run starts a connection-refused outage
SLOW_RATE = 0.03  # chance that a run misses a performance target
TRIGGERS = (("schedule", 0.80), ("manual", 0.14), ("rerun", 0.06))
VARIANTS = 8  # evidence variants kept per environment, check and state
RESULT_FIELDS = (
    "run",
    "test_case",
    "outcome",
    "duration_s",
    "message",
    "failure_class",
    "evidence",
    "mock_flags",
    "attempt",
    "started_at",
    "finished_at",
)
MEASUREMENT_FIELDS = (
    "run",
    "test_case",
    "key",
    "name",
    "unit",
    "target",
    "comparison",
    "p50",
    "p95",
    "samples",
    "ok",
    "note",
)

# Check states; the outcome of each is in OUTCOMES.
PASS, STUB, PERF_PARTIAL = "pass", "stub", "pass-unmeasured"
WS_CLOSED, TIMEOUT, REFUSED, SLOW = "ws-closed-1000", "receive-timeout", "connection-refused", "slow"
OUTCOMES = {
    PASS: Result.Outcome.PASSED,
    STUB: Result.Outcome.PASSED,
    PERF_PARTIAL: Result.Outcome.PASSED,
    WS_CLOSED: Result.Outcome.FAILED,
    TIMEOUT: Result.Outcome.FAILED,
    REFUSED: Result.Outcome.FAILED,
    SLOW: Result.Outcome.FAILED,
}
WS_FLOW_KINDS = ("ws_send", "ws_events", "ws_fanout")
AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")
AGENT_METRICS = ("agent_startup", "message_processing", "total_request")  # need a message over the WebSocket
BASELINE_MS = {
    "api_response": 28.0,
    "websocket_latency": 6.0,
    "agent_startup": 190.0,
    "message_processing": 95.0,
    "total_request": 560.0,
}
STUB_MS = {"api_response": 12.0, "websocket_latency": 3.0, "agent_startup": 150.0, "message_processing": 80.0}
HTTP_HEADERS = ["content-length", "content-type", "date", "server", "x-request-id"]
WS_HEADERS = ["connection", "date", "sec-websocket-accept", "server", "upgrade"]
REFUSED_MESSAGE = "connection refused: nothing is listening at that address"

HELP = """Fill the database with a realistic run history, fast (bulk inserts, no Celery).

Creates environments env-1..env-K (https://env-K.example.test) and N finished runs of the
suite spread over the last --days days, each with a result for every active check and the
performance check's measurements. Environments follow health profiles in turn (env-1,
env-2, …, then again from the first): healthy;
the seed report's failure mode (from a quarter of the way in, the WebSocket closes with
code 1000 right after the first message: 3 checks fail, agent metrics are not measured);
one flaky check (fails ~19 % of runs at random, so it flips ~30 % of the time); a stubbed
target (3 checks pass in under 1 ms with no network evidence, measurements identical every
run); healthy. Every environment has occasional connection-refused outages and missed performance
targets.

Stored analysis: counters and failure classes are exact; verdict, MRR at risk, realness
and result mock indicators come from the real analysis functions run once per distinct
outcome pattern (results of one pattern share evidence shapes); flaky_count and the
constant-measurement indicators are tracked over a rolling window per environment, exact
for histories made by this command alone (approximate when runs of other origins are
interleaved). Rerun runs point to the previous run of their environment.
"""


def ws_closed_message(after_s: float) -> str:
    """The probe's message for the seed failure (probes/ws/session.py, the target's close-after-send)."""
    return f"WebSocket closed by server with code 1000 (main cleanup) {after_s:.3f} s after the first message"


@dataclass(frozen=True)
class Check:
    index: int
    test_case_id: int
    node_id: str
    name: str
    kind: str
    category: str
    critical: bool
    impact: tuple[str, ...]
    definition: dict[str, Any]


@dataclass
class Variant:
    message: str
    evidence: dict[str, Any]
    duration_s: float

    @cached_property
    def evidence_json(self) -> str:  # variants are reused by many results: encode once
        return bulk.json_value(self.evidence)


@dataclass
class Analysis:
    verdict: str
    mrr_at_risk: int
    realness_score: float
    flags: list[list[str]]  # per check
    flagged: int
    no_auth: bool
    failure_classes: list[str]  # per check, "" when passing


@dataclass
class EnvState:
    environment: Environment
    index: int  # 1-based, as in the name
    profile: str
    last_run: Run | None = None
    outage_left: int = 0
    outcomes: list[deque] = field(default_factory=list)  # per check: passed? over the flaky window
    flips: list[int] = field(default_factory=list)
    p50s: dict[str, deque] = field(default_factory=dict)  # metric → newest last, CONSTANT_RUNS long


@dataclass
class PlannedRun:
    run: Run
    states: list[str]
    messages: dict[int, str]  # check index → message overriding the variant's
    measurements: list[dict[str, Any]]
    parent: Run | None = None
    rows: list[tuple] = field(default_factory=list)  # per check: check, state, variant, duration, offset


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, required=True, help="Runs to create.")
        parser.add_argument("--environments", type=int, default=5, help="Environments env-1..env-K (default 5).")
        parser.add_argument("--suite", default="golden-path", help="Suite name (default golden-path).")
        parser.add_argument("--days", type=float, default=90, help="Spread the runs over this many days (90).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (1); same seed, same history.")
        parser.add_argument("--batch", type=int, default=2000, help="Runs per transaction (2000).")
        parser.add_argument(
            "--clear", action="store_true", help="First delete the environments named env-* and all their runs."
        )

    def handle(self, *args, **options):
        if options["runs"] < 0 or options["environments"] < 1 or options["batch"] < 1 or options["days"] <= 0:
            raise CommandError("--runs must be >= 0, --environments and --batch >= 1, --days > 0")
        self.verbosity = options["verbosity"]
        if options["clear"]:
            self.clear()
        if not options["runs"]:
            return
        self.rng = random.Random(options["seed"])
        self.suite = self.load_suite(options["suite"])
        self.setup_checks()
        envs = self.setup_environments(options["environments"])
        self.generate(envs, options["runs"], options["days"], options["batch"])

    # --- set-up ------------------------------------------------------------------------------

    def clear(self) -> None:
        started = time.monotonic()
        environments = Environment.objects.filter(name__startswith=ENV_PREFIX)
        runs = Run.objects.filter(environment__in=environments)
        with transaction.atomic():
            Result.objects.filter(run__in=runs).delete()
            Measurement.objects.filter(run__in=runs).delete()
            Note.objects.filter(run__in=runs).delete()
            Run.scope_test_cases.through.objects.filter(run__in=runs).delete()
            Run.objects.filter(parent__in=runs).update(parent=None)
            runs.delete()
            envs, _ = environments.delete()
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # Deleted rows stay in the tables' pages until vacuumed: scans would read them all.
            with connection.cursor() as cursor:
                for table in self.bulk_tables():
                    cursor.execute(f"VACUUM ANALYZE {table}")
        self.log(
            f"Cleared {envs} environments named {ENV_PREFIX}* and their runs in {time.monotonic() - started:.1f} s"
        )

    def load_suite(self, name: str) -> Suite:
        suite = Suite.objects.filter(name=name).first()
        if suite is None:
            path = settings.GOLDPATH_SUITES_DIR / f"{name}.yaml"
            if not path.exists():
                raise CommandError(f"no suite {name!r} in the database and no {path}")
            try:
                suite = load_suite_file(path)
            except SuiteFileError as exc:
                raise CommandError(str(exc)) from None
            self.log(f"Loaded suite {suite.name} from {path}")
        return suite

    def setup_checks(self) -> None:
        definitions = {c["id"]: c for c in self.suite.definition.get("checks", [])}
        test_cases = (
            self.suite.test_cases.filter(active=True)
            .select_related("category")
            .prefetch_related("impact_tags")
            .order_by("order", "pk")
        )
        self.checks = [
            Check(
                index=i,
                test_case_id=tc.pk,
                node_id=tc.node_id,
                name=tc.name,
                kind=tc.kind,
                category=tc.category.name,
                critical=tc.category.critical,
                impact=tuple(tag.name for tag in tc.impact_tags.all()),
                definition=definitions.get(tc.node_id, {}),
            )
            for i, tc in enumerate(test_cases)
        ]
        if not self.checks:
            raise CommandError(f"suite {self.suite.name!r} has no active checks")
        self.tag_mrr = {tag.name: tag.mrr for tc in test_cases for tag in tc.impact_tags.all()}
        self.min_pass_rate = self.suite.definition.get("verdict", {}).get("min_pass_rate", DEFAULT_MIN_PASS_RATE)
        self.rules = active_rules()
        self.perf = next((c for c in self.checks if c.kind == "performance"), None)
        self.metric_defs = self.perf.definition.get("metrics", []) if self.perf else []
        self.samples = int(self.perf.definition.get("samples", 5)) if self.perf else 5
        self.ws_flow = [c.index for c in self.checks if c.kind in WS_FLOW_KINDS]
        flaky = [c for c in self.checks if c.kind == "ws_fanout"] or [c for c in self.checks if not c.critical]
        self.flaky_check = (flaky or self.checks)[-1].index
        http = [c for c in self.checks if c.kind == "http"]
        self.stub_checks = {c.index for c in http[-3:]}
        self.variants: dict[tuple[int, int, str], list[Variant]] = {}
        self.analyses: dict[tuple[str, ...], Analysis] = {}
        self.classes: dict[tuple[int, str], str] = {}

    def setup_environments(self, count: int) -> list[EnvState]:
        states = []
        for k in range(1, count + 1):
            environment, _ = Environment.objects.get_or_create(
                name=f"{ENV_PREFIX}{k}", defaults={"base_url": f"https://env-{k}.example.test"}
            )
            state = EnvState(environment, k, PROFILES[(k - 1) % len(PROFILES)])
            state.outcomes = [deque() for _ in self.checks]
            state.flips = [0] * len(self.checks)
            state.p50s = {m["key"]: deque(maxlen=CONSTANT_RUNS) for m in self.metric_defs}
            self.load_recent_history(state)
            states.append(state)
        return states

    def load_recent_history(self, state: EnvState) -> None:
        """Seed the rolling windows with the environment's newest stored runs, if any."""
        recent = list(
            Run.objects.filter(suite=self.suite, environment=state.environment, status=RunStatus.FINISHED)
            .order_by("-pk")
            .values_list("pk", flat=True)[: DEFAULT_WINDOW - 1]
        )
        if not recent:
            return
        state.last_run = Run.objects.get(pk=recent[0])
        by_case = {c.test_case_id: c.index for c in self.checks}
        outcomes: dict[int, dict[int, str]] = {}
        for tc, run_id, outcome in Result.objects.filter(run_id__in=recent).values_list(
            "test_case_id", "run_id", "outcome"
        ):
            if tc in by_case:
                outcomes.setdefault(by_case[tc], {})[run_id] = outcome
        for index, by_run in outcomes.items():
            for run_id in sorted(by_run):
                if by_run[run_id] != Result.Outcome.SKIPPED:
                    self.push_outcome(state, index, by_run[run_id] == PASSED)
        newest = recent[: CONSTANT_RUNS - 1]
        p50 = {
            (k, r): v for k, r, v in Measurement.objects.filter(run_id__in=newest).values_list("key", "run_id", "p50")
        }
        for run_id in reversed(newest):
            for key, values in state.p50s.items():
                values.append(p50.get((key, run_id)))

    # --- generation --------------------------------------------------------------------------

    def generate(self, envs: list[EnvState], count: int, days: float, batch: int) -> None:
        now = timezone.now()
        span = days * 86400
        offsets = sorted(self.rng.uniform(0, span) for _ in range(count))
        started = time.monotonic()
        totals = {"runs": 0, "results": 0, "measurements": 0}
        self.log(
            f"Generating {count} runs of {self.suite.name} ({len(self.checks)} checks each) on "
            f"{len(envs)} environments over {days:g} days, batches of {batch}"
        )
        for first in range(0, count, batch):
            planned = []
            for offset in offsets[first : first + batch]:
                env = self.rng.choice(envs)
                planned.append(self.plan_run(env, now - timedelta(seconds=span - offset), offset / span))
            with transaction.atomic():
                counts = self.insert(planned)
            for key, value in counts.items():
                totals[key] += value
            elapsed = time.monotonic() - started
            self.log(
                f"  {totals['runs']:>8}/{count} runs  {totals['results']:>9} results  "
                f"{totals['runs'] / elapsed:,.0f} runs/s",
                level=1 if count > batch else 2,
            )
        self.analyze_tables()
        elapsed = time.monotonic() - started
        self.log(
            f"Generated {totals['runs']} runs, {totals['results']} results and {totals['measurements']} "
            f"measurements on {len(envs)} environments in {elapsed:.1f} s ({totals['runs'] / elapsed:,.0f} runs/s)"
        )

    def analyze_tables(self) -> None:
        """Refresh PostgreSQL's planner statistics, as autovacuum would some time after a bulk
        load: with none, the planner guesses badly (and JIT-compiles cheap queries)."""
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(self.bulk_tables())}")

    @staticmethod
    def bulk_tables() -> list[str]:
        models = (Environment, Run, Result, Measurement, TestCase.impact_tags.through)
        return [connection.ops.quote_name(model._meta.db_table) for model in models]

    def plan_run(self, env: EnvState, created: datetime, position: float) -> PlannedRun:
        rng = self.rng
        states = [PASS] * len(self.checks)
        measurements: list[dict[str, Any]] = []
        messages: dict[int, str] = {}
        outage = env.outage_left > 0
        if outage:
            env.outage_left -= 1
        elif rng.random() < OUTAGE_RATE:
            outage, env.outage_left = True, rng.choice((0, 0, 1, 2))
        if outage:
            states = [REFUSED] * len(self.checks)  # the performance check fails whole: no measurements
        else:
            ws_down = (
                env.profile == "ws-closed-1000" and position >= REGRESSION_STARTS_AT and rng.random() < REGRESSION_RATE
            )
            if ws_down:
                for index in self.ws_flow:
                    states[index] = WS_CLOSED
            if env.profile == "flaky" and rng.random() < FLAKY_FAIL_RATE:
                states[self.flaky_check] = TIMEOUT
            if env.profile == "stubbed":
                for index in self.stub_checks:
                    states[index] = STUB
            if self.perf is not None:
                state, message, measurements = self.measure(env, ws_down)
                states[self.perf.index] = state
                if message:
                    messages[self.perf.index] = message

        trigger = rng.choices([t for t, _ in TRIGGERS], [w for _, w in TRIGGERS])[0]
        parent = env.last_run if trigger == Run.Trigger.RERUN else None
        if trigger == Run.Trigger.RERUN and parent is None:
            trigger = Run.Trigger.MANUAL
        environment = env.environment
        run = Run(
            environment=environment,
            suite=self.suite,
            suite_version=self.suite.version,
            trigger=trigger,
            scope=Run.Scope.ALL,
            expected=len(self.checks),
            base_url=environment.base_url,
            ws_url=environment.effective_ws_url,
            status=RunStatus.FINISHED,
            worker=f"celery@worker-{1 + env.index % 2}",
            created=created,
            started_at=created + timedelta(seconds=rng.uniform(0.05, 1.5)),
        )
        plan = PlannedRun(run, states, messages, measurements, parent)
        self.analyse(env, plan)
        env.last_run = run
        return plan

    def measure(self, env: EnvState, ws_down: bool) -> tuple[str, str, list[dict[str, Any]]]:
        """The performance check's measurements and the state and message they give it."""
        rng = self.rng
        slow_key = None
        if env.profile != "stubbed" and rng.random() < SLOW_RATE and self.metric_defs:
            slow_key = rng.choice(
                [m["key"] for m in self.metric_defs if not (ws_down and m["key"] in AGENT_METRICS)] or [None]
            )
        run_factor = rng.lognormvariate(0, 0.12)
        rows = []
        for metric in self.metric_defs:
            key, target = metric["key"], float(metric["target_ms"])
            row = {"key": key, "name": metric["name"], "target": target, "samples": [], "p50": None, "p95": None}
            row.update(ok=None, note="")
            if ws_down and key in AGENT_METRICS:
                row["note"] = f"not measured: {ws_closed_message(rng.uniform(0.03, 0.09))}"
            else:
                if env.profile == "stubbed":
                    samples = [STUB_MS.get(key, round(target * 0.4, 1))] * self.samples
                else:
                    base = BASELINE_MS.get(key, target * 0.3) * run_factor
                    if key == slow_key:
                        base = target * rng.uniform(1.1, 1.6)
                    samples = [round(base * rng.lognormvariate(0, 0.15), 3) for _ in range(self.samples)]
                p50, p95 = round(percentile(samples, 50), 3), round(percentile(samples, 95), 3)
                row.update(samples=samples, p50=p50, p95=p95, ok=p95 < target)
            rows.append(row)
        taken = [r for r in rows if r["p95"] is not None]
        missed = [r for r in taken if not r["ok"]]
        if missed:
            detail = ", ".join(f"{r['name']} p95 {r['p95']:.1f} ms over the {r['target']:g} ms target" for r in missed)
            return SLOW, f"performance target missed: {detail}", rows
        message = f"{len(taken)} of {len(rows)} metrics measured over {self.samples} samples, all within target (p95)"
        unmeasured = [r["name"] for r in rows if r["p95"] is None]
        if unmeasured:
            return PERF_PARTIAL, f"{message}; not measured: {', '.join(unmeasured)}", rows
        return PASS, message, rows

    # --- analysis ----------------------------------------------------------------------------

    def analyse(self, env: EnvState, plan: PlannedRun) -> None:
        """Set the run's counters and stored analysis as finish_run would."""
        run, states = plan.run, plan.states
        analysis = self.analyses.get(tuple(states))
        if analysis is None:
            analysis = self.analyses[tuple(states)] = self.analyse_pattern(env, states)
        outcomes = [OUTCOMES[s] for s in states]
        run.total = len(outcomes)
        run.passed = outcomes.count(Result.Outcome.PASSED)
        run.failed = outcomes.count(Result.Outcome.FAILED)
        run.errors = outcomes.count(Result.Outcome.ERROR)
        run.skipped = outcomes.count(Result.Outcome.SKIPPED)
        run.verdict = analysis.verdict
        run.mrr_at_risk = analysis.mrr_at_risk
        run.realness_score = analysis.realness_score

        p50 = {m["key"]: m["p50"] for m in plan.measurements}
        for key, values in env.p50s.items():
            values.append(p50.get(key))
        history = {key: list(reversed(values)) for key, values in env.p50s.items()}
        run.mock_flags = run_indicators(history, analysis.no_auth)
        run.mock_count = analysis.flagged + len(run.mock_flags)

        flaky = 0
        for index, outcome in enumerate(outcomes):
            self.push_outcome(env, index, outcome == Result.Outcome.PASSED)
            executed = len(env.outcomes[index])
            if executed >= MIN_RUNS and round(env.flips[index] / (executed - 1), 3) >= FLAKY_FLIP_RATE:
                flaky += 1
        run.flaky_count = flaky

    @staticmethod
    def push_outcome(env: EnvState, index: int, passed: bool) -> None:
        """Append to a check's window of the last DEFAULT_WINDOW outcomes, counting flips."""
        window = env.outcomes[index]
        if len(window) == DEFAULT_WINDOW:
            env.flips[index] -= window[0] != window[1]
            window.popleft()
        if window:
            env.flips[index] += window[-1] != passed
        window.append(passed)

    def analyse_pattern(self, env: EnvState, states: list[str]) -> Analysis:
        facts = []
        for check, state in zip(self.checks, states, strict=True):
            variant = self.variants_for(env, check, state)[0]
            outcome = OUTCOMES[state]
            facts.append(
                ResultFacts(
                    name=check.name,
                    category=check.category,
                    outcome=outcome,
                    duration_s=variant.duration_s,
                    critical=check.critical,
                    message=variant.message,
                    node_id=check.node_id,
                    kind=check.kind,
                    impact=check.impact,
                    failure_class=self.failure_class(check, state, variant),
                    evidence=variant.evidence,
                    started_at=1000.0 + check.index * 0.002,
                    finished_at=1000.0 + check.index * 0.002 + variant.duration_s,
                )
            )
        rtt = round_trip_ms(facts)
        flags = [
            result_indicators(fact, rtt, declares_network=check.kind in NETWORK_KINDS)
            for fact, check in zip(facts, self.checks, strict=True)
        ]
        return Analysis(
            verdict=compute_verdict(facts, self.min_pass_rate),
            mrr_at_risk=mrr_at_risk(facts, self.tag_mrr).total,
            realness_score=realness(facts).score,
            flags=flags,
            flagged=sum(1 for f in flags if f),
            no_auth=auth_never_enforced(facts),
            failure_classes=[f.failure_class for f in facts],
        )

    def failure_class(self, check: Check, state: str, variant: Variant) -> str:
        if OUTCOMES[state] == Result.Outcome.PASSED:
            return ""
        key = (check.index, state)
        if key not in self.classes:
            self.classes[key] = classify(variant.message, variant.evidence, self.rules)
        return self.classes[key]

    # --- insertion ---------------------------------------------------------------------------

    def insert(self, planned: list[PlannedRun]) -> dict[str, int]:
        rng = self.rng
        for plan in planned:
            run = plan.run
            env = run.environment
            end = 0.0
            rows = []
            for check, state in zip(self.checks, plan.states, strict=True):
                variant = rng.choice(self.variants_for_env(env, check, state))
                duration = round(variant.duration_s * rng.uniform(0.85, 1.2), 6)
                offset = rng.uniform(0.001, 0.04)
                end = max(end, offset + duration)
                rows.append((check, state, variant, duration, offset))
            run.duration_s = round(end + rng.uniform(0.2, 0.8), 3)
            run.finished_at = run.heartbeat_at = run.started_at + timedelta(seconds=run.duration_s)
            plan.rows = rows
        Run.objects.bulk_create([plan.run for plan in planned])
        reruns = []
        for plan in planned:
            if plan.parent is not None:
                plan.run.parent_id = plan.parent.pk
                reruns.append(plan.run)
        if reruns:
            Run.objects.bulk_update(reruns, ["parent"])

        results, measurements = [], []
        flags_json: dict[tuple[str, ...], str] = {}
        for plan in planned:
            run = plan.run
            analysis = self.analyses[tuple(plan.states)]
            for check, state, variant, duration, offset in plan.rows:
                started = run.started_at + timedelta(seconds=offset)
                message = plan.messages.get(check.index, variant.message)
                failure_class = analysis.failure_classes[check.index]
                if failure_class and check.index in plan.messages:  # a message made for this run
                    failure_class = classify(message, variant.evidence, self.rules)
                flags = tuple(analysis.flags[check.index])
                if flags not in flags_json:
                    flags_json[flags] = bulk.json_value(list(flags))
                results.append(
                    (
                        run.pk,
                        check.test_case_id,
                        OUTCOMES[state],
                        duration,
                        message,
                        failure_class,
                        variant.evidence_json,
                        flags_json[flags],
                        1,
                        bulk.datetime_value(started),
                        bulk.datetime_value(started + timedelta(seconds=duration)),
                    )
                )
            for row in plan.measurements:
                measurements.append(
                    (
                        run.pk,
                        self.perf.test_case_id,
                        row["key"],
                        row["name"],
                        "ms",
                        row["target"],
                        "lt",
                        row["p50"],
                        row["p95"],
                        bulk.json_value(row["samples"]),
                        row["ok"],
                        row["note"][:500],
                    )
                )
        bulk.insert_rows(Result, RESULT_FIELDS, results)
        bulk.insert_rows(Measurement, MEASUREMENT_FIELDS, measurements)
        return {"runs": len(planned), "results": len(results), "measurements": len(measurements)}

    # --- evidence ----------------------------------------------------------------------------

    def variants_for(self, env: EnvState, check: Check, state: str) -> list[Variant]:
        return self.variants_for_env(env.environment, check, state)

    def variants_for_env(self, environment: Environment, check: Check, state: str) -> list[Variant]:
        key = (environment.pk, check.index, state)
        if key not in self.variants:
            rng = random.Random(f"{environment.pk}-{check.index}-{state}-{self.rng.random()}")
            self.variants[key] = [Evidence(rng, environment, check).make(state) for _ in range(VARIANTS)]
        return self.variants[key]

    def log(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)


class Evidence:
    """Evidence shaped like the probe engine's (probes/base.py, probes/ws/session.py)."""

    def __init__(self, rng: random.Random, environment: Environment, check: Check) -> None:
        self.rng = rng
        self.environment = environment
        self.check = check
        self.ip = f"203.0.113.{environment.pk % 250 + 1}"

    def ms(self, low: float, high: float) -> float:
        return round(self.rng.uniform(low, high), 3)

    def http(self, method: str, path: str, status: int | None) -> dict[str, Any]:
        path = path.replace("{thread}", UUID(int=self.rng.getrandbits(128)).hex)
        record: dict[str, Any] = {
            "method": method,
            "url": f"{self.environment.base_url.rstrip('/')}{path}",
            "remote_ip": self.ip,
            "dns_ms": self.ms(0.3, 3.0),
            "bytes_out": self.rng.randint(90, 420),
        }
        if status is None:  # refused: nothing came back
            return record
        first_byte = self.ms(8, 45)
        record.update(
            status=status,
            connect_ms=self.ms(1.5, 6),
            tls_ms=self.ms(4, 14),
            first_byte_ms=first_byte,
            total_ms=round(first_byte + self.ms(0.5, 6), 3),
            bytes_in=self.rng.randint(180, 1500),
            headers_seen=HTTP_HEADERS,
        )
        return record

    def ws(self, *, handshake: int | None = 101, **extra: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "url": self.environment.effective_ws_url,
            "frames_out": 0,
            "frames_in": 0,
            "bytes_out": 0,
            "bytes_in": 0,
            "events": [],
            "remote_ip": self.ip,
            "dns_ms": self.ms(0.3, 3.0),
        }
        if handshake == 101:
            record.update(handshake_ms=self.ms(12, 40), handshake_status=101, headers_seen=WS_HEADERS)
        elif handshake is not None:
            record["handshake_status"] = handshake
        record.update(extra)
        return record

    def ws_done(self, frames_out: int, events: tuple[str, ...] | list[str], **extra: Any) -> dict[str, Any]:
        return self.ws(
            frames_out=frames_out,
            frames_in=len(events),
            bytes_out=frames_out * self.rng.randint(95, 120),
            bytes_in=len(events) * self.rng.randint(110, 140),
            events=list(events),
            close_code=1000,
            close_reason="",
            close_initiator="client",
            **extra,
        )

    def make(self, state: str) -> Variant:
        check, kind = self.check, self.check.kind
        if state == REFUSED:
            return self.refused()
        if state == STUB:
            return Variant(self.pass_message(), {}, round(self.rng.uniform(0.0001, 0.0008), 6))
        if state == WS_CLOSED:
            after_ms = self.ms(30, 90)
            key = "websocket_subscriber" if kind == "ws_fanout" else "websocket"
            record = self.ws(
                frames_out=1,
                bytes_out=self.rng.randint(95, 120),
                close_code=1000,
                close_reason="main cleanup",
                close_initiator="server",
                closed_after_send_ms=after_ms,
            )
            message = ws_closed_message(after_ms / 1000)
            return Variant(message, {key: record}, round(record["handshake_ms"] / 1000 + after_ms / 1000 + 0.01, 6))
        if state == TIMEOUT:
            timeout = float(check.definition.get("timeout_s", 10))
            seen = AGENT_EVENTS[:3]
            evidence = {
                "websocket_subscriber": self.ws_done(1, ("subscribed", *seen)),
                "websocket": self.ws_done(1, AGENT_EVENTS),
            }
            evidence["websocket_subscriber"]["events"] = list(seen)
            message = (
                f"receive timeout: no frame within {timeout:g} s while waiting for agent events "
                f"({len(seen)} of {len(AGENT_EVENTS)} seen)"
            )
            return Variant(message, evidence, round(timeout + self.rng.uniform(0.05, 0.3), 6))
        return self.passing(state)

    def refused(self) -> Variant:
        kind = self.check.kind
        if kind == "performance":
            evidence: dict[str, Any] = {}  # the samples' evidence is only kept once a sample succeeds
        elif kind in ("http", "auth"):
            step = (self.check.definition.get("requests") or [{}])[0]
            method, path = step.get("method", "GET"), step.get("path", "/")
            if kind == "auth":
                method, path = "POST", "/api/auth/token"
            evidence = {"requests": [self.http(method, path, None)]}
        else:
            evidence = {"websocket": self.ws(handshake=None)}
        return Variant(REFUSED_MESSAGE, evidence, round(self.rng.uniform(0.002, 0.012), 6))

    def pass_message(self) -> str:
        kind, definition = self.check.kind, self.check.definition
        if kind == "http":
            return definition.get("success", f"{len(definition.get('requests', []))} requests answered as expected")
        return {
            "auth": "JWT issued and accepted; missing and tampered tokens refused with 401",
            "ws_connect": "handshake completed in 21.4 ms, ping 0.82 ms; anonymous handshake refused with 401",
            "ws_send": "server answered the first message with 'agent_started'",
            "ws_events": f"all {len(AGENT_EVENTS)} agent events received in order",
            "ws_fanout": f"subscriber received all {len(AGENT_EVENTS)} agent events of another session, in order",
            "performance": "all metrics measured, all within target (p95)",
        }.get(kind, "passed")

    def passing(self, state: str) -> Variant:
        kind, definition, rng = self.check.kind, self.check.definition, self.rng
        message = self.pass_message()
        if kind == "http":
            requests = [
                self.http(step.get("method", "GET"), step.get("path", "/"), step.get("expect_status", 200))
                for step in definition.get("requests", [])
            ]
            duration = sum(r["total_ms"] for r in requests) / 1000 + rng.uniform(0.01, 0.05)
            return Variant(message, {"requests": requests}, round(duration, 6))
        if kind == "auth":
            verify = definition.get("verify_path", "/api/auth/verify")
            requests = [self.http("POST", "/api/auth/token", 200)]
            requests += [self.http("GET", verify, status) for status in (200, 401, 401)]
            duration = sum(r["total_ms"] for r in requests) / 1000 + rng.uniform(0.01, 0.04)
            return Variant(message, {"requests": requests, "auth_enforced": True}, round(duration, 6))
        if kind == "ws_connect":
            main = self.ws_done(0, (), ping_ms=self.ms(0.3, 2.5))
            message = (
                f"handshake completed in {main['handshake_ms']:.1f} ms, ping {main['ping_ms']:.2f} ms; "
                "anonymous handshake refused with 401"
            )
            evidence = {"websocket_anonymous": self.ws(handshake=401), "auth_enforced": True, "websocket": main}
            return Variant(message, evidence, round(main["handshake_ms"] / 1000 * 2 + rng.uniform(0.03, 0.08), 6))
        if kind == "ws_send":
            return Variant(message, {"websocket": self.ws_done(1, AGENT_EVENTS[:1])}, round(rng.uniform(0.08, 0.25), 6))
        if kind == "ws_events":
            return Variant(message, {"websocket": self.ws_done(1, AGENT_EVENTS)}, round(rng.uniform(0.6, 1.4), 6))
        if kind == "ws_fanout":
            evidence = {
                "websocket_subscriber": self.ws_done(1, AGENT_EVENTS),
                "websocket": self.ws_done(1, AGENT_EVENTS),
            }
            return Variant(message, evidence, round(rng.uniform(0.8, 1.8), 6))
        if kind == "performance":
            evidence = {
                "requests": [self.http("GET", definition.get("api_path", "/api/health"), 200)],
                "websocket_latency": self.ws_done(0, ()),
            }
            if state == PERF_PARTIAL:
                evidence["websocket_agent"] = self.ws(
                    frames_out=1,
                    bytes_out=rng.randint(95, 120),
                    close_code=1000,
                    close_reason="main cleanup",
                    close_initiator="server",
                    closed_after_send_ms=self.ms(30, 90),
                )
            else:
                evidence["websocket_agent"] = self.ws_done(1, AGENT_EVENTS)
            return Variant(message, evidence, round(rng.uniform(2.5, 5.0), 6))
        return Variant(message, {}, round(rng.uniform(0.05, 0.3), 6))
