"""Notes on a run: authors edit their own, DevOps may moderate (and the page says so), every
version is kept and the note's page shows the newest; and notes are bounded, so that no note
can take the run page down (issue 14 F3: one 1.2 MB note timed the page out for good)."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from runs import notes
from runs.models import NOTE_MAX_CHARS, Note, NoteRevision, RunStatus
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(name: str, role: str) -> Client:
    user = UserFactory(username=name, password=None)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def run():
    return RunFactory(status=RunStatus.FINISHED, verdict="FAIL")


@pytest.fixture
def alice(run) -> Client:
    """An engineer with a note on the run."""
    client = member("alice", "Engineer")
    client.post(f"/runs/{run.pk}/notes/", {"body": "Root cause: the **gateway** closes idle sockets."})
    return client


def note() -> Note:
    return Note.objects.get()


def test_an_author_edits_their_own_note_and_its_page_keeps_every_version(run, alice):
    assert alice.post(f"/notes/{note().pk}/", {"body": "Root cause: the agent never starts."}).status_code == 302
    run_page = alice.get(f"/runs/{run.pk}/").content.decode()
    assert "Root cause: the agent never starts." in run_page
    assert f'<a href="/notes/{note().pk}/">edit, history (2 versions)</a>' in run_page
    page = alice.get(f"/notes/{note().pk}/").content.decode()
    assert "History (2 versions)" in page and f'action="/notes/{note().pk}/"' in page
    assert "Root cause: the **gateway** closes idle sockets." in page  # the first version, as written
    assert [(r.editor.username, r.as_moderator) for r in note().revisions.all()] == [("alice", False)] * 2


def test_another_engineer_may_not_edit_someone_elses_note(run, alice):
    bob = member("bob", "Engineer")
    response = bob.post(f"/notes/{note().pk}/", {"body": "Root cause: alice was wrong."})
    assert response.status_code == 403
    assert note().body == "Root cause: the **gateway** closes idle sockets."
    assert note().revisions.count() == 1
    assert f'<a href="/notes/{note().pk}/">history (1 version)</a>' in bob.get(f"/runs/{run.pk}/").content.decode()
    assert f'action="/notes/{note().pk}/"' not in bob.get(f"/notes/{note().pk}/").content.decode()


def test_a_manager_may_not_edit_a_note(run, alice):
    assert member("mia", "Manager").post(f"/notes/{note().pk}/", {"body": "x"}).status_code == 403
    assert note().revisions.count() == 1


def test_devops_moderate_a_note_and_the_page_says_who_changed_what(run, alice):
    devops = member("dana", "DevOps")
    assert f'action="/notes/{note().pk}/"' in devops.get(f"/notes/{note().pk}/").content.decode()
    assert devops.post(f"/notes/{note().pk}/", {"body": "Root cause: [removed: a customer's name]"}).status_code == 302
    page = alice.get(f"/runs/{run.pk}/").content.decode()
    assert "Written by alice" in page
    assert "edited by dana, moderating" in page
    latest = note().revisions.last()
    assert (latest.editor.username, latest.as_moderator) == ("dana", True)


def test_exports_credit_a_moderated_note_to_its_author_and_its_moderator(run, alice):
    devops = member("dana", "DevOps")
    devops.post(f"/notes/{note().pk}/", {"body": "Root cause: [removed]"})
    for fmt in ("md", "html"):
        report = devops.get(f"/runs/{run.pk}/export/{fmt}/").content.decode()
        assert "Root cause: [removed]" in report
        assert "Written by alice" in report and "edited by dana, moderating" in report, fmt


def test_an_edit_that_changes_nothing_adds_no_version(run, alice):
    alice.post(f"/notes/{note().pk}/", {"body": note().body})
    assert note().revisions.count() == 1


# --- limits ---------------------------------------------------------------------------------


def flashes(response) -> list[str]:
    """The messages the request added (after the fixture's "Note added.", never shown)."""
    return [message.message for message in response.context["messages"] if message.message != "Note added."]


def test_a_note_at_the_length_limit_is_added_and_one_character_more_is_refused_with_the_limit(run, alice):
    page = alice.get(f"/runs/{run.pk}/").content.decode()
    assert f'maxlength="{NOTE_MAX_CHARS}"' in page and "At most 20,000 characters; a run takes up to 50 notes." in page
    assert alice.post(f"/runs/{run.pk}/notes/", {"body": "x" * NOTE_MAX_CHARS}).status_code == 302
    refused = alice.post(f"/runs/{run.pk}/notes/", {"body": "x" * (NOTE_MAX_CHARS + 1)}, follow=True)
    assert flashes(refused) == ["Ensure this value has at most 20000 characters (it has 20001)."]
    assert [len(n.body) for n in Note.objects.all()] == [48, NOTE_MAX_CHARS]


def test_the_service_itself_refuses_an_over_long_note_for_every_caller(run):
    author = UserFactory(password=None)
    with pytest.raises(notes.NoteRefused, match="^A note is at most 20,000 characters and this one has 20,001"):
        notes.add_note(run, author, "x" * (NOTE_MAX_CHARS + 1))
    note = notes.add_note(run, author, "Root cause: DNS.")
    with pytest.raises(notes.NoteRefused, match="at most 20,000 characters"):
        notes.edit_note(note, author, "y" * (NOTE_MAX_CHARS + 1))
    with pytest.raises(notes.NoteRefused, match="needs some text"):
        notes.add_note(run, author, " \n ")
    assert Note.objects.get().body == "Root cause: DNS." and NoteRevision.objects.count() == 1


def test_markdown_that_multiplies_itself_is_refused_when_saved(run, alice):
    """One 2,000-character reference link used 5,990 times: 20 KB of text, 6 MB of HTML."""
    body = "[a]: http://" + "x" * 2000 + "\n\n" + "[a]" * 5990
    assert len(body) <= NOTE_MAX_CHARS
    refused = alice.post(f"/runs/{run.pk}/notes/", {"body": body}, follow=True)
    [message] = flashes(refused)
    assert message.startswith("This note's Markdown renders to 6,1")
    assert "characters of HTML, more than the 100,000 a note may take" in message
    assert Note.objects.count() == 1


def test_a_run_takes_fifty_notes_and_then_says_so(run, alice):
    author = Note.objects.get().author
    for i in range(notes.MAX_NOTES_PER_RUN - 1):
        notes.add_note(run, author, f"Finding {i}")
    page = alice.get(f"/runs/{run.pk}/").content.decode()
    assert "This run has 50 notes, the most a run takes: add to one of them instead." in page
    assert f'action="/runs/{run.pk}/notes/"' not in page
    refused = alice.post(f"/runs/{run.pk}/notes/", {"body": "One more"}, follow=True)
    assert flashes(refused) == [f"Run #{run.pk} has 50 notes, the most a run takes: add to one of them instead."]
    assert run.notes.count() == notes.MAX_NOTES_PER_RUN


def test_a_refused_edit_keeps_the_text_on_the_notes_page(run, alice):
    body = "## Draft\n\n" + "z" * NOTE_MAX_CHARS
    response = alice.post(f"/notes/{note().pk}/", {"body": body})
    assert response.status_code == 400
    assert "Ensure this value has at most 20000 characters" in response.content.decode()
    assert "## Draft" in response.content.decode()  # in the form, to shorten and save again
    assert note().revisions.count() == 1


def test_the_notes_page_shows_the_newest_ten_versions_and_counts_the_older_ones(run, alice):
    for i in range(12):
        alice.post(f"/notes/{note().pk}/", {"body": f"Root cause, take {i}"})
    page = alice.get(f"/notes/{note().pk}/").content.decode()
    assert "History (13 versions)" in page
    assert page.count("<pre>") == 10
    assert "Root cause, take 11" in page and "Root cause, take 2</pre>" in page and "take 1</pre>" not in page
    assert "3 older versions not shown: this page shows the newest 10." in page


def test_the_run_page_links_to_notes_that_do_not_fit_after_the_ones_above(run, alice):
    author = Note.objects.get().author
    for _ in range(2):
        notes.add_note(run, author, "<" * NOTE_MAX_CHARS)  # 80,000 characters of HTML each
    page = alice.get(f"/runs/{run.pk}/").content.decode()
    assert page.count("&lt;" * 100) > 0 and page.count("&lt;") < 100_000  # the first one, not both
    third = Note.objects.order_by("pk").last()
    assert f'20000 characters: more than this page shows after the notes above. <a href="/notes/{third.pk}/">' in page
    assert ("&lt;" * NOTE_MAX_CHARS) in alice.get(f"/notes/{third.pk}/").content.decode()


def test_a_note_is_rendered_once_when_saved_and_sanitized(run, alice):
    alice.post(f"/notes/{note().pk}/", {"body": "**bold** <script>alert(1)</script> [j](javascript:alert(2))"})
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert note().html == f"<p><strong>bold</strong> {escaped} [j](javascript:alert(2))</p>\n"


def test_a_note_the_browser_let_through_fits_although_it_sends_cr_lf(run, alice):
    """The textarea's maxlength counts a line break once; the browser sends two characters."""
    body = ("x" * 99 + "\r\n") * 198 + "x" * 100  # 19,900 characters as the page counts them
    alice.post(f"/runs/{run.pk}/notes/", {"body": body})
    assert Note.objects.filter(run=run).last().body == body.replace("\r\n", "\n")


def test_a_refused_note_comes_back_in_the_form_with_the_reason(run, alice):
    too_long = "word " * 4_001  # 20,005 characters
    response = alice.post(f"/runs/{run.pk}/notes/", {"body": too_long}, follow=True)
    page = response.content.decode()
    assert "at most 20000 characters" in page.replace(",", "")
    assert f">\n{too_long}</textarea>" in page  # nothing typed is lost
    assert not Note.objects.filter(run=run, body=too_long).exists()
    assert too_long not in alice.get(f"/runs/{run.pk}/").content.decode()  # offered once
