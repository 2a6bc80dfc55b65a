"""Real services the example suites and the auth tests probe, on loopback ports, in threads.

- ``httpbin_server.HttpbinServer``: PyPI httpbin, a service Goldpath did not write.
- ``realtime.RealtimeServer``: a market/chat feed over WebSocket and Server-Sent Events,
  with a protocol unlike the bundled target's.
- ``oauth.OAuthServer``: an OAuth2 token endpoint (authlib, client credentials) and a
  resource that accepts only its tokens.

Each is a context manager with ``.base_url``; leaving it stops the server and its thread.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 10.0


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request on the test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class WSGIThreadServer:
    """A WSGI app on ``127.0.0.1:<ephemeral port>``, served by werkzeug (one thread per
    request) from a background thread::

        with WSGIThreadServer(app) as server:
            httpx.get(server.base_url + "/get")
    """

    name = "wsgi"

    def __init__(self, app: Any) -> None:
        self.app = app
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} server not started")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"{self.name} server already started")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(HOST, 0, self.app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"test-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, wait for the serving thread, close the socket. Request threads
        still running (a /delay) are daemon threads: they never hold the process."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        self._server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> WSGIThreadServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
