"""Run a suite's checks concurrently and hand back each outcome as soon as it is known."""

from __future__ import annotations

import asyncio
import errno
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import httpx
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from probes.base import CheckFailed, CheckFunction, CheckOutcome, CheckSpec, Evidence, ProbeContext
from probes.http.checks import check_auth, check_http
from probes.perf.checks import check_performance
from probes.ws.checks import check_ws_connect, check_ws_events, check_ws_fanout, check_ws_send

KINDS: dict[str, CheckFunction] = {
    "http": check_http,
    "auth": check_auth,
    "ws_connect": check_ws_connect,
    "ws_send": check_ws_send,
    "ws_events": check_ws_events,
    "ws_fanout": check_ws_fanout,
    "performance": check_performance,
}


def describe_network_error(exc: BaseException) -> str | None:
    """A plain sentence for the network failures a probe can meet, or None if not one."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == errno.ECONNREFUSED:
            return "connection refused: nothing is listening at that address"
        if isinstance(error, ssl.SSLError):
            return f"TLS error: {error.reason or error}"
        if isinstance(error, OSError) and error.errno in (errno.ECONNRESET, errno.EPIPE):
            return "connection reset by the server"
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused: nothing is listening at that address"
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "connect timeout: the host did not accept the connection in time"
    if isinstance(exc, httpx.ReadTimeout):
        return "receive timeout: the server accepted the request but did not answer in time"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"HTTP protocol error: {text}"
    if isinstance(exc, httpx.TransportError):
        return f"network error: {text or type(exc).__name__}"
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return f"WebSocket handshake failed: {text}"
    if isinstance(exc, WebSocketException):
        return f"WebSocket error: {text}"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or text}"
    return None


async def run_check(spec: CheckSpec, ctx: ProbeContext) -> CheckOutcome:
    evidence = Evidence()
    started_wall = time.time()
    started = time.perf_counter()
    check = KINDS.get(spec.kind)
    try:
        if check is None:
            raise CheckFailed(f"unknown check kind {spec.kind!r}")
        async with asyncio.timeout(spec.timeout_s):  # no extra task, unlike wait_for on 3.11
            message = await check(spec, ctx, evidence)
        outcome = "passed"
    except CheckFailed as exc:
        outcome, message = "failed", str(exc)
    except TimeoutError:
        outcome, message = "failed", f"receive timeout: the check did not finish within {spec.timeout_s:g} s"
    except Exception as exc:  # a probe must never take the run down with it
        described = describe_network_error(exc)
        if described:
            outcome, message = "failed", described
        else:
            outcome, message = "error", f"probe error: {type(exc).__name__}: {exc}"
    duration = time.perf_counter() - started
    return CheckOutcome(
        check_id=spec.id,
        outcome=outcome,
        duration_s=round(duration, 6),
        message=ctx.redactor.text(message),
        evidence=ctx.redactor.clean(dict(evidence)),
        started_at=started_wall,
        finished_at=started_wall + duration,
        metrics=evidence.metrics,
    )


async def _run_all(specs: list[CheckSpec], ctx: ProbeContext, deliver) -> None:
    for finished in asyncio.as_completed([run_check(spec, ctx) for spec in specs]):
        deliver(await finished)


_DONE = object()


def run_checks(
    specs: list[CheckSpec],
    ctx: ProbeContext,
    on_idle: Callable[[], None] | None = None,
    idle_every_s: float = 5.0,
) -> Iterator[CheckOutcome]:
    """Run ``specs`` concurrently in a private event loop; yield outcomes as they complete.

    The loop runs in its own thread so the caller (a Celery task) can store each outcome
    with Django's synchronous ORM while the remaining checks keep running undisturbed.
    ``on_idle`` is called in the caller's thread whenever ``idle_every_s`` pass without an
    outcome (the task's heartbeat).
    """
    outbox: queue.Queue = queue.Queue()

    def runner() -> None:
        try:
            asyncio.run(_run_all(specs, ctx, outbox.put))
        except BaseException as exc:  # handed to the caller's thread
            outbox.put(exc)
        finally:
            outbox.put(_DONE)

    thread = threading.Thread(target=runner, name="goldpath-probes", daemon=True)
    thread.start()
    while True:
        try:
            item = outbox.get(timeout=idle_every_s)
        except queue.Empty:
            if on_idle:
                on_idle()
            continue
        if item is _DONE:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()
