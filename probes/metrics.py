"""Metrics: durations between marks, sample by sample, as percentiles against a target.
A metric whose marks were never reached is "not measured: <why>" — never estimated."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from probes.runtime import Mark
from probes.suite.model import SAMPLE_START, Check, Metric


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class MeasuredMetric:
    """``p95`` holds the judged percentile (``percentile``; 95 unless the suite says)."""

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
    percentile: float = 95


@dataclass
class SampleMarks:
    """What one sample reached: its marks, and why it ended early if it did."""

    started: float
    marks: dict[str, Mark] = field(default_factory=dict)
    ended_because: str = ""


def sample_value(metric: Metric, sample: SampleMarks) -> tuple[float | None, str]:
    """The metric in one sample (milliseconds), or None and why it is not measured."""

    def missing(mark: str) -> str:
        return sample.ended_because or f"mark {mark!r} was never reached"

    if metric.of:
        mark = sample.marks.get(metric.of)
        return (round(mark.duration_ms, 3), "") if mark else (None, missing(metric.of))
    assert metric.from_ is not None and metric.to is not None
    if metric.from_ == SAMPLE_START:
        begin: float | None = sample.started
    else:
        begin = sample.marks[metric.from_].ended if metric.from_ in sample.marks else None
    if begin is None:
        return None, missing(metric.from_)
    end = sample.marks.get(metric.to)
    if end is None:
        return None, missing(metric.to)
    return round((end.ended - begin) * 1000, 3), ""


def measure(check: Check, samples: Sequence[SampleMarks]) -> list[MeasuredMetric]:
    measured = []
    for metric in check.metrics:
        values, reasons = [], []
        for sample in samples:
            value, why = sample_value(metric, sample)
            if value is None:
                reasons.append(why)
            else:
                values.append(value)
        if not values:
            note = f"not measured: {reasons[0] if reasons else 'the check ended before its first sample'}"
            measured.append(
                MeasuredMetric(
                    metric.key,
                    metric.name,
                    "ms",
                    metric.target_ms,
                    "lt",
                    [],
                    None,
                    None,
                    None,
                    note[:500],
                    metric.percentile,
                )
            )
            continue
        judged = round(percentile(values, metric.percentile), 3)
        note = ""
        if reasons:
            note = f"measured in {len(values)} of {len(values) + len(reasons)} samples; the others: {reasons[0]}"
        measured.append(
            MeasuredMetric(
                metric.key,
                metric.name,
                "ms",
                metric.target_ms,
                "lt",
                values,
                round(percentile(values, 50), 3),
                judged,
                judged < metric.target_ms,
                note[:500],
                metric.percentile,
            )
        )
    return measured


def percentile_label(q: float) -> str:
    return f"p{q:g}"
