"""The dashboard served by real gunicorn processes on loopback, as in production, and raw
HTTP over a socket for requests an ordinary client would not send (3 GB announced, a
few bytes sent)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import BASE_DIR, stop_process

READY_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[str]:
    """Serve the dashboard with ``gunicorn -w workers`` from the project root (so it reads
    gunicorn.conf.py); yield its base URL once it answers."""
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)],
        env=env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            try:
                httpx.get(f"{base_url}/accounts/login/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield base_url
    finally:
        stop_process(process)
        log.close()


def raw_request(
    base_url: str, request_line: str, headers: dict[str, str], body: bytes = b"", timeout: float = 30
) -> tuple[int, bytes]:
    """Send the request line, ``headers`` and ``body`` (which need not be as long as the
    Content-Length says), then read the answer to its end; return its status and the
    answer. ``timeout`` only guards against a hang."""
    host, port = base_url.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": "127.0.0.1", **headers}.items())
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(f"{request_line} HTTP/1.1\r\n{head}\r\n".encode() + body)
        answer = bytearray()
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), bytes(answer)
