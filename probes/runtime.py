"""What steps see while they run: the run's target (URLs, network policy, variables, auth
tokens) and, per sample of a check, the variables, open connections, marks and evidence."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from probes.evidence import DEFAULT_LIMITS, Evidence, Limits, Redactor
from probes.failures import StepFailed
from probes.net import NetworkPolicy
from probes.templates import Variables, render

if TYPE_CHECKING:
    from probes.auth import AuthSession, Credentials
    from probes.channels import Channel
    from probes.suite.model import Check, Suite


DEFAULT_CONNECTION = "ws"
AnyChannel = TypeVar("AnyChannel", bound="Channel")


def websocket_origin(url: str) -> str:
    """The environment's WebSocket URL as given, or its base URL with ws/wss."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/") if path else base


@dataclass
class RunTarget:
    """Where a run's checks connect and with what; shared by every check of the run.

    ``variables`` are the environment's overrides of the suite's ``vars``; ``environ`` is
    where ``${env.NAME}`` is read (the worker's environment), for the names ``env_readable``
    allows: a suite must not read the worker's own configuration.
    """

    suite: Suite
    base_url: str
    ws_url: str = ""
    policy: NetworkPolicy = field(default_factory=lambda: NetworkPolicy(frozenset()))
    environment: str = ""
    run_id: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    env_readable: Callable[[str], bool] | None = None  # None: any variable (a person trying a file)
    limits: Limits = DEFAULT_LIMITS
    redactor: Redactor = field(default_factory=Redactor)
    auth: AuthSession = field(init=False)

    def __post_init__(self) -> None:
        from probes.auth import AuthSession

        self.ws_url = websocket_origin(self.ws_url or self.base_url)
        self.auth = AuthSession(self)

    @property
    def builtins(self) -> dict[str, str]:
        return {
            "base_url": self.base_url,
            "ws_url": self.ws_url,
            "environment": self.environment,
            "run_id": self.run_id,
        }

    @property
    def suite_vars(self) -> dict[str, Any]:
        return {**self.suite.vars, **{k: v for k, v in self.variables.items() if k in self.suite.vars}}

    def variables_for(self, check_vars: Mapping[str, Any]) -> Variables:
        return Variables(
            check_vars,
            self.suite_vars,
            self.builtins,
            secret=self.redactor.add,
            environ=self.environ,
            env_readable=self.env_readable,
        )

    def http_url(self, path: str | None, url: str | None) -> str:
        return url if url else join_url(self.base_url, path or "")

    def websocket_url(self, path: str | None, url: str | None) -> str:
        if url:
            return url
        parts = urlsplit(self.ws_url)
        return urlunsplit((parts.scheme, parts.netloc, "", "", "")) + "/" + (path or "").lstrip("/")


@dataclass
class Mark:
    started: float
    ended: float
    duration_ms: float


@dataclass
class StepContext:
    """One sample of one check: what its steps share."""

    target: RunTarget
    check: Check
    variables: Variables
    evidence: Evidence
    http: httpx.AsyncClient
    deadline: float  # perf_counter time the check must end by
    sample: int = 1
    step: int = 0
    sample_started: float = field(default_factory=time.perf_counter)
    channels: dict[str, Channel] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)

    @property
    def limits(self) -> Limits:
        return self.target.limits

    def render(self, value: Any) -> Any:
        return render(value, self.variables)

    def mark(self, name: str | None, started: float, ended: float, duration_ms: float | None = None) -> None:
        if name:
            self.marks[name] = Mark(
                started, ended, duration_ms if duration_ms is not None else (ended - started) * 1000
            )

    def ms_since_start(self, at: float | None = None) -> float:
        return round(((at or time.perf_counter()) - self.sample_started) * 1000, 3)

    def channel_name(self, name: str | None) -> str:
        """``on:`` as written, or ``ws``, or the check's only open connection."""
        if name:
            return name
        if DEFAULT_CONNECTION in self.channels or len(self.channels) != 1:
            return DEFAULT_CONNECTION
        return next(iter(self.channels))

    def channel(self, name: str | None, kind: type[AnyChannel]) -> AnyChannel:
        name = self.channel_name(name)
        channel = self.channels.get(name)
        if channel is None:
            raise StepFailed("config.template", f"no open connection named {name!r} (it closed, or never opened)")
        if not isinstance(channel, kind):
            raise StepFailed("config.template", f"connection {name!r} is a {channel.type}, not a {kind.type}")
        return channel

    async def credentials(self, profile: str | None) -> Credentials:
        return await self.target.auth.credentials(profile, self)
