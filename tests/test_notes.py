"""Notes on a run: authors edit their own, DevOps may moderate (and the page says so), and
every version is kept and shown on the run page."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from runs.models import Note, RunStatus
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


def test_an_author_edits_their_own_note_and_the_page_keeps_every_version(run, alice):
    assert alice.post(f"/notes/{note().pk}/", {"body": "Root cause: the agent never starts."}).status_code == 302
    page = alice.get(f"/runs/{run.pk}/").content.decode()
    assert "Root cause: the agent never starts." in page
    assert "History (2 versions)" in page
    assert "Root cause: the **gateway** closes idle sockets." in page  # the first version, as written
    assert [(r.editor.username, r.as_moderator) for r in note().revisions.all()] == [("alice", False)] * 2


def test_another_engineer_may_not_edit_someone_elses_note(run, alice):
    bob = member("bob", "Engineer")
    response = bob.post(f"/notes/{note().pk}/", {"body": "Root cause: alice was wrong."})
    assert response.status_code == 403
    assert note().body == "Root cause: the **gateway** closes idle sockets."
    assert note().revisions.count() == 1
    assert f'action="/notes/{note().pk}/"' not in bob.get(f"/runs/{run.pk}/").content.decode()


def test_a_manager_may_not_edit_a_note(run, alice):
    assert member("mia", "Manager").post(f"/notes/{note().pk}/", {"body": "x"}).status_code == 403
    assert note().revisions.count() == 1


def test_devops_moderate_a_note_and_the_page_says_who_changed_what(run, alice):
    devops = member("dana", "DevOps")
    assert f'action="/notes/{note().pk}/"' in devops.get(f"/runs/{run.pk}/").content.decode()
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
