"""Probes reach only what an environment allows: names, resolved addresses, no redirects."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from probes.base import CheckSpec, ProbeContext, address_allowed
from probes.engine import run_checks

HEALTH = CheckSpec(id="h", name="Health", category="A", kind="http", options={"requests": [{"path": "/health"}]})


@pytest.mark.parametrize(
    ("ip", "allowed", "expected"),
    [
        ("169.254.169.254", {"staging.example.com"}, False),  # cloud metadata
        ("127.0.0.1", {"staging.example.com"}, False),
        ("10.1.2.3", {"staging.example.com"}, False),
        ("::1", {"staging.example.com"}, False),
        ("127.0.0.1", {"127.0.0.1"}, True),
        ("10.1.2.3", {"10.0.0.0/8"}, True),
        ("127.0.0.1", {"localhost"}, True),
        ("8.8.8.8", {"staging.example.com"}, True),  # a public answer for an allowed name
    ],
)
def test_address_allowlist(ip, allowed, expected):
    assert address_allowed(ip, allowed) is expected


def ctx_for(base_url: str, allowed: set[str]) -> ProbeContext:
    host = base_url.split("//")[1]
    return ProbeContext(base_url=base_url, ws_url=f"ws://{host}/ws", allowed_hosts=allowed)


def test_it_refuses_an_allowed_name_that_resolves_to_a_private_address(target):
    name = socket.gethostname()  # /etc/hosts maps it to a loopback address on Debian
    if not socket.gethostbyname(name).startswith("127."):
        pytest.skip("this machine's host name does not resolve to loopback")
    [outcome] = run_checks([HEALTH], ctx_for(f"http://{name}:{target.port}", {name.lower()}))
    assert outcome.outcome == "failed"
    assert "non-public address" in outcome.message and "not sent" in outcome.message


def test_it_refuses_hosts_outside_the_allowlist_before_connecting(target):
    [outcome] = run_checks([HEALTH], ctx_for(target.base_url, {"staging.example.com"}))
    assert "not in this environment's allowed hosts" in outcome.message
    assert "requests" not in outcome.evidence or outcome.evidence["requests"] == []


class Redirector(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_it_never_follows_a_redirect():
    server = HTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        [outcome] = run_checks([HEALTH], ctx_for(f"http://127.0.0.1:{server.server_port}", {"127.0.0.1"}))
    finally:
        server.shutdown()
    assert outcome.outcome == "failed"
    assert "probes never follow redirects" in outcome.message
    assert outcome.evidence["requests"][0]["redirect_not_followed"] == "http://169.254.169.254/latest/meta-data/"
    assert len(outcome.evidence["requests"]) == 1
