"""Alerts page: webhooks and their delivery log. DevOps only.

A webhook URL is a secret (Slack's carry their token): no page ever sends it back, the
edit form leaves it blank (blank keeps it) and lists show ``Webhook.masked_url``.
"""

from __future__ import annotations

import socket
from typing import Any, cast
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from probes.net import refused_host
from runs import alerts, roles
from runs.models import WEBHOOK_ALLOWLIST_HINT, Webhook, WebhookDelivery, validate_webhook_url, webhook_policy

DELIVERIES_PER_PAGE = 25


def resolved_blocked_address(url: str) -> str | None:
    """An address the URL's host resolves to that webhooks may not reach (link-local,
    metadata, or not public and not named by GOLDPATH_WEBHOOK_ALLOWED_HOSTS), if any. A
    host that does not resolve here is let through: the delivery checks again before sending."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    policy = webhook_policy()
    return next((ip for ip in (str(info[4][0]) for info in infos) if not policy.address_allowed(ip)), None)


class WebhookForm(forms.ModelForm):
    url = forms.CharField(
        label="URL",
        max_length=1000,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "https://hooks.slack.com/services/…"}
        ),
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "kind", "environment", "suite", "on_verdict_change", "on_mrr_rise", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.pop("url", None)  # never rendered back into the page
        cast(forms.ModelChoiceField, self.fields["environment"]).empty_label = "Every environment"
        cast(forms.ModelChoiceField, self.fields["suite"]).empty_label = "Every suite"
        if self.instance.pk:
            url = self.fields["url"]
            url.required = False
            url.widget.attrs["placeholder"] = self.instance.masked_url
            url.help_text = f"Now {self.instance.masked_url}. Leave blank to keep it; type a new URL to replace it."

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if not url and self.instance.pk:
            return self.instance.url
        validate_webhook_url(url)
        if address := resolved_blocked_address(url):
            host = urlsplit(url).hostname
            if refused_host(address, settings.GOLDPATH_ALLOW_LINK_LOCAL):
                raise forms.ValidationError(
                    f"{host} resolves to {address}, a link-local or cloud-metadata address; "
                    "webhooks may not target those."
                )
            raise forms.ValidationError(f"{host} resolves to {address}, not a public address. {WEBHOOK_ALLOWLIST_HINT}")
        return url

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("on_verdict_change") and not data.get("on_mrr_rise"):
            raise forms.ValidationError("Choose at least one event to alert on.")
        return data


@roles.permission_required(roles.CONFIGURE)
def webhooks(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        webhook = form.save()
        messages.success(request, f"Webhook “{webhook.name}” saved. Send a test to check it.")
        return redirect("dashboard-webhook", webhook_id=webhook.pk)
    hooks = Webhook.objects.select_related("environment", "suite").annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)),
        last_sent=Max("deliveries__created"),
    )
    return render(request, "dashboard/webhooks.html", {"webhooks": hooks, "form": form})


@roles.permission_required(roles.CONFIGURE)
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(Webhook.objects.select_related("environment", "suite"), pk=webhook_id)
    form = WebhookForm(request.POST or None, instance=webhook)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Webhook “{webhook.name}” saved.")
        return redirect("dashboard-webhook", webhook_id=webhook.pk)
    deliveries = webhook.deliveries.select_related("run")
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/webhook.html", {"webhook": webhook, "form": form, "page": page})


@require_POST
@roles.permission_required(roles.CONFIGURE)
def webhook_action(request: HttpRequest, webhook_id: int, action: str) -> HttpResponse:
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    if action == "test":
        delivery = alerts.send_test(webhook)
        messages.success(request, f"Test alert queued (delivery #{delivery.pk}); its result appears in the log below.")
        return redirect("dashboard-webhook", webhook_id=webhook.pk)
    if action == "delete":
        if not request.POST.get("confirm"):
            messages.error(request, "Tick the box to confirm the deletion.")
            return redirect("dashboard-webhook", webhook_id=webhook.pk)
        webhook.delete()
        messages.success(request, f"Webhook “{webhook.name}” and its delivery log deleted.")
        return redirect("dashboard-webhooks")
    raise Http404(f"Unknown webhook action {action!r}.")
