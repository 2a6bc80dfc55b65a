"""The trends page (DevOps, engineers) and the business page (managers). Every role reads both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from runs.models import Environment, Suite
from runs.trends import DEFAULT_DAYS, MAX_RUNS, WINDOWS, TrendFilter, business_data, trends_data

WINDOW_CHOICES = [(str(days), f"Last {days} days") for days in WINDOWS]

T = TypeVar("T")


class WindowForm(forms.Form):
    days = forms.TypedChoiceField(choices=WINDOW_CHOICES, coerce=int, required=False, label="Window")

    def value(self, name: str, default: T) -> T:
        """The cleaned value of ``name``, or ``default`` when missing or invalid."""
        self.is_valid()  # cleaned_data keeps the fields that are valid
        return self.cleaned_data.get(name) or default


class TrendsForm(WindowForm):
    environment = forms.ChoiceField(required=False)
    suite = forms.ChoiceField(required=False)

    field_order = ["environment", "suite", "days"]

    def __init__(self, data: Mapping[str, Any], environments: list[str], suites: list[tuple[str, str]]) -> None:
        super().__init__(data)
        environment, suite = (cast(forms.ChoiceField, self.fields[name]) for name in ("environment", "suite"))
        environment.choices = [("", "All environments")] + [(n, n) for n in environments]
        suite.choices = [("", "All suites")] + suites

    def filters(self) -> TrendFilter:
        return TrendFilter(
            environment=self.value("environment", ""),
            suite=self.value("suite", ""),
            days=self.value("days", DEFAULT_DAYS),
        )


def _initial(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return data if data else {"days": str(DEFAULT_DAYS)}


@login_required
def trends(request: HttpRequest) -> HttpResponse:
    environments = list(Environment.objects.values_list("name", flat=True))
    suites = list(Suite.objects.values_list("name", "title"))
    form = TrendsForm(_initial(request.GET), environments, suites)
    filters = form.filters()
    context = {"form": form, "filters": filters, "max_runs": MAX_RUNS, "time_zone": settings.TIME_ZONE}
    context.update(trends_data(filters))
    return render(request, "dashboard/trends.html", context)


@login_required
def business(request: HttpRequest) -> HttpResponse:
    form = WindowForm(_initial(request.GET))
    days = form.value("days", DEFAULT_DAYS)
    context = {"form": form, "days": days, "time_zone": settings.TIME_ZONE}
    context.update(business_data(days))
    return render(request, "dashboard/business.html", context)
