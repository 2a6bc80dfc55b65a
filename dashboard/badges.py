"""Status badges: an SVG per environment and suite, public only through its unguessable key."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from runs import roles
from runs.models import Badge, Environment, Suite, new_badge_key
from runs.state import latest_states

# By standing (runs.analysis.standing): a pass in doubt is amber, not green; a service the
# probes never reached is grey (an outage of the probe path, not every feature broken).
COLORS = {
    "pass": "#2e7d32",
    "pass-mocked": "#946200",
    "partial-success": "#b26a00",
    "fail": "#c62828",
    "unreachable": "#5f6b7a",
}
CHAR_WIDTH = 6.5  # Verdana 11px, close enough for a badge


def badge_svg(request: HttpRequest, key: str) -> HttpResponse:
    badge = Badge.objects.select_related("environment", "suite").filter(key=key).first()
    if badge is None:
        raise Http404("No such badge.")
    state = latest_states(environment=badge.environment, suite=badge.suite).get((badge.environment.pk, badge.suite.pk))
    label = f"{badge.suite.name} · {badge.environment.name}"
    if state is None:
        message, color = "no runs", "#9e9e9e"
    elif not state.standing.reached:
        message, color = "could not reach", COLORS["unreachable"]
    else:
        latest = state.run
        rate = f" {latest.passed * 100 // latest.total}%" if latest.total else ""
        imported = " (imported)" if latest.is_imported else ""  # CI's results, not Goldpath's probes
        message, color = f"{state.standing.label}{rate}{imported}", COLORS.get(state.standing.key, "#9e9e9e")
    label_width, message_width = int(len(label) * CHAR_WIDTH) + 10, int(len(message) * CHAR_WIDTH) + 10
    svg = render_to_string(
        "badge.svg",
        {
            "label": label,
            "message": message,
            "color": color,
            "label_width": label_width,
            "message_width": message_width,
            "width": label_width + message_width,
            "label_x": label_width / 2,
            "message_x": label_width + message_width / 2,
        },
    )
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "no-cache, max-age=60"
    return response


@roles.permission_required(roles.CONFIGURE)
def badge_settings(request: HttpRequest, environment: str, suite: str) -> HttpResponse:
    badge, _ = Badge.objects.get_or_create(
        environment=get_object_or_404(Environment, name=environment), suite=get_object_or_404(Suite, name=suite)
    )
    return render(request, "dashboard/badge.html", {"badge": badge})


@require_POST
@roles.permission_required(roles.CONFIGURE)
def badge_rotate(request: HttpRequest, badge_id: int) -> HttpResponse:
    badge = get_object_or_404(Badge, pk=badge_id)
    badge.key = new_badge_key()
    badge.save(update_fields=["key"])
    messages.success(request, "New badge address made; the old one no longer works.")
    return redirect("dashboard-badge", environment=badge.environment.name, suite=badge.suite.name)
