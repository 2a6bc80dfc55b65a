"""Probes reach only what an environment allows: names, resolved addresses, never link-local
or cloud-metadata addresses in any spelling, no redirects."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from probes.net import NetworkPolicy, blocked_address
from tests.engine import one_check, probe

HEALTH = one_check("      - request: {path: /health}\n")


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
        ("169.254.169.254", {"169.254.0.0/16"}, False),  # named, still refused
        ("fd00:ec2::254", {"fd00::/8"}, False),
    ],
)
def test_address_allowlist(ip, allowed, expected):
    assert NetworkPolicy(frozenset(allowed)).address_allowed(ip) is expected


@pytest.mark.parametrize(
    "spelling",
    [
        "169.254.169.254",
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",
        "100.100.100.200",
        "::ffff:169.254.169.254",
        "::a9fe:a9fe",  # IPv4-compatible
        "64:ff9b::a9fe:a9fe",  # NAT64
        "2002:a9fe:a9fe::1",  # 6to4
        "[fe80::1]",
    ],
)
def test_every_spelling_of_a_metadata_address_is_blocked(spelling):
    assert blocked_address(spelling)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "8.8.8.8", "::1", "2001:db8::1", "::ffff:10.0.0.1"])
def test_ordinary_addresses_are_not_blocked(address):
    assert not blocked_address(address)


@pytest.mark.parametrize("host", ["169.254.169.254", "[fd00:ec2::254]", "100.100.100.200", "[::ffff:169.254.169.254]"])
def test_a_probe_refuses_a_metadata_url_even_when_the_allowlist_names_it(host):
    bare = host.strip("[]").lower()
    outcomes = probe(HEALTH, f"http://{host}/latest/meta-data/", allowed={bare})
    outcome = outcomes["c"]
    assert outcome.outcome == "failed" and outcome.failure["code"] == "net.not_allowed"
    assert "link-local or cloud-metadata" in outcome.message
    assert outcome.evidence["requests"] == []


def test_a_setting_allows_link_local_when_a_target_really_lives_there():
    policy = NetworkPolicy(frozenset({"169.254.10.10"}), allow_link_local=True)
    assert policy.address_allowed("169.254.10.10")
    assert policy.check_url("http://169.254.10.10/x") == ("169.254.10.10", 80)


def test_it_refuses_an_allowed_name_that_resolves_to_a_private_address(target):
    name = socket.gethostname()  # /etc/hosts maps it to a loopback address on Debian
    if not socket.gethostbyname(name).startswith("127."):
        pytest.skip("this machine's host name does not resolve to loopback")
    outcome = probe(HEALTH, f"http://{name}:{target.port}", allowed={name.lower()})["c"]
    assert outcome.outcome == "failed" and outcome.failure["code"] == "net.not_allowed"
    assert "non-public address" in outcome.message and "not sent" in outcome.message


def test_it_refuses_hosts_outside_the_allowlist_before_connecting(target):
    outcome = probe(HEALTH, target.base_url, allowed={"staging.example.com"})["c"]
    assert "not in this environment's allowed hosts" in outcome.message
    assert outcome.evidence["requests"] == []


def test_a_websocket_to_a_host_outside_the_allowlist_is_never_opened(target):
    outcome = probe(one_check("      - connect: {url: 'ws://10.9.9.9/ws'}\n"), target.base_url)["c"]
    assert outcome.failure["code"] == "net.not_allowed"
    assert outcome.evidence["connections"] == []


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
        outcome = probe(HEALTH, f"http://127.0.0.1:{server.server_port}")["c"]
    finally:
        server.shutdown()
    assert outcome.outcome == "failed" and outcome.failure["details"]["status"] == 302
    assert "probes never follow redirects" in outcome.message
    assert outcome.evidence["requests"][0]["redirect_not_followed"] == "http://169.254.169.254/latest/meta-data/"
    assert len(outcome.evidence["requests"]) == 1
