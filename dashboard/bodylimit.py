"""Judge a request's body from its headers, before a byte of it is read.

Django reads a body only when something asks for it (``request.POST``, ``request.FILES``,
the CSRF check), and then spools every file in it to disk first: a 3 GB upload was read in
full before the view could say 403 or 413. This middleware runs before any of that and
answers at once from ``Content-Length``: bodies announced larger than their endpoint
takes get 413, uploads from a user whose role may not upload get 401/403, and bodies with
no length (``Transfer-Encoding: chunked``, which Django would read as empty) get 411.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from runs import roles
from runs.api import request_user, upload_for

# Room for the multipart boundaries and the form fields around an upload's file.
MULTIPART_SLACK = 64 * 1024


def _refuse(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": detail}, status=status)
    else:
        response = HttpResponse(f"{detail}\n", status=status, content_type="text/plain; charset=utf-8")
    response["Connection"] = "close"  # the unread body must not be taken for a next request
    return response


def judge_body(request: HttpRequest) -> HttpResponse | None:
    """The refusal for a body its endpoint would not take, or None to let it through."""
    announced = request.META.get("CONTENT_LENGTH") or ""
    if not announced:
        if request.META.get("HTTP_TRANSFER_ENCODING"):
            return _refuse(request, 411, "send the body with a Content-Length (chunked bodies are not accepted)")
        return None
    try:
        length = int(announced)
    except ValueError:
        return _refuse(request, 400, f"Content-Length {announced[:40]!r} is not a number")
    upload = upload_for(request)
    if upload is None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            return _refuse(request, 413, f"the request body is {length:,} bytes; this page takes at most {limit:,}")
        return None
    user = request_user(request)
    if user is None:
        return _refuse(request, 401, "Unauthorized")
    if not roles.can(user, upload.action):
        return _refuse(request, 403, f"Your role may not {upload.action}.")
    if length > upload.max_bytes + MULTIPART_SLACK:
        return _refuse(request, 413, upload.too_large(length))
    return None


class RequestBodyLimitMiddleware:
    """After authentication (an upload by session needs its user), before everything that
    reads the body: the CSRF check in ``process_view`` and the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return judge_body(request) or self.get_response(request)
