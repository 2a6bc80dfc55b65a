"""What a check saw, as plain JSON data, redacted and bounded however much the peer sends.

Evidence of one check::

    {"steps":       [{"sample": 1, "step": 1, "kind": "request", "ok": true, "ms": 3.1, …}],
     "requests":    [{"method", "url", "remote_ip", "dns_ms", "connect_ms", "tls_ms",
                      "first_byte_ms", "total_ms", "status", "bytes_out", "bytes_in",
                      "headers_seen", "body_excerpt"}],
     "connections": [{"name", "type": "websocket" | "sse", "url", "handshake_status",
                      "handshake_ms", "frames_in", "frames_out", "bytes_in", "bytes_out",
                      "frames": [{"dir", "ms", "bytes", "text"}], "frames_dropped",
                      "close_code", "close_reason", "close_initiator", "closed_after_send_ms"}],
     "auth":        [{"profile", "type", "cached", "request": {…}}],
     "samples":     [{"sample", "ok", "ms", "marks": {name: ms since the sample began}}],
     "auth_enforced": true,          # a step that expected 401/403 got it
     "failure":     {"code", "step", "kind", "details"},
     "attempts": 1, "dropped": {"requests": 0, …}}

Analysis (``runs.analysis``) reads these keys and nothing that depends on a check's kind.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# A JWT anywhere in text: three base64url parts, the first two starting with '{"' encoded.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MIN_SECRET_CHARS = 4
URL_SAFE = "/!$&'()*+,;=:@~"  # what a URL's path may hold unencoded (RFC 3986)


class Redactor:
    """Removes known secret values, and anything shaped like a JWT, from stored text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []

    def add(self, secret: str | None) -> None:
        """Forget nothing of ``secret``: its URL-encoded spellings (in a query or a path) too."""
        if not secret or len(secret) < MIN_SECRET_CHARS or secret in self._secrets:
            return
        spellings = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret, safe=URL_SAFE)}
        self._secrets |= spellings
        self._ordered = sorted(self._secrets, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._ordered:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return JWT_PATTERN.sub(REDACTED, value) if "eyJ" in value else value

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.clean(v) for v in value]
        return value


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or chatty peer from exhausting a worker or a page."""

    body_bytes: int = 1024 * 1024  # an HTTP response body, read at most
    frame_bytes: int = 1024 * 1024  # one WebSocket frame
    stream_bytes: int = 8 * 1024 * 1024  # a whole SSE stream
    excerpt_chars: int = 500  # of a body kept in evidence
    frame_chars: int = 300  # of a frame kept in evidence
    frames_kept: int = 50  # per connection
    requests_kept: int = 50  # per check
    steps_kept: int = 200  # per check (all samples)
    evidence_bytes: int = 256 * 1024  # the whole evidence of a check, as JSON


DEFAULT_LIMITS = Limits()


@dataclass
class Evidence:
    """Evidence of one check, appended to as it runs, so a failure keeps what came before."""

    limits: Limits = DEFAULT_LIMITS
    steps: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    auth: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    auth_enforced: bool = False
    failure: dict[str, Any] | None = None
    attempts: int = 1

    def _keep(self, items: list[dict[str, Any]], item: dict[str, Any], limit: int, name: str) -> dict[str, Any]:
        if len(items) < limit:
            items.append(item)
        else:
            self.dropped[name] += 1
        return item  # still filled in by the caller, kept or not

    def add_request(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._keep(self.requests, record, self.limits.requests_kept, "requests")

    def add_connection(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._keep(self.connections, record, self.limits.requests_kept, "connections")

    def add_step(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._keep(self.steps, record, self.limits.steps_kept, "steps")

    def as_dict(self, redactor: Redactor) -> dict[str, Any]:
        data: dict[str, Any] = {
            "steps": self.steps,
            "requests": self.requests,
            "connections": self.connections,
        }
        if self.auth:
            data["auth"] = self.auth
        if self.samples:
            data["samples"] = self.samples
        if self.auth_enforced:
            data["auth_enforced"] = True
        if self.failure:
            data["failure"] = self.failure
        if self.attempts > 1:
            data["attempts"] = self.attempts
        if self.dropped:
            data["dropped"] = dict(self.dropped)
        return shrink(redactor.clean(data), self.limits.evidence_bytes)


def record_frame(record: dict[str, Any], direction: str, ms: float, data: str | bytes, limits: Limits) -> None:
    """Count a frame on a connection record and keep its start, up to the frame cap."""
    size = len(data.encode() if isinstance(data, str) else data)
    record[f"frames_{direction}"] += 1
    record[f"bytes_{direction}"] += size
    if len(record["frames"]) < limits.frames_kept:
        text = data if isinstance(data, str) else data[: limits.frame_chars].decode("utf-8", "replace")
        record["frames"].append({"dir": direction, "ms": ms, "bytes": size, "text": text[: limits.frame_chars]})
    else:
        record["frames_dropped"] += 1


def shrink(data: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Cut kept frames, steps and excerpts until the evidence fits ``max_bytes`` as JSON."""
    size = len(json.dumps(data, default=str))
    keep = 20
    while size > max_bytes and keep >= 1:
        for connection in data.get("connections", []):
            frames = connection.get("frames", [])
            if len(frames) > keep:
                connection["frames_dropped"] = connection.get("frames_dropped", 0) + len(frames) - keep
                del frames[keep:]
            for frame in frames:
                frame["text"] = frame.get("text", "")[: keep * 10]
        for request in data.get("requests", []):
            request["body_excerpt"] = request.get("body_excerpt", "")[: keep * 10]
        for name in ("steps", "requests", "connections"):
            items = data.get(name, [])
            if len(items) > keep * 5:
                data.setdefault("dropped", {})[name] = data.get("dropped", {}).get(name, 0) + len(items) - keep * 5
                del items[keep * 5 :]
        data["truncated"] = True
        size = len(json.dumps(data, default=str))
        keep //= 2
    return data
