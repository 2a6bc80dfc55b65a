"""Fault modes for the reference target.

Each mode reproduces one way a real staging deploy breaks, so every probe
can be shown to catch its failure on loopback before it runs against prod.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODES = (
    "healthy",
    "close-after-send",
    "ws-1011",
    "events-missing",
    "events-out-of-order",
    "slow-agent",
    "auth-reject",
    "latency=MS",
    "http-500=PATH",
)

_FLAGS = {
    "close-after-send": "close_after_send",
    "ws-1011": "ws_1011",
    "events-missing": "events_missing",
    "events-out-of-order": "events_out_of_order",
    "slow-agent": "slow_agent",
    "auth-reject": "auth_reject",
}


@dataclass(frozen=True)
class Faults:
    """The set of active faults; the default instance is a healthy target."""

    close_after_send: bool = False
    ws_1011: bool = False
    events_missing: bool = False
    events_out_of_order: bool = False
    slow_agent: bool = False
    auth_reject: bool = False
    latency_ms: int = 0
    http_500_paths: frozenset[str] = frozenset()

    def specs(self) -> list[str]:
        """The ``--fault`` values that would rebuild this instance."""
        specs = [mode for mode, attr in _FLAGS.items() if getattr(self, attr)]
        if self.latency_ms:
            specs.append(f"latency={self.latency_ms}")
        specs.extend(f"http-500={path}" for path in sorted(self.http_500_paths))
        return specs

    def describe(self) -> str:
        """One line for the startup banner."""
        return ", ".join(self.specs()) or "healthy"

    __str__ = describe


def parse_faults(specs: list[str]) -> Faults:
    """Build :class:`Faults` from repeatable ``--fault`` values.

    Raises ``ValueError`` naming the bad spec, so the command can show it as
    is instead of starting a target that silently ignores a typo.
    """
    flags: dict[str, bool] = {}
    latency_ms = 0
    http_500_paths: set[str] = set()
    for spec in specs:
        mode, _, value = spec.partition("=")
        if spec in _FLAGS:
            flags[_FLAGS[spec]] = True
        elif spec == "healthy":
            pass
        elif mode == "latency" and re.fullmatch(r"[0-9]+", value):
            latency_ms = int(value)
        elif mode == "http-500" and value.startswith("/"):
            http_500_paths.add(value)
        else:
            raise ValueError(f"invalid fault {spec!r}; valid modes: {', '.join(MODES)}")
    if flags.get("close_after_send") and flags.get("ws_1011"):
        raise ValueError("faults 'close-after-send' and 'ws-1011' both close on the first message; pick one")
    return Faults(**flags, latency_ms=latency_ms, http_500_paths=frozenset(http_500_paths))
