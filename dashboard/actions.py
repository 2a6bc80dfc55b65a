"""Pages that change something: start a run, rerun, write notes. Role-checked, and POST only
but for a note's page, which shows the note and its history beside the form that edits it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.forms import NoteForm, RerunForm, RunNowForm, note_draft_key
from runs import notes, roles, tokens
from runs.models import NOTE_MAX_CHARS, Run, RunStatus
from runs.services import DispatchError, NothingToRerun, NotRunnable, QueueFull, create_rerun, create_run


def _started(request: HttpRequest, run: Run, what: str) -> HttpResponse:
    if run.status == RunStatus.ERROR:
        messages.error(request, run.status_message)
    else:
        messages.success(request, f"{what} queued as run #{run.pk}; this page follows it live.")
    return redirect(run)


@require_POST
@roles.permission_required(roles.RUN)
def run_now(request: roles.LoggedInRequest) -> HttpResponse:
    form = RunNowForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an environment and a suite to run.")
        return redirect("dashboard-overview")
    try:
        run = create_run(
            form.cleaned_data["suite"],
            form.cleaned_data["environment"],
            user=request.user,
            request_key=form.cleaned_data["request_key"],
        )
    except (DispatchError, NotRunnable, QueueFull) as exc:
        messages.error(request, str(exc))
        return redirect("dashboard-overview")
    return _started(request, run, "Run")


@require_POST
@roles.permission_required(roles.RERUN)
def rerun(request: roles.LoggedInRequest, run_id: int) -> HttpResponse:
    parent = get_object_or_404(Run.objects.select_related("suite", "environment", "version"), pk=run_id)
    form = RerunForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(map(str, form.non_field_errors())) or "That rerun request was incomplete.")
        return redirect(parent)
    data = form.cleaned_data
    try:
        child = create_rerun(
            parent,
            data["scope"],
            request.user,
            category_id=data.get("category"),
            test_case_id=data.get("test_case"),
            request_key=data.get("request_key"),
        )
    except NothingToRerun as exc:
        messages.error(request, f"Nothing to rerun: {exc}.")
        return redirect(parent)
    except (DispatchError, NotRunnable, QueueFull) as exc:
        messages.error(request, str(exc))
        return redirect(parent)
    return _started(request, child, f"Rerun ({child.get_scope_display().lower()})")


@require_POST
@roles.permission_required(roles.NOTES)
def add_note(request: roles.LoggedInRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=run_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
    else:
        try:
            notes.add_note(run, request.user, form.cleaned_data["body"])
            messages.success(request, "Note added.")
            return redirect(f"{run.get_absolute_url()}#notes")
        except notes.NoteRefused as exc:
            messages.error(request, str(exc))
    # Refused: the run page offers the text again, so nothing typed is lost.
    request.session[note_draft_key(run.pk)] = request.POST.get("body", "")[: 2 * NOTE_MAX_CHARS]
    return redirect(f"{run.get_absolute_url()}#notes")


@require_http_methods(["GET", "POST"])
@login_required
def edit_note(request: roles.LoggedInRequest, note_id: int) -> HttpResponse:
    """A note's own page: the note, its newest versions, and the form to edit it for who may
    (GET); saving an edit (POST). A refused edit is shown on the page with the text kept."""
    note = notes.note_with_history(note_id)
    if note is None:
        raise Http404("No such note.")
    may_edit = roles.may_edit_note(request.user, note)
    form = NoteForm(initial={"body": note.body})
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied("You may edit only your own notes.")
        form = NoteForm(request.POST)
        if form.is_valid():
            try:
                notes.edit_note(note, request.user, form.cleaned_data["body"])
                messages.success(request, "Note saved.")
                return redirect(f"{note.run.get_absolute_url()}#notes")
            except notes.NoteRefused as exc:
                form.add_error("body", str(exc))
    versions, older = notes.shown_history(note)
    context = {"note": note, "form": form, "may_edit": may_edit, "versions": versions, "older_versions": older}
    return render(request, "runs/note.html", context, status=400 if form.errors else 200)


@require_POST
@login_required
def create_api_token(request: roles.LoggedInRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    if not name:
        messages.error(request, "Give the token a name that says what it is for.")
        return redirect("dashboard-tokens")
    token, plain = tokens.create_token(request.user, name)
    # Rendered, not redirected: the plain token exists only in this response.
    return render(
        request,
        "dashboard/tokens.html",
        {"tokens": request.user.api_tokens.all(), "new_token": plain, "new_token_name": token.name},
    )


@require_POST
@login_required
def revoke_api_token(request: roles.LoggedInRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(request.user.api_tokens, pk=token_id)
    tokens.revoke(token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("dashboard-tokens")
