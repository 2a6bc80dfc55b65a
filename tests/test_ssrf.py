"""Probes reach only what an environment allows: names, resolved addresses, never link-local
or cloud-metadata addresses in any spelling, no redirects."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

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
        ("192.0.0.192", {"192.0.0.192"}, False),  # Oracle Cloud's legacy metadata address
        # The unspecified address connects to loopback: naming it is not naming loopback.
        ("0.0.0.0", {"0.0.0.0"}, False),
        ("::", {"::"}, False),
        ("0.0.0.0", {"localhost"}, True),
        ("::", {"localhost"}, True),
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
        "192.0.0.192",
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


# One rule for probes and webhooks: every spelling of a link-local or metadata address -----

METADATA_HOSTS = [
    "169.254.169.254",
    "2852039166",  # decimal
    "0xa9fea9fe",  # hex
    "0251.0376.0251.0376",  # octal
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",  # short form
    "169.254.169.254.",  # trailing dot
    "100.100.100.200",  # Alibaba
    "168.63.129.16",  # Azure's wire server
    "192.0.0.192",  # Oracle Cloud's legacy one
    "[fe80::1]",
    "[FE80::1%25eth0]",
    "[fd00:ec2::254]",  # AWS over IPv6
    "[::ffff:169.254.169.254]",  # IPv4-mapped
    "[::ffff:a9fe:a9fe]",
    "[::ffff:0:a9fe:a9fe]",  # IPv4-translated
    "[::a9fe:a9fe]",  # IPv4-compatible
    "[::169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64
    "[64:ff9b:1::a9fe:a9fe]",  # local-use NAT64, /96 layout
    "[64:ff9b:1:a9fe:a9:fe00::]",  # local-use NAT64, /48 layout
    "[2002:a9fe:a9fe::1]",  # 6to4
    "[2001:0:4136:e378:8000:63bf:5601:5601]",  # Teredo, client 169.254.169.254
    "metadata.google.internal",
    "METADATA.google.internal.",
]

# Each spelling above as a resolver may answer it: an address, never a name.
METADATA_ANSWERS = [
    "169.254.169.254",
    "100.100.100.200",
    "fe80::1",
    "fd00:ec2::254",
    "::ffff:169.254.169.254",
    "::ffff:0:a9fe:a9fe",
    "::a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a9fe:a9fe",
    "64:ff9b:1:a9fe:a9:fe00::",
    "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:5601:5601",
]


@pytest.fixture
def no_dns(monkeypatch):
    """Tests never resolve a name they did not map themselves."""

    def refuse(host, *args, **kwargs):
        raise AssertionError(f"{host!r} was resolved; it should have been refused first")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def resolver(monkeypatch):
    """Map names to addresses here; anything else is not resolved."""
    names: dict[str, str] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            raise AssertionError(f"{host!r} is not a name this test mapped")
        ip = names[host]
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def metadata_suite():
    from runs.suites import load_suite_text

    return load_suite_text(one_check("      - request: {path: /latest/meta-data/}\n"), "t.yaml")


def run_through_a_worker(base_url: str, allowed_hosts: str = ""):
    """What a run of an environment at ``base_url`` stores, executed as a worker would."""
    from runs.services import create_run
    from runs.tasks import execute_run
    from tests.factories import EnvironmentFactory

    environment = EnvironmentFactory(name="cloud", base_url=base_url, allowed_hosts=allowed_hosts)
    run = create_run(metadata_suite(), environment)
    execute_run.apply(args=[run.pk])
    return run.results.get()


@pytest.mark.django_db
@pytest.mark.parametrize("host", METADATA_HOSTS)
def test_a_run_never_sends_a_request_to_a_metadata_address_in_any_spelling(host, no_dns):
    result = run_through_a_worker(f"http://{host}/latest/meta-data/")
    assert result.outcome == "failed" and result.evidence["failure"]["code"] == "net.not_allowed", result.message
    assert "link-local or cloud-metadata" in result.message
    assert result.evidence["requests"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("answer", METADATA_ANSWERS)
def test_a_run_refuses_an_allowed_name_that_resolves_to_a_metadata_address(answer, resolver):
    resolver["meta.example.test"] = answer
    result = run_through_a_worker("http://meta.example.test/", allowed_hosts=f"meta.example.test,{answer}")
    assert result.evidence["failure"]["code"] == "net.not_allowed", result.message
    assert f"resolved to {answer}, a link-local or cloud-metadata" in result.message
    assert result.evidence["requests"] == []


@pytest.mark.django_db
def test_a_run_refuses_a_public_looking_nat64_address_of_a_private_one(resolver):
    resolver["nat.example.test"] = "64:ff9b::a00:1"  # 10.0.0.1 through NAT64
    result = run_through_a_worker("http://nat.example.test/")
    assert "resolved to 64:ff9b::a00:1, a non-public address" in result.message


@pytest.mark.parametrize("host", METADATA_HOSTS)
def test_a_webhook_url_to_a_metadata_address_is_refused_in_any_spelling(host, no_dns):
    from django.core.exceptions import ValidationError

    from runs.models import validate_webhook_url

    with pytest.raises(ValidationError, match="link-local or cloud-metadata"):
        validate_webhook_url(f"http://{host}/hook")


@pytest.mark.django_db
@pytest.mark.parametrize("host", METADATA_HOSTS)
def test_a_webhook_stored_before_the_rule_is_never_posted_to_a_metadata_address(host, no_dns):
    from runs.tasks import deliver
    from tests.test_alerts import Status, pending_delivery

    delivery = pending_delivery(f"http://{host}/hook")  # rows the admin or older versions stored
    assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and "link-local or cloud-metadata" in delivery.error


@pytest.mark.django_db
@pytest.mark.parametrize("answer", METADATA_ANSWERS)
def test_a_webhook_name_that_resolves_to_a_metadata_address_is_never_posted_to(answer, resolver):
    from runs.tasks import deliver
    from tests.test_alerts import Status, pending_delivery

    resolver["hooks.example.test"] = answer
    delivery = pending_delivery("http://hooks.example.test/hook")
    assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and f"resolves to {answer}, a link-local" in delivery.error


def test_the_setting_lets_webhooks_and_environments_name_a_link_local_receiver(settings):
    from runs.models import validate_probe_url, validate_webhook_url

    settings.GOLDPATH_ALLOW_LINK_LOCAL = True
    settings.GOLDPATH_WEBHOOK_ALLOWED_HOSTS = ["169.254.10.10"]  # not public: named, as for probes
    validate_webhook_url("http://169.254.10.10/hook")
    validate_probe_url("http://169.254.10.10/")


def test_an_environment_url_to_a_metadata_address_is_refused_when_saved(no_dns):
    from django.core.exceptions import ValidationError

    from runs.models import validate_probe_url

    with pytest.raises(ValidationError, match="link-local or cloud-metadata"):
        validate_probe_url("http://[::ffff:a9fe:a9fe]/latest/meta-data/")


# The unspecified address, webhooks on loopback, hosts no connection could use as written ---


@pytest.mark.parametrize("host", ["0.0.0.0", "0", "[::]"])
def test_a_probe_to_the_unspecified_address_is_refused_unless_loopback_is_named(host, target):
    """Issue 14's rerun (F11): http://0.0.0.0:PORT/ reached the bundled target on loopback,
    its allowlist being the URL's own host."""
    outcome = probe(HEALTH, f"http://{host}:{target.port}", allowed={host.strip("[]")})["c"]
    assert outcome.failure["code"] == "net.not_allowed" and "a non-public address" in outcome.message
    assert outcome.evidence["requests"] == []


