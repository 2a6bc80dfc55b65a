"""What every probe kind shares: the check spec, the outcome, evidence, redaction, the allowlist.

A check is an ``async def check(spec, ctx, evidence) -> str`` that returns a success message
or raises :class:`CheckFailed`. It writes evidence as it goes, so a failure keeps what was
seen before it. The engine owns timing, timeouts, error mapping and redaction.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

REDACTED = "[REDACTED]"
# A JWT anywhere in text: three base64url parts, the first two starting with '{"' encoded.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TEXT_EXCERPT = 500


class CheckFailed(Exception):
    """The service did not behave as the check expects; the message says how."""


class HostNotAllowed(CheckFailed):
    pass


@dataclass(frozen=True)
class CheckSpec:
    """One check as defined in a suite file."""

    id: str
    name: str
    category: str
    kind: str
    impact: tuple[str, ...] = ()
    timeout_s: float = 10.0
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_definition(cls, data: dict[str, Any]) -> CheckSpec:
        known = {"id", "name", "category", "kind", "impact", "timeout_s"}
        return cls(
            id=data["id"],
            name=data["name"],
            category=data["category"],
            kind=data["kind"],
            impact=tuple(data.get("impact", ())),
            timeout_s=float(data.get("timeout_s", 10.0)),
            options={k: v for k, v in data.items() if k not in known},
        )


@dataclass
class MeasuredMetric:
    key: str
    name: str
    unit: str
    target: float
    comparison: str
    samples: list[float]
    p50: float | None
    p95: float | None
    ok: bool | None
    note: str = ""


@dataclass
class CheckOutcome:
    check_id: str
    outcome: str  # passed | failed | error
    duration_s: float
    message: str
    evidence: dict[str, Any]
    started_at: float
    finished_at: float
    metrics: list[MeasuredMetric] = field(default_factory=list)


class Redactor:
    """Removes known secret values and anything shaped like a JWT from stored text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def text(self, value: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            value = value.replace(secret, REDACTED)
        return JWT_PATTERN.sub(REDACTED, value)

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.clean(v) for v in value]
        return value


@dataclass
class ProbeContext:
    """Where and as whom a run's checks connect; shared by the checks of one run."""

    base_url: str
    ws_url: str
    allowed_hosts: set[str]
    client_id: str = ""
    client_secret: str = ""
    token_path: str = "/api/auth/token"
    max_body_bytes: int = 1024 * 1024
    redactor: Redactor = field(default_factory=Redactor)
    _token: str | None = None
    _token_lock: asyncio.Lock | None = None

    def __post_init__(self) -> None:
        self.redactor.add(self.client_secret)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def check_host(self, url: str) -> str:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self.allowed_hosts:
            raise HostNotAllowed(
                f"host {host!r} is not in this environment's allowed hosts "
                f"({', '.join(sorted(self.allowed_hosts)) or 'none'}); the request was not sent"
            )
        return host

    async def token(self) -> str:
        """A bearer token for the run, issued once and shared by every check."""
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            if self._token is None:
                self._token = await issue_token(self, Evidence())
            return self._token


class Evidence(dict):
    """The evidence of one check: plain JSON-able data, appended to as the check goes.

    ``metrics`` holds what a performance check measured; it is stored as Measurements.
    """

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[MeasuredMetric] = []

    def add_request(self, record: dict[str, Any]) -> None:
        self.setdefault("requests", []).append(record)


def address_allowed(ip: str, allowed_hosts: set[str]) -> bool:
    """Public addresses are fine; private, loopback, link-local (cloud metadata) and other
    special ones only when the allowlist names them (an address or a network like
    10.0.0.0/8), or loopback when it names localhost."""
    address = ipaddress.ip_address(ip)
    for entry in allowed_hosts:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name
    if address.is_loopback and "localhost" in allowed_hosts:
        return True
    return address.is_global


async def resolve(host: str, port: int, allowed_hosts: set[str]) -> tuple[str, float | None]:
    """Resolve ``host``, check the answer against the allowlist, and time it (the DNS
    dimension). Connections then go to this address, so a second DNS answer cannot
    send them elsewhere."""
    try:
        literal = str(ipaddress.ip_address(host))
    except ValueError:
        literal = None
    started = time.perf_counter()
    if literal:
        ip = literal  # an address needs no lookup: no DNS evidence to report
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise CheckFailed(f"DNS failure: cannot resolve {host!r} ({exc.strerror})") from exc
        ip = infos[0][4][0]
    if not address_allowed(ip, allowed_hosts):
        raise HostNotAllowed(
            f"{host!r} resolved to {ip}, a non-public address this environment's allowed hosts do not "
            "name; the request was not sent"
        )
    return ip, None if literal else round((time.perf_counter() - started) * 1000, 3)


