"""Notes on runs. Every text a note has had is kept as a NoteRevision with who wrote it, so
the page can show who changed what, and a moderator's edit is recorded as one."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

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
