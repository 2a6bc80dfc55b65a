"""``generate_history``: fill the database with a realistic run history, fast.

For benchmarks and demos. The evidence is real: the suite's current version first runs
through the probe engine against the bundled target (in-process, on loopback) in each fault
mode the health profiles need, and every generated result replays one of those recorded
outcomes with jittered timings. Nothing here knows the suite's checks, steps or the target's
protocol, so the history shows what real runs of that suite show and cannot drift from the
engine. Each batch of runs goes in finished through ``runs.services.store_finished_runs``
(bulk inserts, COPY on PostgreSQL, one transaction per batch): no per-row saves, no Celery.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from probes.metrics import MeasuredMetric, percentile
from probes.suite.loader import SuiteFileError, suite_from_definition
from runs import bulk
from runs.analysis.classification import classify
from runs.analysis.facts import FAILING, PASSED, ResultFacts
from runs.analysis.flakiness import DEFAULT_WINDOW, FLAKY_FLIP_RATE, MIN_RUNS
from runs.analysis.mock import (
    CONSTANT_RUNS,
    NETWORK,
    auth_never_enforced,
    overlapping,  # realness() is cached by its answer
    realness,
    result_indicators,
    round_trip_ms,
    run_indicators,
)
from runs.analysis.mrr import mrr_at_risk
from runs.analysis.verdict import DEFAULT_MIN_PASS_RATE, compute_verdict
from runs.history import active_rules
from runs.models import Environment, Measurement, Note, Result, Run, RunStatus, Suite, TestCase
from runs.recordings import (
    EVENTS_MISSING,
    HEALTHY,
    REFUSED,
    SLOW,
    SLOW_WS_CLOSED,
    WS_CLOSED,
    Recorded,
    RecordingFailed,
    record_suite,
)
from runs.services import OUTCOME_COUNTERS, FinishedRun, store_finished_runs, truncate
from runs.suites import SuiteRefused, load_suite_path

ENV_PREFIX = "env-"
# Cycled over env-1, env-2, …: env-2 is the seed report's failure mode.
PROFILES = ("healthy", "ws-closed-1000", "flaky", "stubbed", "healthy")
REGRESSION_STARTS_AT = 0.25  # share of the window after which env-2's WebSocket closes after send
REGRESSION_RATE = 0.97  # share of runs after that point that show it
FLAKY_FAIL_RATE = 0.19  # independent failures at this rate flip ~30 % of the time (2·p·(1-p))
OUTAGE_RATE = 0.008  # chance that a run starts a connection-refused outage
SLOW_RATE = 0.03  # chance that a run misses a performance target
TRIGGERS = (("schedule", 0.80), ("manual", 0.14), ("rerun", 0.06))
STUBBED_CHECKS = 3  # checks the stubbed profile's "tests" fake
STUB_DURATION_S = 0.0004
STUB = "stub"  # a mocked check's outcome: made up, not recorded (see Command.stub_outcome)


HELP = """Fill the database with a realistic run history, fast (bulk inserts, no Celery).

Creates environments env-1..env-K (https://env-K.example.test) and N finished runs of the
suite's current version over the last --days days. The evidence comes from real probe runs
of the suite against the bundled target on loopback (recorded first, in a few seconds, once
per process and version; the checks must pass against the healthy target, and the golden
path needs GOLDPATH_TARGET_SECRET=demo-secret): each result replays a recorded outcome of
its check (message, evidence with the loopback URLs it was measured on, failure) with
jittered timings; measurements replay the recorded samples scaled by a per-run factor.

Environments follow health profiles in turn: healthy; the seed report's failure (from a
quarter of the way in the target closes the WebSocket with code 1000 after the first
message); one flaky non-critical check (fails as with events-missing in ~19 % of runs, so
it flips ~30 % of the time); a stubbed target (3 checks "pass" in under 1 ms with no
evidence, measurements identical every run: synthetic on purpose, for the mock indicators
to catch); healthy. All have occasional outages (connection refused) and missed
performance targets (latency=150).

