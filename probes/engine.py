"""Run a suite's checks concurrently; hand back each outcome as soon as it is known.

A check runs its steps in order, ``repeat`` times (samples), and again on failure up to
``retries`` times (attempts). Each attempt is bounded by ``timeout_s`` whatever the peer
does; a run that stops for any reason cancels its checks and closes their connections.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import WebSocketException

from probes.channels import CLOSE_TIMEOUT_S, ChannelClosed
from probes.evidence import Evidence
from probes.failures import StepFailed
from probes.matchers import MatcherError
from probes.metrics import MeasuredMetric, SampleMarks, measure, percentile_label
from probes.net import network_failure, new_http_client
from probes.runtime import RunTarget, StepContext
from probes.steps import StepDone
from probes.suite.model import Check

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0  # for cancelled checks to close their connections
TEARDOWN_GRACE_S = 0.5  # after timeout_s, for `always` steps; then the check is cut
STEP_SLACK_S = 0.05  # a step's own deadline (receive's within_s …) fires first and says more
SUMMARY_STEPS = 3


@dataclass
class CheckOutcome:
    check_id: str
    outcome: str  # passed | failed | error
    duration_s: float
    message: str
    evidence: dict[str, Any]
    started_at: float  # epoch seconds
    finished_at: float
    metrics: list[MeasuredMetric] = field(default_factory=list)
    attempts: int = 1

    @property
    def failure(self) -> dict[str, Any] | None:
        return self.evidence.get("failure")


@dataclass
class _Failure:
    code: str
    message: str
    step: int | None = None
    kind: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "step": self.step, "kind": self.kind, "details": self.details}


@dataclass
class _Sample(SampleMarks):
    failure: _Failure | None = None
    summaries: list[tuple[str, str]] = field(default_factory=list)  # (kind, summary) of steps that passed


@dataclass
class _Attempt:
    outcome: str
    message: str
    metrics: list[MeasuredMetric]
    failure: _Failure | None = None


def _as_step_failure(exc: BaseException) -> StepFailed | None:
    if isinstance(exc, StepFailed):
        return exc
    if isinstance(exc, ChannelClosed):
        return StepFailed("net.reset", f"the connection ended: {exc.reason}")
    if isinstance(exc, MatcherError):
        return StepFailed("config.template", f"once its templates were filled in, {exc}")
    if isinstance(exc, UnicodeEncodeError):
        return StepFailed(
            "config.template", f"a header or URL holds text HTTP cannot carry ({exc.object[exc.start : exc.end]!r})"
        )
    if isinstance(exc, httpx.HTTPError | OSError | WebSocketException):
        return network_failure(exc) or StepFailed("net.error", f"network error: {type(exc).__name__}: {exc}")
    return None


async def _close_all(ctx: StepContext) -> None:
    """Close every connection the sample left open, bounded in time, and finish doing so even
    if the check is cancelled meanwhile (its timeout, a stopped run): then cancel on."""
    channels = list(ctx.channels.values())
    ctx.channels.clear()
    if not channels:
        return

    async def close_them() -> None:
        async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
            await asyncio.gather(*(c.aclose() for c in channels), return_exceptions=True)

    closing = asyncio.ensure_future(close_them())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await asyncio.gather(closing, return_exceptions=True)
        raise
    except TimeoutError:
        pass


async def _run_step(step: Any, ctx: StepContext, record: dict[str, Any], check: Check) -> StepDone:
    """One step, bounded by the check's deadline: when timeout_s runs out during it, the
    step fails (an optional one ends the sample, and teardown still runs)."""
    try:
        async with asyncio.timeout(max(ctx.deadline + STEP_SLACK_S - time.perf_counter(), 0)):
            return await step.kind.run(step, ctx, record)
    except TimeoutError:
        raise StepFailed(
            "timeout.check", f"the check's timeout_s ({check.timeout_s:g} s) ran out during this step"
        ) from None


async def _run_sample(
    check: Check,
    target: RunTarget,
    evidence: Evidence,
    http: httpx.AsyncClient,
    deadline: float,
    number: int,
    samples: list[_Sample],
) -> _Sample:
    ctx = StepContext(target, check, target.variables_for(check.vars), evidence, http, deadline, sample=number)
    sample = _Sample(ctx.sample_started, ctx.marks)
    samples.append(sample)
    ended = False
    try:
        for index, step in enumerate(check.steps, 1):
            if ended and not step.always:
                continue
            if ended:  # teardown after a failure: the grace after timeout_s is its time too
                ctx.deadline = deadline + TEARDOWN_GRACE_S
            ctx.step = index
            record = evidence.add_step({"sample": number, "step": index, "kind": step.KIND})
            if step.mark:
                record["mark"] = step.mark
            begun = time.perf_counter()
            record["at_ms"] = ctx.ms_since_start(begun)
            failed: StepFailed | None = None
            try:
                done = await _run_step(step, ctx, record, check)
            except Exception as exc:
                failed = _as_step_failure(exc)
                if failed is None:
                    raise
            finished = time.perf_counter()
            record["ms"] = round((finished - begun) * 1000, 3)
            record["ok"] = failed is None
            if failed is None:
                record["summary"] = done.summary
                ctx.mark(step.mark, begun, finished, done.duration_ms)
                sample.summaries.append((step.KIND, done.summary))
                continue
            message = f"step {index} {step.KIND}: {failed.message}"
            record.update(error=message, code=failed.code)
            if step.optional:
                record["optional"] = True
                sample.ended_because = sample.ended_because or message
            elif sample.failure is None:  # the first failure, or a teardown's after an optional one
                sample.failure = _Failure(failed.code, message, index, step.KIND, failed.details)
                sample.ended_because = sample.ended_because or message
            ended = True
    finally:
        evidence.add_sample(
            {
                "sample": number,
                "ok": sample.failure is None,
                "ms": ctx.ms_since_start(),
                "marks": {name: round((mark.ended - ctx.sample_started) * 1000, 3) for name, mark in ctx.marks.items()},
            }
        )
        await _close_all(ctx)
    return sample


def _summary(check: Check, sample: _Sample, samples: int) -> str:
    over = f" over {samples} samples" if samples > 1 else ""
    if not sample.summaries:
        return f"passed: an optional step ended the sample ({sample.ended_because})"
    # A pass that an optional step cut short says so: the steps after it were not checked.
    cut_short = f"; an optional step ended the sample ({sample.ended_because})" if sample.ended_because else ""
    if len(sample.summaries) <= SUMMARY_STEPS:
        return "; ".join(text for _, text in sample.summaries) + over + cut_short
    counts = Counter(kind for kind, _ in sample.summaries)
    listed = ", ".join(f"{n} {kind}{'s' if n > 1 and not kind.endswith('s') else ''}" for kind, n in counts.items())
    every = "" if cut_short else "all "
    return f"{every}{len(sample.summaries)} steps passed{over} ({listed}){cut_short}"


def _metric_summary(metrics: list[MeasuredMetric], samples: int) -> str:
    taken = [m for m in metrics if m.p95 is not None]
    if not taken:
        return f"no metric measured over {samples} sample{'s' if samples != 1 else ''}: {metrics[0].note}"
    labels = {percentile_label(m.percentile) for m in taken} or {"p95"}
    within = ", ".join(sorted(labels))
    message = f"{len(taken)} of {len(metrics)} metrics measured over {samples} samples, all within target ({within})"
    unmeasured = [m.name for m in metrics if m.p95 is None]
    if unmeasured:
        message += f"; not measured: {', '.join(unmeasured)}"
    return message


async def _attempt(check: Check, target: RunTarget, evidence: Evidence) -> _Attempt:
    deadline = time.perf_counter() + check.timeout_s
    samples: list[_Sample] = []
    failure: _Failure | None = None
    try:
        async with asyncio.timeout(check.timeout_s + TEARDOWN_GRACE_S), new_http_client(check.timeout_s) as http:
            for number in range(1, check.repeat + 1):
                sample = await _run_sample(check, target, evidence, http, deadline, number, samples)
                if sample.failure is not None:
                    failure = sample.failure
                    break
    except TimeoutError:
        if samples and samples[-1].failure is not None:
            failure = samples[-1].failure  # the step had failed; the timeout only cut its cleanup
        else:
            at = evidence.steps[-1] if evidence.steps else None
            where = f"; it was at step {at['step']} {at['kind']} of sample {at['sample']}" if at else ""
            failure = _Failure(
                "timeout.check",
                f"timeout: the check did not finish within {check.timeout_s:g} s (timeout_s){where}",
                at["step"] if at else None,
                at["kind"] if at else None,
                {"timeout_s": check.timeout_s},
            )
            if samples and not samples[-1].ended_because:
                samples[-1].ended_because = failure.message
    metrics = measure(check, samples)
    if failure is not None:
        return _Attempt("failed", failure.message, metrics, failure)
    missed = sorted((m for m in metrics if m.ok is False), key=lambda m: -(m.p95 or 0) / m.target)
    if missed:  # the worst miss first: it names the failure's class
        detail = ", ".join(
            f"{m.name} {percentile_label(m.percentile)} {m.p95:.1f} ms over the {m.target:g} ms target" for m in missed
        )
        return _Attempt(
            "failed",
            f"performance target missed: {detail}",
            metrics,
            _Failure(
                "metric.over_target",
                f"performance target missed: {detail}",
                details={
                    "metric": missed[0].name,
                    "value_ms": missed[0].p95,
                    "target_ms": missed[0].target,
                    "metrics": [m.name for m in missed],
                },
            ),
        )
    if metrics:
        return _Attempt("passed", _metric_summary(metrics, len(samples)), metrics)
    return _Attempt("passed", _summary(check, samples[-1], len(samples)), metrics)


async def run_check(check: Check, target: RunTarget) -> CheckOutcome:
    started_wall = time.time()
    started = time.perf_counter()
    earlier: list[str] = []
    attempts = check.retries + 1
    for attempt in range(1, attempts + 1):
        evidence = Evidence(target.limits, attempts=attempt)
        try:
            result = await _attempt(check, target, evidence)
        except Exception as exc:  # a bug in the engine must never take the run down with it
            trace = "".join(traceback.format_exception(exc))
            logger.error("check %s: probe error\n%s", check.id, target.redactor.text(trace))
            result = _Attempt(
                "error", f"probe error: {type(exc).__name__}: {exc}", [], _Failure("probe.error", str(exc))
            )
        if result.outcome == "passed" or attempt == attempts:
            break
        earlier.append(result.message)
    message = result.message
    if result.outcome == "passed" and earlier:
        message = f"passed on attempt {attempt} of {attempts} (attempt 1: {earlier[0]}); {message}"
    evidence.failure = result.failure.as_dict() if result.failure else None
    data = evidence.as_dict(target.redactor)
    if earlier:
        data["earlier_attempts"] = [target.redactor.text(m)[:1000] for m in earlier]
    duration = time.perf_counter() - started
    for metric in result.metrics:
        metric.note = target.redactor.text(metric.note)
    return CheckOutcome(
        check_id=check.id,
        outcome=result.outcome,
        duration_s=round(duration, 6),
        message=target.redactor.text(message),
        evidence=data,
        started_at=started_wall,
        finished_at=started_wall + duration,
        metrics=result.metrics,
        attempts=attempt,
    )


async def run_all(checks: Sequence[Check], target: RunTarget, deliver: Callable[[CheckOutcome], None]) -> None:
    """Every check at once; ``deliver`` each outcome as it comes. Cancelling this cancels
    them all and waits for their connections to close."""
    tasks = [asyncio.create_task(run_check(check, target), name=f"check-{check.id}") for check in checks]
    try:
        for finished in asyncio.as_completed(tasks):
            deliver(await finished)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_DONE = object()


def run_checks(
    checks: Sequence[Check],
    target: RunTarget,
    on_idle: Callable[[], None] | None = None,
    idle_every_s: float = 5.0,
) -> Generator[CheckOutcome, None, None]:
    """Run ``checks`` in a private event loop; yield outcomes as they complete.

    The loop runs in its own thread so the caller (a Celery task) can store each outcome
    with Django's synchronous ORM while the remaining checks keep running. ``on_idle`` is
    called in the caller's thread whenever ``idle_every_s`` pass without an outcome (the
    task's heartbeat). If the caller stops early (an exception, a time limit, ``close()``),
    the checks are cancelled, their sockets closed and the thread ends.
    """
    outbox: queue.Queue[Any] = queue.Queue()
    loop = asyncio.new_event_loop()
    main: asyncio.Task[None] | None = None
    ready = threading.Event()

    def runner() -> None:
        nonlocal main
        try:
            asyncio.set_event_loop(loop)
            main = loop.create_task(run_all(checks, target, outbox.put))
            ready.set()
            loop.run_until_complete(main)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the caller's thread
            outbox.put(exc)
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                outbox.put(_DONE)

    thread = threading.Thread(target=runner, name="goldpath-probes", daemon=True)
    thread.start()
    ready.wait()
    finished = False
    try:
        while True:
            try:
                item = outbox.get(timeout=idle_every_s)
            except queue.Empty:
                if on_idle:
                    on_idle()
                continue
            if item is _DONE:
                finished = True
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not finished and main is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(main.cancel)
            except RuntimeError:
                pass  # the loop closed meanwhile
        thread.join(None if finished else STOP_TIMEOUT_S)
