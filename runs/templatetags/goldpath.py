import json

from django import template

from runs.analysis.mock import INDICATOR_LABELS

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def percent(value) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


@register.filter
def dollars(value) -> str:
    return "–" if value is None else f"${value:,.0f}"


@register.filter
def indicator_labels(flags) -> str:
    return "; ".join(INDICATOR_LABELS.get(flag, flag) for flag in flags)
