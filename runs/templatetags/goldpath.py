import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from probes.suite.model import StepBase
from runs import notes
from runs.analysis.mock import INDICATOR_LABELS
from runs.exporters.markdown_text import safe_markdown
from runs.models import Note

register = template.Library()


class RunDuration(TypedDict):
    """One bar of ``duration_chart``: a run's result for a check."""

    run: int
    duration_s: float
    outcome: str


@register.filter
def note_credit(note: Note) -> str:
    return notes.credit(note)


@register.filter
def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@register.filter
def dollars(value: float | None) -> str:
    return "–" if value is None else f"${value:,.0f}"


@register.filter
def indicator_labels(flags: Iterable[str]) -> str:
    return "; ".join(INDICATOR_LABELS.get(flag, flag) for flag in flags)


@register.filter
def note_html(note: Note) -> str:
    """A note's Markdown as HTML: rendered and sanitized (nh3) when the note was saved."""
    return mark_safe(note.html)  # noqa: S308 - sanitized by runs.notes.render_markdown


@register.filter
def notes_on_run_page(run_notes: list[Note]) -> list[tuple[Note, bool]]:
    """Each note and whether the run page shows it in full (``runs.notes.on_run_page``)."""
    return notes.on_run_page(run_notes)


@register.filter
def md_note(text: str) -> str:
    """A note's Markdown made safe for a Markdown report (``safe_markdown``)."""
    return safe_markdown(text)


@register.simple_tag
def sparkline(values: Sequence[float], width: int = 120, height: int = 28) -> str:
    """An inline SVG line of ``values`` (0..1, oldest first), with the last point marked."""
    if not values:
        return mark_safe('<span class="muted">no runs</span>')  # a constant: nothing to escape
    step = width / max(len(values) - 1, 1)
    points = [(round(i * step, 1), round(height - 2 - v * (height - 4), 1)) for i, v in enumerate(values)]
    line = format_html_join(" ", "{},{}", points)
    last_x, last_y = points[-1]
    label = f"pass rate over the last {len(values)} runs, latest {values[-1] * 100:.0f}%"
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<polyline points="{}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
        '<circle cx="{}" cy="{}" r="2.5" fill="currentColor"/></svg>',
        width,
        height,
        width,
        height,
        label,
        line,
        last_x,
        last_y,
    )


@register.simple_tag
def duration_chart(
    durations: Sequence[RunDuration], limit_s: float | None = None, width: int = 720, height: int = 160
) -> str:
    """Bars of each run's duration (seconds), coloured by outcome, with the check's time
    limit as a dashed line when it fits the scale. Server-side SVG: no script needed."""
    if not durations:
        return ""
    top = max([d["duration_s"] for d in durations] + ([limit_s] if limit_s else [])) or 1
    bar = (width - 40) / len(durations)

    def y(seconds: float) -> float:
        return round(height - 20 - seconds / top * (height - 30), 1)

    bars = format_html_join(
        "",
        '<rect class="bar-{}" x="{}" y="{}" width="{}" height="{}"><title>run #{}: {} s</title></rect>',
        (
            (
                d["outcome"],
                round(36 + i * bar, 1),
                y(d["duration_s"]),
                max(round(bar - 2, 1), 1),
                round(height - 20 - y(d["duration_s"]), 1),
                d["run"],
                f"{d['duration_s']:.3f}",
            )
            for i, d in enumerate(durations)
        ),
    )
    target = ""
    if limit_s:
        target = format_html(
            '<line class="target" x1="36" x2="{}" y1="{}" y2="{}"/><text x="38" y="{}">limit {} s</text>',
            width,
            y(limit_s),
            y(limit_s),
            y(limit_s) - 3,
            limit_s,
        )
    return format_html(
        '<svg class="duration-chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="Duration per run in seconds">{}{}<text x="2" y="12">{} s</text><text x="2" y="{}">0</text></svg>',
        width,
        height,
        width,
        height,
        bars,
        target,
        f"{top:.2f}",
        height - 20,
    )


# HTML's own characters become entities (Python-Markdown does not honour a backslash before
# "<"); Markdown's link, emphasis, code, strikethrough and table syntax get a backslash.
MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"} | {c: "\\" + c for c in "\\`*_[]|~"}
MD_BLOCK_START = ("#", "-", "+")  # a heading or a list, where the text starts a line
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _one_line(value: object) -> str:
    """``value`` on one line, its control characters U+FFFD: a report opened in a terminal
    must not run the escape sequences a test name carries."""
    return CONTROL_CHARACTERS.sub("\ufffd", " ".join(str(value).split()))


@register.filter
def md_cell(value: object) -> str:
    """Text safe anywhere inline in Markdown (a table cell, a list item, a heading): one line,
    with no live HTML, link, image, emphasis or code — test names, messages and suite texts
    come from CI files and from the servers probed, and the report is rendered elsewhere."""
    text = "".join(MD_ESCAPES.get(c, c) for c in _one_line(value))
    return "\\" + text if text.startswith(MD_BLOCK_START) else text


@register.filter
def md_code(value: object) -> str:
    """``value`` as one-line inline code, delimited by one backtick more than its longest run
    of backticks, so nothing in it can close the span and be read as Markdown or HTML."""
    text = _one_line(value)
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""  # CommonMark strips one each side
    return f"{fence}{pad}{text}{pad}{fence}"


@register.filter
def get_item(mapping: object, key: object) -> object:
    """``mapping[key]`` in a template (None when absent)."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def describe_step(step: StepBase) -> str:
    """A few words on what a suite step does (``GET /health``, ``3 on ws``)."""
    return step.kind.describe(step.options)


@register.filter
def shown_steps(evidence: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The steps a reader needs: the first sample's, and those of the sample that failed."""
    steps = (evidence or {}).get("steps") or []
    failed = next((s.get("sample") for s in (evidence or {}).get("samples") or [] if not s.get("ok")), None)
    shown = []
    for step in steps:
        if step.get("sample") in (1, failed):
            prefix = f"step {step.get('step')} {step.get('kind')}: "
            text = step.get("summary") if step.get("ok") else str(step.get("error", "")).removeprefix(prefix)
            shown.append({**step, "text": text})
    return shown
