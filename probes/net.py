"""Everything that leaves the process goes through here: which hosts and addresses a probe
(or a webhook) may reach, name resolution pinned to the address that was checked, and the
HTTP client settings every probe shares.

Policy: a URL's host must be in the environment's allowed hosts. Its resolved address must
be public, or named by the allowlist (an address or a network such as 10.0.0.0/8, or
``localhost`` for loopback). Link-local and cloud-metadata addresses are refused in every
spelling (IPv4-mapped, IPv4-compatible, NAT64, 6to4) even when named, unless the policy
says ``allow_link_local``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from probes.failures import StepFailed

# Link-local ranges hold the cloud metadata services (169.254.169.254 on most clouds,
# fd00:ec2::254 on AWS IPv6, 100.100.100.200 on Alibaba).
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(net) for net in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
)
METADATA_HOST_NAMES = frozenset({"metadata.google.internal", "metadata"})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 spelling carries (mapped, compatible, NAT64, 6to4), if any."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in NAT64_PREFIX or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@functools.lru_cache(maxsize=1024)
def parse_address(text: str) -> Address | None:
    """An IP address from a URL host (zone ids and brackets dropped), or None for a name."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def blocked_address(ip: str) -> bool:
    """True for link-local and cloud-metadata addresses, however they are spelled."""
    address = parse_address(ip)
    if address is None:
        return False
    candidates: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)):
        candidates.append(embedded)
    return any(a.is_link_local or any(a in net for net in METADATA_NETWORKS) for a in candidates)


def blocked_host(host: str) -> bool:
    """A host that is a metadata address or a metadata service's well-known name."""
    return blocked_address(host) or host.lower().rstrip(".") in METADATA_HOST_NAMES


def netloc(host: str, port: int | None) -> str:
    """``host[:port]`` for a URL, with IPv6 addresses bracketed."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


@functools.lru_cache(maxsize=256)
def _networks(allowed_hosts: frozenset[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The allowlist's entries that are addresses or networks (the others are host names)."""
    networks = []
    for entry in allowed_hosts:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            continue
    return tuple(networks)


@dataclass(frozen=True)
class NetworkPolicy:
    """Where one environment's probes may connect."""

    allowed_hosts: frozenset[str]
    allow_link_local: bool = False

    def address_allowed(self, ip: str) -> bool:
        address = parse_address(ip)
        if address is None:
            return False
        if blocked_address(ip) and not self.allow_link_local:
            return False
        if any(address in network for network in _networks(self.allowed_hosts)):
            return True
        if address.is_loopback and "localhost" in self.allowed_hosts:
            return True
        return address.is_global

    def check_url(self, url: str) -> tuple[str, int]:
        """The host and port of ``url`` if the allowlist names the host; else StepFailed."""
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError as exc:
            raise StepFailed("net.not_allowed", f"{url!r} is not a usable URL ({exc})", url=url) from None
        if not host or host not in self.allowed_hosts:
            raise StepFailed(
                "net.not_allowed",
                f"host {host!r} is not in this environment's allowed hosts "
                f"({', '.join(sorted(self.allowed_hosts)) or 'none'}); the request was not sent",
                host=host,
            )
        if blocked_host(host) and not self.allow_link_local:
            raise StepFailed(
                "net.not_allowed",
                f"host {host!r} is a link-local or cloud-metadata address; probes never reach those "
                "(GOLDPATH_ALLOW_LINK_LOCAL=1 on the workers allows it)",
                host=host,
            )
        return host, port or default_port(parts.scheme)

    async def resolve(self, host: str, port: int) -> tuple[str, float | None]:
        """Resolve ``host``, check the answer, and time it (the DNS dimension). Connections
        then go to this address, so a second DNS answer cannot send them elsewhere."""
        literal = parse_address(host)
        started = time.perf_counter()
        if literal is not None:
            ip, dns_ms = str(literal), None  # an address needs no lookup: no DNS evidence
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise StepFailed("net.dns", f"DNS failure: cannot resolve {host!r} ({reason})", host=host) from None
            ip = str(infos[0][4][0])
            dns_ms = round((time.perf_counter() - started) * 1000, 3)
        if not self.address_allowed(ip):
            kind = "a link-local or cloud-metadata" if blocked_address(ip) else "a non-public"
            raise StepFailed(
                "net.not_allowed",
                f"{host!r} resolved to {ip}, {kind} address this environment's allowed hosts do not "
                "name; the request was not sent",
                host=host,
                ip=ip,
            )
        return ip, dns_ms


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every probe: building one loads the CA bundle, ~20 ms of CPU
    that would otherwise stall the event loop (and every concurrent check) per client."""
    return httpx.create_ssl_context()


def new_http_client(timeout_s: float) -> httpx.AsyncClient:
    """Redirects are never followed (one could lead outside the allowed hosts); proxies and
    certificates come from Goldpath, not from the worker's environment variables. Bodies are
    asked for uncompressed (a step may ask otherwise): caps then count what is read."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        verify=tls_context(),
        headers={"Accept-Encoding": "identity"},
    )


def network_failure(exc: BaseException) -> StepFailed | None:
    """The StepFailed for a network error a probe can meet, or None if ``exc`` is not one."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == errno.ECONNREFUSED:
            return StepFailed("net.refused", "connection refused: nothing is listening at that address")
        if isinstance(error, ssl.SSLError):
            return StepFailed("net.tls", f"TLS error: {error.reason or error}")
        if isinstance(error, OSError) and error.errno in (errno.ECONNRESET, errno.EPIPE):
            return StepFailed("net.reset", "connection reset by the server")
    text = str(exc)
    if "Connection refused" in text:
        return StepFailed("net.refused", "connection refused: nothing is listening at that address")
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return StepFailed("timeout.connect", "connect timeout: the host did not accept the connection in time")
    if isinstance(exc, httpx.ReadTimeout):
        return StepFailed("timeout.read", "read timeout: the server accepted the request but did not answer in time")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.LocalProtocolError)):
        if "Receive buffer too long" in text:
            return StepFailed("http.protocol", "the response headers are too long (over 64 KiB); stopped reading")
        return StepFailed("http.protocol", f"HTTP protocol error: {text or type(exc).__name__}")
    if isinstance(exc, httpx.TransportError):
        return StepFailed("net.error", f"network error: {text or type(exc).__name__}")
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return StepFailed("ws.handshake_rejected", f"WebSocket handshake failed: {text}")
    if isinstance(exc, WebSocketException):
        return StepFailed("net.error", f"WebSocket error: {text}")
    if isinstance(exc, OSError):
        return StepFailed("net.error", f"network error: {exc.strerror or text or type(exc).__name__}")
    return None
