"""Schedules page: DevOps set "SUITE on ENVIRONMENT every N minutes"."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_celery_beat.models import PeriodicTask

from runs import roles
from runs.models import Environment, Suite
from runs.schedules import MIN_EVERY_MINUTES, SCHEDULED_RUN_TASK, schedules, set_schedule


class ScheduleForm(forms.Form):
    suite = forms.ModelChoiceField(
        Suite.objects.filter(origin=Suite.Origin.PROBE),
        help_text="Only probe suites: an imported suite holds uploaded results and has nothing to run.",
    )
    environment = forms.ModelChoiceField(Environment.objects.all())
    every_minutes = forms.IntegerField(
        min_value=MIN_EVERY_MINUTES, max_value=7 * 24 * 60, initial=15, label="Every (minutes)"
    )
    enabled = forms.BooleanField(required=False, initial=True)


@roles.permission_required(roles.CONFIGURE)
def schedules_page(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        set_schedule(data["suite"], data["environment"], data["every_minutes"], data["enabled"])
        messages.success(
            request,
            f"{data['suite'].name} on {data['environment'].name} runs every "
            f"{data['every_minutes']} minutes{'' if data['enabled'] else ' (paused)'}.",
        )
        return redirect("dashboard-schedules")
    return render(request, "dashboard/schedules.html", {"form": form, "schedules": schedules()})


@require_POST
@roles.permission_required(roles.CONFIGURE)
def schedule_delete(request: HttpRequest, schedule_id: int) -> HttpResponse:
    task = get_object_or_404(PeriodicTask, pk=schedule_id, task=SCHEDULED_RUN_TASK)
    task.delete()
    messages.success(request, f"Schedule “{task.name}” removed.")
    return redirect("dashboard-schedules")
