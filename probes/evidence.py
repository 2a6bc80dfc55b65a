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
CUT = "…"  # ends every text Goldpath cut short (so a cut secret can still be found)
# A JWT anywhere in text: three base64url parts, the first two starting with '{"' encoded.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MIN_SECRET_CHARS = 4
URL_SAFE = "/!$&'()*+,;=:@~"  # what a URL's path may hold unencoded (RFC 3986)


class Redactor:
    """Removes known secret values, and anything shaped like a JWT, from stored text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []
        self._in_json: list[str] = []

    def add(self, secret: str | None) -> None:
        """Forget nothing of ``secret``: its URL-encoded spellings (in a query or a path) too."""
        if not secret or len(secret) < MIN_SECRET_CHARS or secret in self._secrets:
            return
        spellings = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret, safe=URL_SAFE)}
        # As it appears inside JSON text (a body, a frame): escaped quotes, backslashes, controls;
        # and inside JSON text that is itself a string of a JSON document (escaped twice).
        in_json = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        spellings |= in_json | {json.dumps(text)[1:-1] for text in in_json}
        self._secrets |= spellings
        self._ordered = sorted(self._secrets, key=len, reverse=True)
        # How each spelling reads inside JSON text: escaping is character by character, so a
        # string holds a spelling exactly when its JSON text holds the escaped spelling.
        self._in_json = [as_json_text(spelling)[1:-1] for spelling in self._ordered]

    def may_change(self, json_text: str) -> bool:
        """Whether ``clean`` could change the value ``json_text`` (``as_json_text`` of it)
        spells: a secret, a JWT's start or a cut mark is in it. False lets a clean value be
        stored without the walk over every string."""
        if "eyJ" in json_text or (CUT in json_text and self._ordered):
            return True
        return any(spelling in json_text for spelling in self._in_json)

    def text(self, value: str) -> str:
        for secret in self._ordered:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if CUT in value and self._ordered:
            value = self._cut_secrets(value)
        return JWT_PATTERN.sub(REDACTED, value) if "eyJ" in value else value

    def _cut_secrets(self, value: str) -> str:
        """The start of a secret where a text was cut short, just before the cut mark."""
        parts = value.split(CUT)
        for index, part in enumerate(parts[:-1]):
            for secret in self._ordered:
                longest = next(
                    (
                        k
                        for k in range(min(len(secret) - 1, len(part)), MIN_SECRET_CHARS - 1, -1)
                        if part.endswith(secret[:k])
                    ),
                    0,
                )
                if longest:
                    parts[index] = part[:-longest] + REDACTED
                    break
        return CUT.join(parts)

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
    connections_kept: int = 50  # per check
    auth_kept: int = 20  # token uses recorded per check
    samples_kept: int = 100  # per check
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
        return self._keep(self.connections, record, self.limits.connections_kept, "connections")

    def add_auth(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._keep(self.auth, record, self.limits.auth_kept, "auth")

    def add_sample(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._keep(self.samples, record, self.limits.samples_kept, "samples")

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
        text = as_json_text(data)
        if redactor.may_change(text):
            data = redactor.clean(data)
            text = as_json_text(data)
        return shrink(data, self.limits.evidence_bytes, len(text))


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, marked when cut (see Redactor)."""
    return text if len(text) <= limit else text[: limit - 1] + CUT


def record_frame(record: dict[str, Any], direction: str, ms: float, data: str | bytes, limits: Limits) -> None:
    """Count a frame on a connection record and keep its start, up to the frame cap."""
    size = len(data.encode() if isinstance(data, str) else data)
    record[f"frames_{direction}"] += 1
    record[f"bytes_{direction}"] += size
    if len(record["frames"]) < limits.frames_kept:
        text = data if isinstance(data, str) else data[: limits.frame_chars + 1].decode("utf-8", "replace")
        record["frames"].append({"dir": direction, "ms": ms, "bytes": size, "text": cut(text, limits.frame_chars)})
    else:
        record["frames_dropped"] += 1


def as_json_text(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def shrink(data: dict[str, Any], max_bytes: int, size: int) -> dict[str, Any]:
    """Cut kept frames, steps and excerpts until the evidence (``size`` characters as JSON)
    fits ``max_bytes``."""
    keep = 20
    while size > max_bytes and keep >= 1:
        for connection in data.get("connections", []):
            frames = connection.get("frames", [])
            if len(frames) > keep:
                connection["frames_dropped"] = connection.get("frames_dropped", 0) + len(frames) - keep
                del frames[keep:]
            for frame in frames:
                frame["text"] = cut(frame.get("text", ""), keep * 10)
        for request in data.get("requests", []):
            request["body_excerpt"] = cut(request.get("body_excerpt", ""), keep * 10)
        for name in ("steps", "requests", "connections", "auth", "samples"):
            items = data.get(name, [])
            if len(items) > keep * 5:
                data.setdefault("dropped", {})[name] = data.get("dropped", {}).get(name, 0) + len(items) - keep * 5
                del items[keep * 5 :]
        data["truncated"] = True
        size = len(as_json_text(data))
        keep //= 2
    return data
