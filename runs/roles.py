"""Roles are Django groups; what each may do is decided here and nowhere else.

Manager: read every page and export (a login with no role: nothing). DevOps: read, export, start runs, configure
environments, suites, tags and schedules, write notes and moderate anyone's. Engineer: read,
start runs, rerun, write notes (and edit their own).
Superusers may do everything.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

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


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    if not hasattr(user, "_goldpath_roles"):
        user._goldpath_roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return user._goldpath_roles


def can(user, action: str) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user_roles(user) & ALLOWED[action]))


def may_edit_note(user, note) -> bool:
    """A note's author edits it while their role may write notes; moderators edit any."""
    return (can(user, NOTES) and note.author_id == user.pk) or can(user, MODERATE)


def permission_required(action: str):
    """Login required, then 403 unless the user's role allows ``action``."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not can(request.user, action):
                raise PermissionDenied(f"Your role may not {action}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
