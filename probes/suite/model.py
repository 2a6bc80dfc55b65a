"""The suite format (version 2) as typed models. Unknown keys are errors; the JSON Schema
editors use (``manage.py suite_schema``) is generated from these models."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, Tag, create_model, model_validator

from probes.auth import AuthProfile
from probes.steps import KINDS
from probes.suite.fields import Seconds, Strict, VarName, refusals_only

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
CHECK_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
SAMPLE_START = "start"


class Category(Strict):
    name: str = Field(min_length=1, max_length=100)
    critical: bool = Field(False, description="a failing check here makes the run FAIL")
    description: str = ""


class ImpactTag(Strict):
    """A business capability and the monthly recurring revenue that depends on it."""

    name: str = Field(min_length=1, max_length=100)
    mrr: int = Field(ge=0, le=2**31 - 1)
    severity: Literal["high", "medium", "low"] = "medium"
    description: str = ""


class Verdict(Strict):
    min_pass_rate: float = Field(0.5, ge=0, le=1, description="below this share of passing checks a run is FAIL")


class CriticalMetric(Strict):
    """A line of the report's "critical metrics" block: what it counts, over which checks."""

    name: str = Field(min_length=1, max_length=200)
    count: Literal["checks", "requests", "measurements"] = "checks"
    checks: list[str] = Field(default_factory=list)


def metric_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:100] or "metric"


class Metric(Strict):
    """``of: MARK`` (the marked step's duration) or ``from: MARK to: MARK`` (the time between
    them; ``from: start`` is the beginning of a sample), judged at a percentile over samples."""

    name: str = Field(min_length=1, max_length=200)
    of: str | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    target_ms: float = Field(gt=0)
    percentile: float = Field(95, gt=0, le=100)

    @model_validator(mode="after")
    def _one_way_to_measure(self) -> Metric:
        if (self.of is None) == (self.from_ is None and self.to is None) or ((self.from_ is None) != (self.to is None)):
            raise ValueError("give either of: MARK, or both from: MARK and to: MARK")
        return self

    @property
    def key(self) -> str:
        return metric_key(self.name)

    @property
    def marks(self) -> list[str]:
        return [m for m in (self.of, self.from_, self.to) if m and m != SAMPLE_START]


class StepBase(Strict):
    KIND: ClassVar[str] = ""

    mark: str | None = Field(None, description="name this step's time for metrics")
    optional: bool = Field(False, description="a failure ends the sample without failing the check")
    always: bool = Field(False, description="run even after a failure (teardown)")

    @property
    def options(self) -> Any:
        return getattr(self, self.KIND)

    @property
    def kind(self) -> Any:
        return KINDS[self.KIND]


def _step_model(name: str) -> type[StepBase]:
    kind = KINDS[name]
    fields: dict[str, Any] = {name: (kind.options, ...)}
    fields.update({key: (annotation | None, None) for key, annotation in kind.siblings.items()})
    model = create_model(f"{name.title().replace('_', '')}Step", __base__=StepBase, **fields)
    model.KIND = name
    return model


STEP_MODELS = {name: _step_model(name) for name in KINDS}


def step_kind_of(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [name for name in KINDS if name in value]
        if len(present) == 1:
            return present[0]
    return None


if TYPE_CHECKING:
    Step = StepBase  # what every step model is, for the type checker
else:
    Step = Annotated[
        Union[tuple(Annotated[model, Tag(name)] for name, model in STEP_MODELS.items())],  # type: ignore[valid-type]  # noqa: UP007
        Discriminator(
            step_kind_of,
            custom_error_type="step_kind",
            custom_error_message=f"a step is a mapping with exactly one of: {', '.join(KINDS)}",
        ),
    ]


class Check(Strict):
    id: str = Field(pattern=CHECK_ID, max_length=200, description="stable: history, flakiness and reruns key on it")
    name: str = Field(min_length=1, max_length=300)
    category: str
    impact: list[str] = Field(default_factory=list)
    description: str = ""
    timeout_s: Seconds = Field(10.0, description="each attempt, all samples")
    repeat: int = Field(1, ge=1, le=1000, description="samples; metrics are percentiles over them")
    retries: int = Field(0, ge=0, le=10, description="a check that passes on a retry is recorded as flaky")
    vars: dict[VarName, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    metrics: list[Metric] = Field(default_factory=list)

    def declares(self) -> list[str]:
        """The evidence its steps can show: ``http``, ``ws``, ``sse``, and ``auth`` when a
        step expects the service to refuse credentials (401/403)."""
        found = {step.kind.declares for step in self.steps if step.kind.declares}
        for step in self.steps:
            options = step.options
            expect = getattr(step, "expect", None) or getattr(options, "expect", None)
            if refusals_only(getattr(expect, "status", None)):
                found.add("auth")
        return sorted(found)

    def marks(self) -> list[str]:
        names = [step.mark for step in self.steps if step.mark]
        for step in self.steps:
            if step.KIND == "receive":
                names += [item.mark for item in step.options.sequence if item.mark]
        return names


class Suite(Strict):
    name: str = Field(pattern=SLUG, max_length=64, description="unique per installation")
    title: str | None = Field(None, max_length=200)
    description: str = ""
    vars: dict[VarName, Any] = Field(default_factory=dict)
    auth: dict[str, AuthProfile] = Field(default_factory=dict)
    verdict: Verdict = Field(default_factory=Verdict)
    impact_tags: list[ImpactTag] = Field(default_factory=list)
    categories: list[Category] = Field(min_length=1)
    critical_metrics: list[CriticalMetric] = Field(default_factory=list)
    checks: list[Check] = Field(min_length=1)

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)
