"""API tokens: ``gp_<prefix>_<secret>``; the secret is stored only as a SHA-256 digest.

The secret is 256 random bits, so a fast hash is enough (no dictionary to attack); the
prefix finds the row without scanning, and the digest is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from runs.models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per token per minute


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; the plain text is returned once and never stored."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=prefix, secret_hash=_digest(secret))
    return token, f"gp_{prefix}_{secret}"


def authenticate(raw: str) -> User | None:
    """The active user behind a token string, or None."""
    try:
        marker, prefix, secret = raw.split("_", 2)
    except ValueError:
        return None
    if marker != "gp":
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix, revoked__isnull=True).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)) or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used is None or now - token.last_used > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user


def revoke(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=timezone.now())
