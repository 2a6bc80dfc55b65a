"""Delivery logs kept up to 200 characters of what a receiver answered (``HTTP 500: <its
error page>``) and exceptions' own text (``RemoteProtocolError: illegal status line: …``,
which quotes the receiver too). An error page may hold passwords: keep the status with its
standard phrase, or the exception's class, and nothing the receiver wrote."""

import re
from http import HTTPStatus

from django.db import migrations

ANSWERED = re.compile(r"HTTP (\d{3}): (?!redirects are not followed).*", re.DOTALL)
RAISED = re.compile(r"([A-Z]\w*(?:Error|Timeout|Exceeded)): .*", re.DOTALL)


def without_receiver_text(error: str) -> str:
    if answered := ANSWERED.fullmatch(error):
        code = int(answered[1])
        try:
            return f"HTTP {code} {HTTPStatus(code).phrase}"
        except ValueError:
            return f"HTTP {code}"
    if raised := RAISED.fullmatch(error):
        return raised[1]
    return error


def forward(apps, schema_editor):
    WebhookDelivery = apps.get_model("runs", "WebhookDelivery")
    for delivery in WebhookDelivery.objects.exclude(error="").only("error").iterator():
        cleared = without_receiver_text(delivery.error)
        if cleared != delivery.error:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(error=cleared)


class Migration(migrations.Migration):
    dependencies = [("runs", "0018_suite_definition_key_order")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
