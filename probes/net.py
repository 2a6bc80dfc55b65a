"""Everything that leaves the process goes through here: which hosts and addresses a probe
(or a webhook) may reach, name resolution pinned to the address that was checked, and the
HTTP client settings every probe shares.

Policy: a URL's host must be in the environment's allowed hosts. Its resolved address must
be public, or named by the allowlist (an address or a network such as 10.0.0.0/8, or
``localhost`` for loopback, which 0.0.0.0 and :: reach too). Webhooks follow the same address
rule, any public host, with GOLDPATH_WEBHOOK_ALLOWED_HOSTS as their allowlist. Link-local and
cloud-metadata addresses are refused in every spelling (decimal, octal and hex IPv4,
IPv4-mapped, -translated and -compatible, NAT64, 6to4, Teredo) even when named, unless the
policy says ``allow_link_local``: ``refused_host`` is that rule, for probes and webhooks alike.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from probes.failures import StepFailed

# Link-local ranges hold the cloud metadata services (169.254.169.254 on most clouds,
# fd00:ec2::254 on AWS IPv6, 100.100.100.200 on Alibaba); 168.63.129.16 is Azure's wire
# server, a public address that hands a VM its configuration; 192.0.0.192 is Oracle Cloud's
# legacy metadata address (still answered on older instances).
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::254/128",
        "100.100.100.200/32",
        "168.63.129.16/32",
        "192.0.0.192/32",
    )
)
METADATA_HOST_NAMES = frozenset({"metadata.google.internal", "metadata"})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_PREFIX = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: an operator picks the layout
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# What the C resolver reads as IPv4 besides dotted decimal: 2852039166, 0xa9fea9fe, 0251.0376.0251.0376, 169.254.43518.
LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# A connection to the unspecified address (0.0.0.0, ::) reaches this machine's loopback.
LOOPBACK_OF_UNSPECIFIED = {4: ipaddress.ip_address("127.0.0.1"), 6: ipaddress.ip_address("::1")}


def _rfc6052_ipv4(value: int, prefix_len: int) -> ipaddress.IPv4Address:
    """The IPv4 address a NAT64 address with a ``prefix_len`` prefix carries (RFC 6052 §2.2:
    bits 64-71 are skipped)."""
    if prefix_len == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    without_u = (value >> 64) << 56 | value & ((1 << 56) - 1)
    return ipaddress.IPv4Address((without_u >> (88 - prefix_len)) & 0xFFFFFFFF)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 spelling may carry (mapped, translated, compatible, NAT64,
    6to4, Teredo's server and client): a packet to it may end up at any of them."""
    value = int(address)
    found = [a for a in (address.ipv4_mapped, address.sixtofour, *(address.teredo or ())) if a]
    if address in NAT64_PREFIX or address in IPV4_TRANSLATED or (address in IPV4_COMPATIBLE and value > 1):
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in NAT64_LOCAL_PREFIX:
        found.extend(_rfc6052_ipv4(value, length) for length in (48, 56, 64, 96))
    return found


@functools.lru_cache(maxsize=1024)
def parse_address(text: str) -> Address | None:
    """An IP address from a URL host, or None for a name. Brackets, a zone id and a final dot
    are dropped, and the IPv4 forms the resolver accepts (decimal, octal, hex, short) are read
    as it reads them, so a check sees the address a connection would go to."""
    text = text.strip("[]").split("%", 1)[0].removesuffix(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not LEGACY_IPV4.fullmatch(text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _spellings(address: Address) -> list[Address]:
    """``address`` and every IPv4 address it embeds."""
    return [address, *(_embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else ())]


@functools.lru_cache(maxsize=1024)
def blocked_address(ip: str) -> bool:
    """True for link-local and cloud-metadata addresses, however they are spelled."""
    address = parse_address(ip)
    if address is None:
        return False
    return any(a.is_link_local or any(a in net for net in METADATA_NETWORKS) for a in _spellings(address))


def refused_host(host: str, allow_link_local: bool = False) -> bool:
    """The one rule probes and webhooks share: ``host`` (a URL's host, or the address a name
    resolved to) is a link-local or cloud-metadata address in any spelling, or a metadata
    service's well-known name. ``allow_link_local`` (GOLDPATH_ALLOW_LINK_LOCAL) lifts it for
    a target that really lives there; naming the address in an allowlist does not."""
    if allow_link_local:
        return False
    return blocked_address(host) or host.lower().removesuffix(".") in METADATA_HOST_NAMES


def resolver_form(host: str) -> str | None:
    """``host`` as the resolver reads it, or None if it cannot read it. socket.getaddrinfo
    encodes a name with IDNA 2003, whose nameprep turns ①⑥⑨ into 169 and 。 into a dot:
    a check of the host as written would miss the address a connection goes to."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


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
    """Where one environment's probes (or, with GOLDPATH_WEBHOOK_ALLOWED_HOSTS, webhooks)
    may connect."""

    allowed_hosts: frozenset[str]
    allow_link_local: bool = False

    def address_allowed(self, ip: str) -> bool:
        """Public, or named by the allowlist (an address, a network, ``localhost`` for
        loopback), and never link-local or metadata. 0.0.0.0 and :: count as the loopback
        address they connect to: naming them (or a base URL that does) is not naming loopback."""
        address = parse_address(ip)
        if address is None or refused_host(ip, self.allow_link_local):
            return False
        if address.is_unspecified:
            address = LOOPBACK_OF_UNSPECIFIED[address.version]
        if any(address in network for network in _networks(self.allowed_hosts)):
            return True
        if address.is_loopback and "localhost" in self.allowed_hosts:
            return True
        return all(a.is_global for a in _spellings(address))  # 64:ff9b::a00:1 is 10.0.0.1

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
        if refused_host(host, self.allow_link_local):
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
            kind = "a link-local or cloud-metadata" if refused_host(ip, self.allow_link_local) else "a non-public"
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
