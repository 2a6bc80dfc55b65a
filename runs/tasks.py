"""Celery task: deliver one webhook alert, retrying with backoff on transient failures."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from probes.base import netloc
from runs.alerts import DELIVER_TASK, MAX_ATTEMPTS, TEST, retry_delay
from runs.models import WebhookDelivery, blocked_address, mask_url

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0
TIME_LIMIT_S = 60
IN_FLIGHT = timedelta(seconds=TIME_LIMIT_S + 10)  # an attempt is over by then, or its worker is gone
DUE_SLACK = timedelta(seconds=5)  # clocks of workers on other machines differ a little
MAX_ERROR_CHARS = 500
MAX_BODY_EXCERPT = 200
USER_AGENT = "Goldpath-Webhook/1"
Status = WebhookDelivery.Status


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    delivered: bool
    retryable: bool = False
    response_code: int | None = None
    error: str = ""
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date; the backoff is used instead


def _excerpt(response: httpx.Response) -> str:
    """The start of a response body, for the log (Slack answers e.g. ``invalid_token``)."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= MAX_BODY_EXCERPT:
            break
    return " ".join(data[:MAX_BODY_EXCERPT].decode("utf-8", "replace").split())


def post_json(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_S) -> Attempt:
    """POST ``payload`` to ``url`` once. The host is resolved here and the connection goes
    to the address checked (Host header and TLS name stay the original), so a DNS answer
    cannot turn the webhook toward a link-local or metadata address. No redirects, no proxy
    from the environment. Errors never contain the URL: it is a secret."""
    masked = mask_url(url)

    def redact(text: str) -> str:
        for secret in (url, pinned, parts.path, parts.query):
            if secret and len(secret) > 1:
                text = text.replace(secret, masked)
        return text[:MAX_ERROR_CHARS]

    parts = urlsplit(url)
    pinned = ""
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return Attempt(False, error="The webhook URL has a bad port; correct it on the Alerts page.")
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return Attempt(False, retryable=True, error=f"DNS failure: cannot resolve {host} ({reason})")
    ip = str(infos[0][4][0])
    if blocked_address(ip):
        return Attempt(False, error=f"Refused: {host} resolves to {ip}, a link-local or metadata address.")
    pinned = parts._replace(netloc=netloc(ip, port)).geturl()
    host_header = netloc(host, port)
    auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            request = client.build_request(
                "POST", pinned, json=payload, headers={"Host": host_header, "User-Agent": USER_AGENT}
            )
            if parts.scheme == "https":
                request.extensions["sni_hostname"] = host
            response = client.send(request, stream=True, auth=auth)
            try:
                body = _excerpt(response)
            finally:
                response.close()
    except (httpx.HTTPError, OSError, SoftTimeLimitExceeded) as exc:
        detail = str(exc) or type(exc).__name__
        return Attempt(False, retryable=True, error=redact(f"{type(exc).__name__}: {detail}"))
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(True, response_code=code)
    error = f"HTTP {code}" + (f": {body}" if body else "")
    if 300 <= code < 400:
        error = f"HTTP {code}: redirects are not followed; give the final URL"
    retryable = code == 429 or code >= 500
    return Attempt(
        False,
        retryable=retryable,
        response_code=code,
        error=redact(error),
        retry_after=_retry_after(response.headers.get("Retry-After")) if retryable else None,
    )


def deliver(delivery_id: int) -> float | None:
    """Make the next attempt at a pending delivery and log it on the row.

    Returns the seconds to wait before trying again, or None when there is nothing more
    to do (delivered, failed for good, gone, or another worker took this attempt). Network
    errors, 5xx and 429 are retried up to MAX_ATTEMPTS; any other answer fails at once.
    """
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Status.PENDING:
        return None
    now = timezone.now()
    if delivery.next_attempt_at > now + DUE_SLACK:
        return None  # an attempt is in flight, or a duplicate message came before the retry is due
    webhook = delivery.webhook
    attempt = delivery.attempts + 1
    claimed = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts)
    if not claimed.update(attempts=attempt, next_attempt_at=now + IN_FLIGHT):
        return None
    pending = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING)
    if not webhook.enabled and delivery.event != TEST:
        pending.update(status=Status.FAILED, error="The webhook was disabled before this alert went out.")
        return None
    result = post_json(webhook.url, delivery.payload)
    where = f"webhook {webhook.pk} ({mask_url(webhook.url)}) delivery {delivery.pk} {delivery.event}"
    if result.delivered:
        pending.update(
            status=Status.DELIVERED, response_code=result.response_code, error="", delivered_at=timezone.now()
        )
        logger.info("%s: delivered on attempt %d (HTTP %s)", where, attempt, result.response_code)
        return None
    if result.retryable and attempt < MAX_ATTEMPTS:
        delay = retry_delay(attempt, result.retry_after)
        pending.update(
            response_code=result.response_code,
            error=result.error,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        logger.warning("%s: attempt %d failed (%s); retrying in %.1f s", where, attempt, result.error, delay)
        return delay
    pending.update(status=Status.FAILED, response_code=result.response_code, error=result.error)
    logger.warning("%s: failed after %d attempt(s): %s", where, attempt, result.error)
    return None


@shared_task(
    name=DELIVER_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=MAX_ATTEMPTS,
    soft_time_limit=TIME_LIMIT_S - 10,
    time_limit=TIME_LIMIT_S,
)
def deliver_webhook(self, delivery_id: int) -> None:
    retry_in = deliver(delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
