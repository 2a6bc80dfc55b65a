"""Login with failed attempts limited per user name and per client address."""

import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage


def login_name(group: str, request: HttpRequest) -> str:
    """The account a login attempt is for, as authentication will look it up. Django's login
    form strips the name and NFKC-normalises it (``UsernameField``), so " manager", "manager"
    with a tab after it and a fullwidth "ｍanager" all try the password of "manager" and must
    share its count of failures; case is folded too, so "Manager" cannot start its own."""
    return unicodedata.normalize("NFKC", request.POST.get("username", "").strip()).casefold()


def _limited(request: HttpRequest, increment: bool) -> bool:
    """Whether the account tried (``login_name``) or the address has used up its failures;
    ``increment`` records one more failure for both."""
    limits = [(login_name, settings.LOGIN_RATE), ("ip", settings.LOGIN_RATE_PER_ADDRESS)]
    usages = [  # a list, not a generator: every key is counted when incrementing
        get_usage(request, group="login", key=key, rate=rate, method="POST", increment=increment)
        for key, rate in limits
    ]
    return any(usage and usage["count"] >= usage["limit"] for usage in usages)


class LoginView(auth_views.LoginView):
    """Only failed attempts count, so colleagues behind one address are not locked out by
    each other's successful logins."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _limited(request, increment=False):
            return render(request, "registration/rate_limited.html", {"rate": settings.LOGIN_RATE}, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        _limited(self.request, increment=True)
        return super().form_invalid(form)
