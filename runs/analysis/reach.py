"""Whether a run's probes reached the service at all.

A mistyped URL, a host that does not resolve, nothing listening or a certificate the
probes refuse make every check fail before any response: that says the probe path is
broken (configuration or an outage), not that every feature is. Summaries show such a run
as "could not reach", and count none of its revenue as at risk (it was not assessed).
"""

from __future__ import annotations

from collections.abc import Iterable

from runs.analysis.facts import FAILING, SKIPPED

# The failure classes (rule names of classification.BUILTIN_RULES) a check ends with when
# no response ever came: nothing to resolve, nobody listening, no TLS, no connection
# accepted in time, or a host the environment does not allow.
NO_RESPONSE_CLASSES = frozenset(
    {"dns-failure", "connection-refused", "tls-error", "connect-timeout", "host-not-allowed"}
)


def never_reached(outcomes: Iterable[tuple[str, str]]) -> bool:
    """True when every executed check failed before any response: ``outcomes`` holds each
    result's (outcome, failure class), or each distinct pair, which tells the same. Skipped
    checks say nothing; a run with no executed check is not called unreachable."""
    executed = [(outcome, failure_class) for outcome, failure_class in outcomes if outcome != SKIPPED]
    return bool(executed) and all(
        outcome in FAILING and failure_class in NO_RESPONSE_CLASSES for outcome, failure_class in executed
    )