def test_a_probe_to_0_0_0_0_reaches_loopback_when_the_allowlist_names_localhost(target):
    outcome = probe(HEALTH, f"http://0.0.0.0:{target.port}", allowed={"0.0.0.0", "localhost"})["c"]
    assert outcome.outcome == "passed", outcome.message


NOT_PUBLIC_WEBHOOKS = [
    "http://127.0.0.1:8000/hook",
    "http://[::1]/hook",
    "http://0.0.0.0:9/hook",
    "http://0/hook",
    "http://[::]/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.20/hook",
    "http://2130706433/hook",  # 127.0.0.1 in decimal
]


@pytest.mark.parametrize("url", NOT_PUBLIC_WEBHOOKS)
def test_a_webhook_reaches_public_addresses_only_by_default(url, no_dns):
    from django.core.exceptions import ValidationError

    from runs.models import validate_webhook_url

    with pytest.raises(ValidationError, match="public addresses only.*GOLDPATH_WEBHOOK_ALLOWED_HOSTS"):
        validate_webhook_url(url)


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["localhost"], "http://127.0.0.1:8000/hook"),
        (["localhost"], "http://[::1]/hook"),
        (["localhost"], "http://0.0.0.0:9/hook"),
        (["10.0.0.0/8"], "http://10.0.0.5/hook"),
        (["192.168.1.20"], "http://192.168.1.20/hook"),
    ],
)
def test_the_webhook_allowlist_names_what_else_webhooks_may_reach(allowed, url, settings, no_dns):
    from runs.models import validate_webhook_url

    settings.GOLDPATH_WEBHOOK_ALLOWED_HOSTS = allowed
    validate_webhook_url(url)


