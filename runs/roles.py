"""Roles are Django groups; what each may do is decided here and nowhere else.

Manager: read every page and export (a login with no role: nothing). DevOps: read, export, start runs, configure
environments, suites, tags and schedules, write notes and moderate anyone's. Engineer: read,
start runs, rerun, write notes (and edit their own).
Superusers may do everything.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from runs.models import Note

MANAGER, DEVOPS, ENGINEER = "Manager", "DevOps", "Engineer"
ROLES = (MANAGER, DEVOPS, ENGINEER)

RUN, RERUN, NOTES, EXPORT, CONFIGURE = "run", "rerun", "notes", "export", "configure"
MODERATE = "moderate notes"
READ = "read"
ALLOWED: dict[str, set[str]] = {
    READ: {MANAGER, DEVOPS, ENGINEER},  # a login with no role reads nothing (pages and API)
    RUN: {ENGINEER, DEVOPS},
    RERUN: {ENGINEER},
    NOTES: {ENGINEER, DEVOPS},
    EXPORT: {DEVOPS, MANAGER},  # exports only read; the brief gives them to DevOps, managers read everything
    CONFIGURE: {DEVOPS},
    MODERATE: {DEVOPS},
}


# The user object keeps its roles under this attribute for as long as it lives (a request).
ROLES_CACHE = "_goldpath_roles"

P = ParamSpec("P")
R = TypeVar("R", bound=HttpResponseBase)


class LoggedInRequest(HttpRequest):
    """What a view behind ``login_required`` or ``permission_required`` is given, as the type
    checker sees it: a request whose user is logged in (Django passes a plain HttpRequest)."""

    user: User


def user_roles(user: User | AnonymousUser) -> set[str]:
    if not user.is_authenticated:
        return set()
    roles: set[str] | None = getattr(user, ROLES_CACHE, None)
    if roles is None:
        roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        setattr(user, ROLES_CACHE, roles)
    return roles


def can(user: User | AnonymousUser, action: str) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user_roles(user) & ALLOWED[action]))


def may_edit_note(user: User | AnonymousUser, note: Note) -> bool:
    """A note's author edits it while their role may write notes; moderators edit any."""
    return (can(user, NOTES) and note.author_id == user.pk) or can(user, MODERATE)


def permission_required(
    action: str,
) -> Callable[[Callable[Concatenate[LoggedInRequest, P], R]], Callable[Concatenate[HttpRequest, P], R]]:
    """Login required, then 403 unless the user's role allows ``action``."""

    def decorator(view: Callable[Concatenate[LoggedInRequest, P], R]) -> Callable[Concatenate[HttpRequest, P], R]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> R:
            if not can(request.user, action):
                raise PermissionDenied(f"Your role may not {action}.")
            return view(cast(LoggedInRequest, request), *args, **kwargs)  # login_required let it in

        return wrapper

    return decorator
