"""Environments page: DevOps set where probes go (URLs, allowed hosts) and the variables
that override the suites' — secrets only as ${env.NAME}, never their values."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from runs import roles
from runs.models import Environment, env_references, validate_variables
from runs.tasks import suite_may_read


def parse_variables(text: str) -> dict[str, object]:
    """``NAME = value`` per line; a JSON number, true/false stays one, anything else is text."""
    variables: dict[str, object] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValidationError(f"Line {number}: write NAME = value.")
        value = value.strip()
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        variables[name.strip()] = parsed if isinstance(parsed, bool | int | float) else value
    validate_variables(variables)
    return variables


def format_variables(variables: dict[str, object]) -> str:
    lines = (f"{name} = {json.dumps(value) if isinstance(value, bool) else value}" for name, value in variables.items())
    return "\n".join(lines)


class EnvironmentForm(forms.ModelForm):
    variables_text = forms.CharField(
        label="Variables",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 6, "placeholder": "client_id = my-client\nclient_secret = ${env.STAGING_SECRET}"}
        ),
        help_text="One NAME = value per line; they override the suites' variables of the same name. "
        "A secret is never written here: name the environment variable that holds it on the workers, "
        "as ${env.NAME}.",
    )

    class Meta:
        model = Environment
        fields = ["name", "base_url", "ws_url", "allowed_hosts"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["name"].disabled = True  # runs, badges and schedules refer to it
            self.fields["variables_text"].initial = format_variables(self.instance.variables)

    def clean_variables_text(self) -> dict[str, object]:
        return parse_variables(self.cleaned_data["variables_text"])

    def save(self, commit: bool = True) -> Environment:
        self.instance.variables = self.cleaned_data["variables_text"]
        return super().save(commit)


@login_required
def environments_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/environments.html",
        {"environments": Environment.objects.all(), "can_configure": roles.can(request.user, roles.CONFIGURE)},
    )


@roles.permission_required(roles.CONFIGURE)
def environment_edit(request: HttpRequest, name: str | None = None) -> HttpResponse:
    environment = get_object_or_404(Environment, name=name) if name else None
    form = EnvironmentForm(request.POST or None, instance=environment)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"Environment {saved.name} saved; new runs use these settings.")
        refused = [name for name in env_references(saved.variables) if not suite_may_read(name)]
        if refused:
            messages.warning(
                request,
                f"Workers configured like this server will not let suites read {', '.join(refused)}: "
                f"add {'them' if len(refused) > 1 else 'it'} to GOLDPATH_SUITE_ENV on the workers "
                f"(now {','.join(settings.GOLDPATH_SUITE_ENV) or 'empty'}), or the checks that need "
                f"{'them' if len(refused) > 1 else 'it'} fail with config.env_refused.",
            )
        return redirect("dashboard-environments")
    return render(request, "dashboard/environment.html", {"form": form, "environment": environment})
