"""Notes on runs. Every text a note has had is kept as a NoteRevision with who wrote it, so
the page can show who changed what, and a moderator's edit is recorded as one.

Notes are bounded so that no note can take a page down: a note's text is at most
``NOTE_MAX_CHARS``, a run takes at most ``MAX_NOTES_PER_RUN`` notes, and a note's Markdown
is rendered once, when it is saved (``render_markdown``, linear in its text), into
``Note.html``, which may not exceed ``MAX_NOTE_HTML_CHARS``. The run page shows notes in full
up to ``RUN_PAGE_NOTE_HTML_CHARS`` of HTML and links to the rest; a note's page shows its
newest ``HISTORY_SHOWN`` versions."""

from __future__ import annotations

from datetime import datetime

import nh3
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateformat import format as format_date
from markdown_it import MarkdownIt

from runs.models import NOTE_MAX_CHARS, Note, NoteRevision, Run

MAX_NOTES_PER_RUN = 50
# Five times the longest text: what plain prose, lists, tables and code render to, with room;
# only Markdown that multiplies itself (one long reference link used a thousand times, rows
# padded to a header of thousands of columns) goes past it.
MAX_NOTE_HTML_CHARS = 100_000
RUN_PAGE_NOTE_HTML_CHARS = 120_000
HISTORY_SHOWN = 10

# CommonMark with tables and strikethrough: linear in the text, nesting capped at 20 levels,
# raw HTML shown as text. nh3 then removes anything that could run script.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


class NoteRefused(ValueError):
    """A note that cannot be saved, with what to do about it."""


def render_markdown(text: str) -> str:
    """A note's Markdown as sanitized HTML."""
    return nh3.clean(_MARKDOWN.render(text))


def one_newline(text: str) -> str:
    """Line breaks as one character: a browser sends a textarea's as CR LF, yet its
    maxlength counted each as one, so a note the page let through must fit the limit."""
    return text.replace("\r\n", "\n")


def _checked_html(body: str) -> str:
    """``body`` rendered, or NoteRefused saying which limit it is over."""
    if not body.strip():
        raise NoteRefused("A note needs some text.")
    if len(body) > NOTE_MAX_CHARS:
        raise NoteRefused(
            f"A note is at most {NOTE_MAX_CHARS:,} characters and this one has {len(body):,}: "
            "split it into two notes, or link to a longer write-up."
        )
    html = render_markdown(body)
    if len(html) > MAX_NOTE_HTML_CHARS:
        raise NoteRefused(
            f"This note's Markdown renders to {len(html):,} characters of HTML, more than the "
            f"{MAX_NOTE_HTML_CHARS:,} a note may take (a long reference link used many times, or rows "
            "padded to a very wide table, multiply the text): shorten it."
        )
    return html


def add_note(run: Run, author: User, body: str) -> Note:
    """A new note on ``run``, or NoteRefused (too long, renders too large, or the run has
    ``MAX_NOTES_PER_RUN`` already). The run's row is locked while its notes are counted, so
    two notes racing for the last place cannot both take it."""
    body = one_newline(body)
    html = _checked_html(body)
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=run.pk).values_list("pk").first()
        if run.notes.count() >= MAX_NOTES_PER_RUN:
            raise NoteRefused(
                f"Run #{run.pk} has {MAX_NOTES_PER_RUN} notes, the most a run takes: add to one of them instead."
            )
        note = Note.objects.create(run=run, author=author, body=body, html=html)
        NoteRevision.objects.create(note=note, body=body, editor=author)
    return note


def edit_note(note: Note, editor: User, body: str) -> bool:
    """Make ``body`` the note's text and its newest version (whoever may edit it is the
    caller's decision, ``runs.roles.may_edit_note``). False if the text did not change;
    NoteRefused if it is over a limit."""
    body = one_newline(body)
    if body == note.body:
        return False
    html = _checked_html(body)
    with transaction.atomic():
        note.body, note.html = body, html
        note.save(update_fields=["body", "html", "updated"])
        NoteRevision.objects.create(note=note, body=body, editor=editor, as_moderator=editor.pk != note.author_id)
    return True


def _with_credit(notes: QuerySet[Note]) -> QuerySet[Note]:
    """Notes with what ``credit`` reads: the author, the number of versions and the newest
    one (its editor, not its text) — two queries however often the notes were edited."""
    newest = NoteRevision.objects.select_related("editor").defer("body").order_by("-created", "-id")[:1]
    return (
        notes.select_related("author")
        .annotate(version_count=Count("revisions"))
        .prefetch_related(Prefetch("revisions", newest, to_attr="newest_versions"))
    )


def notes_with_history(run: Run) -> list[Note]:
    """A run's notes, oldest first, ready for ``credit``: what the run page and the exports show."""
    return list(_with_credit(run.notes.all()))


def note_with_history(note_id: int) -> Note | None:
    """One note, ready for ``credit``, with its run."""
    return _with_credit(Note.objects.select_related("run").filter(pk=note_id)).first()


def shown_history(note: Note) -> tuple[list[NoteRevision], int]:
    """A note's newest ``HISTORY_SHOWN`` versions, newest first, and how many older ones
    are not shown: a note edited a thousand times still makes a page of ten."""
    versions = list(note.revisions.select_related("editor").order_by("-created", "-id")[:HISTORY_SHOWN])
    return versions, note.version_count - len(versions)  # type: ignore[attr-defined]  # _with_credit


def on_run_page(notes: list[Note]) -> list[tuple[Note, bool]]:
    """Each note and whether the run page shows it in full: notes in order while their HTML
    adds up to at most ``RUN_PAGE_NOTE_HTML_CHARS`` (the first one always fits), the others
    as a link to their own page — fifty long notes must not make the run page megabytes."""
    shown, total = [], 0
    for note in notes:
        total += len(note.html)
        shown.append((note, total <= RUN_PAGE_NOTE_HTML_CHARS))
    return shown


def credit(note: Note) -> str:
    """Who wrote a note and, once it changed, who changed it last — a moderator's edit must
    not go out under the author's name in a report: "Written by ana · 2026-12-02 10:00 ·
    edited by ops, moderating · 2026-12-02 11:30". Needs ``notes_with_history``'s annotations."""
    text = f"Written by {_name(note.author)} · {_when(note.created)}"
    if note.version_count > 1:  # type: ignore[attr-defined]  # _with_credit's annotation
        latest: NoteRevision = note.newest_versions[0]  # type: ignore[attr-defined]  # _with_credit's to_attr
        moderating = ", moderating" if latest.as_moderator else ""
        text += f" · edited by {_name(latest.editor)}{moderating} · {_when(latest.created)}"
    return text


def _name(user: User | None) -> str:
    return user.get_username() if user else "someone"


def _when(moment: datetime) -> str:
    return format_date(timezone.localtime(moment), "Y-m-d H:i")
