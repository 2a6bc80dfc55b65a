"""Login with failed attempts limited per user name and per client address."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.shortcuts import render
from django_ratelimit.core import is_ratelimited

KEYS = ("post:username", "ip")


def _limited(request, increment: bool) -> bool:
    """Whether either key has used up its failures; ``increment`` records one more."""
    return any(
        [  # a list, not a generator: every key is counted when incrementing
            is_ratelimited(
                request, group="login", key=key, rate=settings.LOGIN_RATE, method="POST", increment=increment
            )
            for key in KEYS
        ]
    )


class LoginView(auth_views.LoginView):
    """Only failed attempts count, so colleagues behind one address are not locked out by
    each other's successful logins."""

    def post(self, request, *args, **kwargs):
        if _limited(request, increment=False):
            return render(request, "registration/rate_limited.html", {"rate": settings.LOGIN_RATE}, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        _limited(self.request, increment=True)
        return super().form_invalid(form)
