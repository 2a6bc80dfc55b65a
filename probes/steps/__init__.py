"""The step kinds, one module each, registered here and nowhere else."""

from probes.steps import close, connect, expect_close, ping, receive, request, send, sleep, stream
from probes.steps.base import StepDone, StepKind

KINDS: dict[str, StepKind] = {
    module.KIND.name: module.KIND
    for module in (request, stream, connect, send, receive, ping, expect_close, close, sleep)
}

__all__ = ["KINDS", "StepDone", "StepKind"]
