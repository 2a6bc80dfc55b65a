"""Notes on runs. Every text a note has had is kept as a NoteRevision with who wrote it, so
the page can show who changed what, and a moderator's edit is recorded as one."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.dateformat import format as format_date

from runs.models import Note, NoteRevision, Run


def add_note(run: Run, author: User, body: str) -> Note:
    with transaction.atomic():
        note = Note.objects.create(run=run, author=author, body=body)
        NoteRevision.objects.create(note=note, body=body, editor=author)
    return note


def edit_note(note: Note, editor: User, body: str) -> bool:
    """Make ``body`` the note's text and its newest version (whoever may edit it is the
    caller's decision, ``runs.roles.may_edit_note``). False if the text did not change."""
    if body == note.body:
        return False
    with transaction.atomic():
        note.body = body
        note.save(update_fields=["body", "updated"])
        NoteRevision.objects.create(note=note, body=body, editor=editor, as_moderator=editor.pk != note.author_id)
    return True


def notes_with_history(run: Run) -> list[Note]:
    """A run's notes with their authors and versions (``note.history``, oldest first), in
    three queries: what the run page and the exports show, and ``credit`` reads."""
    versions = Prefetch("revisions", NoteRevision.objects.select_related("editor"), to_attr="history")
    return list(run.notes.select_related("author").prefetch_related(versions))


def credit(note: Note) -> str:
    """Who wrote a note and, once it changed, who changed it last — a moderator's edit must
    not go out under the author's name in a report: "Written by ana · 2026-12-02 10:00 ·
    edited by ops, moderating · 2026-12-02 11:30". Needs ``notes_with_history``'s prefetch."""
    text = f"Written by {_name(note.author)} · {_when(note.created)}"
    versions: list[NoteRevision] = note.history  # type: ignore[attr-defined]  # notes_with_history's to_attr
    if len(versions) > 1:
        latest = versions[-1]
        moderating = ", moderating" if latest.as_moderator else ""
        text += f" · edited by {_name(latest.editor)}{moderating} · {_when(latest.created)}"
    return text


def _name(user: User | None) -> str:
    return user.get_username() if user else "someone"


def _when(moment: datetime) -> str:
    return format_date(timezone.localtime(moment), "Y-m-d H:i")
