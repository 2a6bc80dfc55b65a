from django.http import HttpRequest

from runs import roles


def goldpath_roles(request: HttpRequest) -> dict[str, dict[str, bool]]:
    """What the current user's role allows, so templates show only usable buttons."""
    return {"perms_goldpath": {action: roles.can(request.user, action) for action in roles.ALLOWED}}