Stored analysis is what finish_run would store, from the real analysis functions;
flaky_count and constant measurements are tracked over rolling windows per environment,
exact for histories made by this command alone. Same --seed, same runs and analysis.
Reruns point to the previous run of their environment.
"""


@dataclass(frozen=True)
class Check:
    index: int
    check_id: str
    test_case_id: int
    has_metrics: bool
    fact: ResultFacts  # what the analysis reads of its test case; a pattern copies it


@dataclass
class Pattern:
    """A combination of recorded outcomes (one per check) and the analysis that depends on
    nothing else; many runs replay the same combination."""

    recorded: list[Recorded]
    facts: list[ResultFacts]  # reused: each run sets its own durations and times before use
    failure_classes: list[str]
    verdict: str
    mrr_at_risk: int
    no_auth: bool
    rtt_ms: float | None
    counts: dict[str, int]
    realness: dict[bool, float] = field(default_factory=dict)  # by "the results overlapped"


@dataclass
class EnvState:
    environment: Environment
    index: int  # 1-based, as in the name
    profile: str
    last_run: Run | None = None
    outage_left: int = 0
    slow_streak: int = 0
    outcomes: list[deque] = field(default_factory=list)  # per check: passed? over the flaky window
    flips: list[int] = field(default_factory=list)
    p50s: dict[str, deque] = field(default_factory=dict)  # metric → newest last, CONSTANT_RUNS long


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runs", type=int, required=True, help="Runs to create.")
        parser.add_argument("--environments", type=int, default=5, help="Environments env-1..env-K (default 5).")
        parser.add_argument("--suite", default="golden-path", help="Suite name (default golden-path).")
        parser.add_argument("--days", type=float, default=90, help="Spread the runs over this many days (90).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (1); same seed, same history.")
        parser.add_argument("--batch", type=int, default=2000, help="Runs per transaction (2000).")
        parser.add_argument(
            "--clear", action="store_true", help="First delete the environments named env-* and all their runs."
        )

    def handle(self, *args: Any, **options: Any) -> None:
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
        suite = Suite.objects.filter(name=name).select_related("current_version").first()
        if suite is None:
            path = settings.GOLDPATH_SUITES_DIR / f"{name}.yaml"
            if not path.exists():
                raise CommandError(f"no suite {name!r} in the database and no {path}")
            try:
                suite = load_suite_path(path)
            except (SuiteFileError, SuiteRefused) as exc:
                raise CommandError(str(exc)) from None
            self.log(f"Loaded suite {suite.name} from {path}")
        if suite.current_version is None:
            raise CommandError(f"suite {name!r} has no suite file version to run (it holds imported results)")
        return suite

    def setup_checks(self) -> None:
        version = self.suite.current_version
        assert version is not None, "load_suite refuses a suite without one"
        self.version = version
        try:
            model = suite_from_definition(self.version.definition)
        except ValueError as exc:
            raise CommandError(
                f"version {self.version.number} of suite {self.suite.name!r} no longer validates "
                f"({str(exc).splitlines()[0]}); load the suite file again"
            ) from None
        test_cases = {
            tc.node_id: tc
            for tc in self.suite.test_cases.filter(active=True)
            .select_related("category")
            .prefetch_related("impact_tags")
        }
        missing = [c.id for c in model.checks if c.id not in test_cases]
        if missing:
            raise CommandError(f"suite {self.suite.name!r} has no active test case for {missing}: load it again")
        self.checks = []
        for index, check in enumerate(model.checks):
            tc = test_cases[check.id]
            fact = ResultFacts(tc.name, tc.category.name, PASSED, 0.0, tc.category.critical, node_id=tc.node_id)
            fact.declares, fact.impact = tc.declares, tuple(tag.name for tag in tc.impact_tags.all())
            self.checks.append(Check(index, check.id, tc.pk, bool(check.metrics), fact))
        self.tag_mrr = {tag.name: tag.mrr for tc in test_cases.values() for tag in tc.impact_tags.all()}
        self.min_pass_rate = self.version.definition.get("verdict", {}).get("min_pass_rate", DEFAULT_MIN_PASS_RATE)
        self.metric_keys = [m.key for c in model.checks for m in c.metrics]
        self.rules = active_rules()
        started = time.monotonic()
        try:
            self.recorded = record_suite(model, self.version.digest)
        except RecordingFailed as exc:
            raise CommandError(str(exc)) from None
        self.log(f"Recorded runs of {self.suite.name} against the bundled target in {time.monotonic() - started:.1f} s")
        self.choose_roles()
        self.setup_evidence()
        self.patterns: dict[tuple, Pattern] = {}
        self.classes: dict[int, str] = {}  # by id() of a Recorded
        self.unscaled: dict[int, tuple[list[tuple], dict[str, float | None]]] = {}
        self.flags_json: dict[tuple[str, ...], str] = {}

    def choose_roles(self) -> None:
        """Which checks the flaky and stubbed profiles affect, from the recordings alone."""
        healthy = self.recorded[HEALTHY.name][0]
        self.metric_checks = [c.index for c in self.checks if c.has_metrics]
        non_critical = [c for c in self.checks if not c.fact.critical] or self.checks
        events = self.recorded[EVENTS_MISSING.name][0]
        differs = [c for c in non_critical if events[c.check_id].outcome != healthy[c.check_id].outcome]
        # The last non-critical check events-missing breaks; else any one, failing as in an outage.
        self.flaky_check = (differs or non_critical)[-1].index
        self.flaky_mode = EVENTS_MISSING.name if differs else REFUSED.name
        faked = [c for c in self.checks if not c.has_metrics and set(c.fact.declares.split()) & NETWORK]
        faked = faked or [c for c in self.checks if not c.has_metrics]
        self.stub_checks = {c.index for c in faked[-STUBBED_CHECKS:]}
        self.stub_outcomes = {i: self.stub_outcome(healthy[self.checks[i].check_id]) for i in self.stub_checks}

    @staticmethod
    def stub_outcome(real: Recorded) -> Recorded:
        """A mocked test, synthetic on purpose: it prints the real check's message but
        finishes in under a millisecond and shows no evidence at all."""
        return Recorded(PASSED, STUB_DURATION_S, real.offset_s, real.message, None, {}, bulk.json_value({}), 1, [])

    def setup_evidence(self) -> None:
        """Results replay a hundred or so distinct evidence values: a result row carries the
        number of its value, and each batch inserts the values once (bulk.insert_rows_sharing_values)."""
        replayed = [r for runs in self.recorded.values() for run in runs for r in run.values()]
        replayed += self.stub_outcomes.values()
        numbers: dict[str, int] = {}
        for recorded in replayed:
            numbers.setdefault(recorded.evidence_json, len(numbers))
        self.evidence_values = list(numbers)
        self.evidence_ref = {id(r): numbers[r.evidence_json] for r in replayed}

    def setup_environments(self, count: int) -> list[EnvState]:
        states = []
        for k in range(1, count + 1):
            environment, _ = Environment.objects.get_or_create(
                name=f"{ENV_PREFIX}{k}", defaults={"base_url": f"https://env-{k}.example.test"}
            )
            state = EnvState(environment, k, PROFILES[(k - 1) % len(PROFILES)])
            state.outcomes = [deque() for _ in self.checks]
            state.flips = [0] * len(self.checks)
            state.p50s = {key: deque(maxlen=CONSTANT_RUNS) for key in self.metric_keys}
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
            store_finished_runs(planned, self.evidence_values)
            totals["runs"] += len(planned)
            totals["results"] += sum(len(item.results) for item in planned)
            totals["measurements"] += sum(len(item.measurements) for item in planned)
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

    def choose_outcomes(self, env: EnvState, position: float) -> tuple[tuple[str, int], ...]:
        """Which recorded outcome each check of the next run replays: (mode, recording)."""
        rng = self.rng
        outage = env.outage_left > 0
        if outage:
            env.outage_left -= 1
        elif rng.random() < OUTAGE_RATE:
            outage, env.outage_left = True, rng.choice((0, 0, 1, 2))
        ws_down = (
            env.profile == "ws-closed-1000" and position >= REGRESSION_STARTS_AT and rng.random() < REGRESSION_RATE
        )
        base = REFUSED if outage else WS_CLOSED if ws_down else HEALTHY
        picks = [(base.name, rng.randrange(base.recordings))] * len(self.checks)
        flaky, slow = rng.random() < FLAKY_FAIL_RATE, rng.random() < SLOW_RATE
        # A slow run replays its samples as measured (its message quotes them): never so many
        # in a row that identical values would read as constants.
        slow = slow and not outage and env.profile != "stubbed" and env.slow_streak < CONSTANT_RUNS - 1
        env.slow_streak = env.slow_streak + 1 if slow else 0
        if outage:
            return tuple(picks)
        if env.profile == "flaky" and flaky:
            picks[self.flaky_check] = (self.flaky_mode, 0)
        if env.profile == "stubbed":
            for index in self.stub_checks:
                picks[index] = (STUB, 0)
            for index in self.metric_checks:  # the same recording, unscaled: constants
                picks[index] = (HEALTHY.name, 0)
        elif slow:
            for index in self.metric_checks:
                picks[index] = ((SLOW_WS_CLOSED if ws_down else SLOW).name, 0)
        return tuple(picks)

    def recorded_outcome(self, check: Check, pick: tuple[str, int]) -> Recorded:
        mode, number = pick
        if mode == STUB:
            return self.stub_outcomes[check.index]
        return self.recorded[mode][number][check.check_id]

    def plan_run(self, env: EnvState, created: datetime, position: float) -> FinishedRun:
        rng = self.rng
        picks = self.choose_outcomes(env, position)
        pattern = self.patterns.get(picks) or self.new_pattern(picks)
        factor = 1.0 if env.profile == "stubbed" else rng.lognormvariate(0, 0.12)

        trigger = rng.choices([t for t, _ in TRIGGERS], [w for _, w in TRIGGERS])[0]
        parent = env.last_run if trigger == Run.Trigger.RERUN else None
        if trigger == Run.Trigger.RERUN and parent is None:
            trigger = Run.Trigger.MANUAL
        environment = env.environment
        started_at = created + timedelta(seconds=rng.uniform(0.05, 1.5))
        run = Run(
            environment=environment,
            suite=self.suite,
            version=self.version,
            trigger=trigger,
            scope=Run.Scope.ALL,
            expected=len(self.checks),
            base_url=environment.base_url,
            ws_url=environment.effective_ws_url,
            variables={},
            worker=f"celery@worker-{1 + env.index % 2}",
            created=created,
            started_at=started_at,
            total=len(self.checks),
            verdict=pattern.verdict,
            mrr_at_risk=pattern.mrr_at_risk,
            **pattern.counts,
        )

        results, measurements, p50 = [], [], {}
        flagged, end = 0, 0.0
        for check, recorded, fact in zip(self.checks, pattern.recorded, pattern.facts, strict=True):
            jitter = rng.uniform(0.85, 1.2)
            duration = round(recorded.duration_s * jitter, 6)
            started = started_at + timedelta(seconds=recorded.offset_s * jitter)
            finished = started + timedelta(seconds=duration)
            end = max(end, recorded.offset_s * jitter + duration)
            fact.duration_s, fact.started_at, fact.finished_at = duration, started.timestamp(), finished.timestamp()
            flags = tuple(result_indicators(fact, pattern.rtt_ms))
            flagged += bool(flags)
            if flags not in self.flags_json:
                self.flags_json[flags] = bulk.json_value(list(flags))
            results.append(
                (
                    check.test_case_id,
                    recorded.outcome,
                    duration,
                    truncate(recorded.message),
                    pattern.failure_classes[check.index],
                    self.flags_json[flags],
                    recorded.attempts,
                    bulk.datetime_value(started),
                    bulk.datetime_value(finished),
                    self.evidence_ref[id(recorded)],
                )
            )
            if recorded.metrics:
                rows, values = self.measured(recorded, factor)
                measurements += [(check.test_case_id, *row) for row in rows]
                p50.update(values)
        run.duration_s = round(end + rng.uniform(0.2, 0.8), 3)
        run.finished_at = run.heartbeat_at = started_at + timedelta(seconds=run.duration_s)
        overlap = overlapping(pattern.facts)
        if overlap not in pattern.realness:
            pattern.realness[overlap] = realness(pattern.facts).score
        run.realness_score = pattern.realness[overlap]
        self.track_history(env, run, pattern, p50, flagged)
        env.last_run = run
        return FinishedRun(run, parent, results, measurements)

    def measured(self, recorded: Recorded, factor: float) -> tuple[list[tuple], dict[str, float | None]]:
        """Measurement rows (without run and test case) and the p50 of each key. A passing
        outcome's samples are scaled by the run's factor, unless that would change a verdict
        against a target; a failing one's stay as measured, since its message quotes them."""
        if recorded.outcome == PASSED and factor != 1.0:
            metrics = [self.scaled(m, factor) for m in recorded.metrics]
            if all(m.ok == r.ok for m, r in zip(metrics, recorded.metrics, strict=True)):
                return self.measurement_rows(metrics)
        if id(recorded) not in self.unscaled:
            self.unscaled[id(recorded)] = self.measurement_rows(recorded.metrics)
        return self.unscaled[id(recorded)]

    @staticmethod
    def measurement_rows(metrics: list[MeasuredMetric]) -> tuple[list[tuple], dict[str, float | None]]:
        rows = [
            (m.key, m.name, m.unit, m.target, m.comparison, m.p50, m.p95, bulk.json_value(m.samples), m.ok,
             m.note[:500], m.percentile)
            for m in metrics
        ]  # fmt: skip
        return rows, {m.key: m.p50 for m in metrics}

    @staticmethod
    def scaled(metric: MeasuredMetric, factor: float) -> MeasuredMetric:
        if not metric.samples or factor == 1.0:
            return metric
        samples = [round(value * factor, 3) for value in metric.samples]
        judged = round(percentile(samples, metric.percentile), 3)
        ok = judged < metric.target if metric.comparison == "lt" else judged > metric.target
        return replace(metric, samples=samples, p50=round(percentile(samples, 50), 3), p95=judged, ok=ok)

    # --- analysis ----------------------------------------------------------------------------

    def new_pattern(self, picks: tuple[tuple[str, int], ...]) -> Pattern:
        recorded = [self.recorded_outcome(check, pick) for check, pick in zip(self.checks, picks, strict=True)]
        facts = [
            replace(
                check.fact,
                outcome=r.outcome,
                duration_s=r.duration_s,
                message=truncate(r.message),
                failure_class=self.failure_class(r),
                evidence=r.evidence,
            )
            for check, r in zip(self.checks, recorded, strict=True)
        ]
        counts = {name: 0 for name in OUTCOME_COUNTERS.values()}
        for fact in facts:
            counts[OUTCOME_COUNTERS[fact.outcome]] += 1
        pattern = Pattern(
            recorded=recorded,
            facts=facts,
            failure_classes=[f.failure_class for f in facts],
            verdict=compute_verdict(facts, self.min_pass_rate),
            mrr_at_risk=mrr_at_risk(facts, self.tag_mrr).total,
            no_auth=auth_never_enforced(facts),
            rtt_ms=round_trip_ms(facts),
            counts=counts,
        )
        self.patterns[picks] = pattern
        return pattern

    def failure_class(self, recorded: Recorded) -> str:
        """As record_result classifies: once per recorded outcome (message and failure)."""
        if recorded.outcome not in FAILING:
            return ""
        if id(recorded) not in self.classes:
            self.classes[id(recorded)] = classify(recorded.message, recorded.failure, self.rules)
        return self.classes[id(recorded)]

    def track_history(
        self, env: EnvState, run: Run, pattern: Pattern, p50: dict[str, float | None], flagged: int
    ) -> None:
        """The run-level analysis that depends on the environment's previous runs."""
        for key, values in env.p50s.items():
            values.append(p50.get(key))
        history = {key: list(reversed(values)) for key, values in env.p50s.items()}
        run.mock_flags = run_indicators(history, pattern.no_auth)
        run.mock_count = flagged + len(run.mock_flags)
        flaky = 0
        for index, fact in enumerate(pattern.facts):
            self.push_outcome(env, index, fact.outcome == PASSED)
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

    def log(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)