def netloc(ip: str, port: int | None) -> str:
    """``ip[:port]`` for a URL, with IPv6 addresses bracketed."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port else host


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 3)


async def http_request(
    ctx: ProbeContext,
    evidence: Evidence,
    client: httpx.AsyncClient,
    method: str,
    path_or_url: str,
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
) -> tuple[httpx.Response, bytes]:
    """Send one HTTP request and record its network evidence; return the response and body."""
    url = path_or_url if "://" in path_or_url else ctx.url(path_or_url)
    host = ctx.check_host(url)
    parts = urlsplit(url)
    remote_ip, dns_ms = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80), ctx.allowed_hosts)
    marks: dict[str, float] = {}

    async def trace(event: str, info: dict) -> None:
        marks[event] = time.perf_counter()

    record: dict[str, Any] = {"method": method, "url": url, "remote_ip": remote_ip, "dns_ms": dns_ms}
    evidence.add_request(record)
    started = time.perf_counter()
    # Connect to the address just checked; Host and TLS name stay the original host's.
    pinned = parts._replace(netloc=netloc(remote_ip, parts.port)).geturl()
    request = client.build_request(
        method, pinned, headers={"Host": parts.netloc, **(headers or {})}, json=json, content=content
    )
    request.extensions["trace"] = trace
    request.extensions["sni_hostname"] = host
    record["bytes_out"] = len(request.content) + sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
    response = await client.send(request, stream=True)
    try:
        body = bytearray()
        async for chunk in response.aiter_raw():
            body.extend(chunk)
            if len(body) > ctx.max_body_bytes:
                raise CheckFailed(
                    f"{method} {parts.path} response body exceeds {ctx.max_body_bytes} bytes; stopped reading"
                )
    finally:
        await response.aclose()
    ended = time.perf_counter()
    record.update(
        status=response.status_code,
        connect_ms=_ms(
            marks.get("connection.connect_tcp.started", started),
            marks.get("connection.connect_tcp.complete"),
        ),
        tls_ms=_ms(
            marks.get("connection.start_tls.started", started),
            marks.get("connection.start_tls.complete"),
        ),
        first_byte_ms=_ms(started, marks.get("http11.receive_response_headers.complete")),
        total_ms=_ms(started, ended),
        bytes_in=len(body) + sum(len(k) + len(v) + 4 for k, v in response.headers.raw),
        headers_seen=sorted(response.headers.keys())[:20],
        body_excerpt=bytes(body[:MAX_TEXT_EXCERPT]).decode("utf-8", "replace"),
    )
    if response.is_redirect:
        record["redirect_not_followed"] = response.headers.get("location", "")
    return response, bytes(body)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every probe: building one loads the CA bundle, ~20 ms of CPU
    that would otherwise stall the event loop (and every concurrent check) per client."""
    return httpx.create_ssl_context()


def new_http_client(timeout_s: float) -> httpx.AsyncClient:
    # Redirects are not followed: a redirect could lead outside the allowed hosts.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False, verify=_tls_context()
    )


async def issue_token(ctx: ProbeContext, evidence: Evidence) -> str:
    """Ask the environment's token endpoint for a bearer token with the client credentials."""
    if not ctx.client_secret:
        raise CheckFailed(
            "no client secret available on the worker: set the environment variable named in "
            "the environment's settings (client_secret_env)"
        )
    async with new_http_client(10) as client:
        response, body = await http_request(
            ctx,
            evidence,
            client,
            "POST",
            ctx.token_path,
            json={"client_id": ctx.client_id, "client_secret": ctx.client_secret},
        )
    if response.status_code != 200:
        raise CheckFailed(f"token request rejected: HTTP {response.status_code} from {ctx.token_path}")
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError):
        raise CheckFailed(f"token response from {ctx.token_path} has no access_token") from None
    ctx.redactor.add(token)
    return token


CheckFunction = Callable[[CheckSpec, ProbeContext, Evidence], Awaitable[str]]
