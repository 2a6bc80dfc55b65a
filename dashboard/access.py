"""A signed-in user with no role sees one page saying so, wherever they go: every page
shows what at least a Manager may read, and an account is not a role."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from runs import roles

# Logging in and out, the admin (its own permissions), the API (403 in JSON, runs/api.py)
# and the badge images (public at their unguessable address).
NOT_PAGES = ("/accounts/", "/admin/", "/api/", "/badge/")


class RoleRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not request.path.startswith(NOT_PAGES) and not roles.can(user, roles.READ):
            return render(request, "registration/no_role.html", {"roles": roles.ROLES}, status=403)
        return self.get_response(request)