def test_the_webhook_allowlist_never_opens_a_metadata_address(settings, no_dns):
    from django.core.exceptions import ValidationError

    from runs.models import validate_webhook_url

    settings.GOLDPATH_WEBHOOK_ALLOWED_HOSTS = ["169.254.0.0/16", "192.0.0.192", "localhost"]
    for host in ("169.254.169.254", "192.0.0.192"):
        with pytest.raises(ValidationError, match="link-local or cloud-metadata"):
            validate_webhook_url(f"http://{host}/hook")


@pytest.mark.django_db
def test_a_webhook_to_a_loopback_receiver_is_never_posted_unless_allowed(settings):
    """A row stored before the rule (or through the admin), delivered to a real receiver."""
    from runs.tasks import deliver
    from tests.test_alerts import Receiver, Status, pending_delivery

    with Receiver() as receiver:
        refused = pending_delivery(receiver.url)
        assert deliver(refused.pk) is None
        refused.refresh_from_db()
        assert refused.status == Status.FAILED and "not a public address" in refused.error
        assert receiver.requests == []

        settings.GOLDPATH_WEBHOOK_ALLOWED_HOSTS = ["localhost"]
        allowed = pending_delivery(receiver.url)
        assert deliver(allowed.pk) is None
        allowed.refresh_from_db()
        assert allowed.status == Status.DELIVERED and len(receiver.requests) == 1


EVENTS = {"on_verdict_change": "on", "enabled": "on"}


@pytest.mark.django_db
def test_a_webhook_name_that_resolves_to_loopback_is_refused_when_saved_and_when_delivered(resolver):
    from dashboard.webhooks import WebhookForm
    from runs.tasks import deliver
    from tests.test_alerts import Status, pending_delivery

    resolver["hooks.example.test"] = "127.0.0.1"
    form = WebhookForm(data={"name": "ops", "url": "http://hooks.example.test/hook", "kind": "generic"} | EVENTS)
    assert not form.is_valid()
    assert "resolves to 127.0.0.1, not a public address" in form.errors["url"][0]
    delivery = pending_delivery("http://hooks.example.test/hook")
    assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and "resolves to 127.0.0.1, not a public address" in delivery.error


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://①⑥⑨.②⑤④.①⑥⑨.②⑤④/", "link-local or cloud-metadata"),
        ("http://169。254。169。254/", "link-local or cloud-metadata"),
        ("http://①⑨②.①⑥⑧.①.①/", "the address 192.168.1.1 written in other characters: write 192.168.1.1"),
        ("http://８.８.８.８/", "the address 8.8.8.8 written in other characters"),
        ("http://fd00:ec2::254/", "an IPv6 address goes in brackets"),
        ("http://example.com:port/", "check the port"),
    ],
)
def test_an_environment_host_no_connection_could_use_as_written_is_refused_when_saved(url, reason, db, no_dns):
    """Issue 14's rerun (F11): these were saved and refused only when a run tried them."""
    from dashboard.environments import EnvironmentForm

    form = EnvironmentForm(data={"name": "odd", "base_url": url, "variables_text": ""})
    assert not form.is_valid()
    assert reason in form.errors["base_url"][0]


def test_an_international_host_name_is_still_a_usable_environment_host(no_dns):
    from runs.models import validate_probe_url

    validate_probe_url("https://bücher.example/")
    validate_probe_url("http://[fd00::1]:8080/")


FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
DOTS = [".", "\u3002", "\uff0e", "\uff61"]  # what IDNA reads as a dot


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=4), st.data())
def test_any_ipv4_address_in_fullwidth_digits_and_idna_dots_is_refused_when_saved(address, data):
    from django.core.exceptions import ValidationError

    from runs.models import validate_probe_url

    digits = "".join(FULLWIDTH[c] if c.isdigit() and data.draw(st.booleans()) else c for c in str(address))
    spelled = "".join(data.draw(st.sampled_from(DOTS)) if c == "." else c for c in digits)
    assume(not spelled.isascii())
    with pytest.raises(ValidationError, match=f"link-local or cloud-metadata|the address {address} written"):
        validate_probe_url(f"http://{spelled}/")
