"""Running the reference target: in the foreground, or in a thread for tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from probes.target.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, build_app
from probes.target.faults import Faults, parse_faults

# Bounds how long shutdown waits for in-flight requests (e.g. a latency fault).
SHUTDOWN_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0


async def serve_forever(
    host: str,
    port: int,
    faults: Faults,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until cancelled, then close open WebSockets and shut down.

    ``ready`` is called with the bound port once the socket listens, which
    is how callers learn the port when they ask for port 0.
    """
    app = build_app(faults, client_id=client_id, client_secret=client_secret)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        if ready is not None:
            ready(runner.addresses[0][1])
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


NO_FAULTS = Faults()


class TargetServer:
    """The target on an ephemeral loopback port, in a background thread.

    A context manager, so tests and benchmarks get a real server with real
    sockets without an event loop of their own::

        with TargetServer(["ws-1011"]) as target:
            httpx.get(target.base_url + "/health")
    """

    host = "127.0.0.1"

    def __init__(
        self,
        faults: Faults | list[str] = NO_FAULTS,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
    ) -> None:
        self.faults = faults if isinstance(faults, Faults) else parse_faults(faults)
        self.client_id = client_id
        self.client_secret = client_secret
        self.port: int | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def start(self) -> None:
        """Start serving; returns once the port is bound, raises if it fails."""
        if self._thread is not None:
            raise RuntimeError("TargetServer already started")
        self._thread = threading.Thread(target=self._run, name="goldpath-target", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("reference target did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("reference target failed to start") from self._error

    def stop(self) -> None:
        """Shut down (closing open WebSockets) and wait for the thread."""
        if self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_S + SHUTDOWN_TIMEOUT_S)

    def __enter__(self) -> TargetServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to start(), which re-raises it
            self._error = exc
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):
            await serve_forever(
                self.host,
                0,
                self.faults,
                client_id=self.client_id,
                client_secret=self.client_secret,
                ready=self._on_ready,
            )

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._started.set()
