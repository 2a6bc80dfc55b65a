"""PyPI httpbin (``from httpbin import app``) on a loopback port, in a thread::

with HttpbinServer() as httpbin:
    httpx.get(httpbin.base_url + "/status/418")
"""

from __future__ import annotations

import logging
import warnings

from tests.servers import WSGIThreadServer


def _httpbin_app():
    # httpbin warns (once, at import) that flasgger is missing: only its Swagger UI needs it.
    logging.getLogger("httpbin").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from httpbin import app
    return app


class HttpbinServer(WSGIThreadServer):
    name = "httpbin"

    def __init__(self) -> None:
        super().__init__(_httpbin_app())
