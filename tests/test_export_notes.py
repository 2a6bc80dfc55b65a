"""Notes in the Markdown export (issue 14 F8): the attack note went into the .md file
verbatim, and a wiki that renders raw HTML and follows any link would run it. The export is
rendered here by two lax renderers — python-markdown (raw HTML passes) and markdown-it with
raw HTML on and every link accepted — and must hold no live HTML and no link or image other
than http, https or mailto; a note's formatting otherwise reaches the file as written."""

import markdown
import pytest
from markdown_it import MarkdownIt

from runs import notes
from runs.exporters.formats import export_run
from runs.exporters.markdown_text import safe_markdown
from runs.models import RunStatus
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.django_db

ATTACK = "[j](javascript:alert(1)) <script>alert(2)</script> <img src=x onerror=alert(3)>"
HIDDEN_SCHEMES = [
    "[a](javascript\\:alert(4))",  # a backslash escape: the destination is javascript:alert(4)
    "[b](java&#x09;script:alert(5))",  # an entity for a tab, which browsers drop
    "[c](JaVaScRiPt:alert(6))",
    "![d](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==)",
    "[e](vbscript:msgbox(8))",
    "<javascript:alert(9)>",
    "[f]\n\n[f]: javascript:alert(10)",
]
LIVE = ("<script", "<img src=x", 'href="javascript', 'href="java', 'src="data:', 'vbscript:msgbox(8)"')
LAX = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
LAX.validateLink = lambda url: True


def rendered(text: str) -> list[str]:
    return [markdown.markdown(text, extensions=["tables"]), LAX.render(text)]


def note_export(*bodies: str) -> str:
    run = RunFactory(status=RunStatus.FINISHED, verdict="FAIL")
    author = UserFactory(username="eve_the_engineer", password=None)
    for body in bodies:
        notes.add_note(run, author, body)
    return export_run(run, "md")[0]


def test_the_attack_note_reaches_the_export_as_text():
    text = note_export(ATTACK)
    assert "&lt;script>alert(2)&lt;/script> &lt;img src=x onerror=alert(3)>" in text
    for html in rendered(text):
        assert not any(markup in html for markup in LIVE), html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html  # shown, not run
    assert "Written by eve\\_the\\_engineer" in text  # the credit, escaped like every other cell


@pytest.mark.parametrize("body", HIDDEN_SCHEMES)
def test_no_spelling_of_another_scheme_becomes_a_link(body):
    for html in rendered(note_export(body)):
        assert not any(markup in html.replace("&quot;", '"') for markup in LIVE), html
        assert "href" not in html and "<img" not in html, html


def test_notes_cannot_combine_into_a_link_or_live_code():
    """A reference defined in one note and used in the next, and a note whose fence is never
    closed, followed by a note with HTML in its code block: each note stands alone."""
    text = note_export(
        "[ref]: javascript:alert(11)", "[click][ref]", "```\nunclosed", "```\n<script>alert(12)</script>\n```"
    )
    for html in rendered(text):
        assert 'href="javascript' not in html and "<script>alert(12)" not in html, html
    assert "```\nunclosed\n```\n\n— Written by" in text  # closed before the credit


def test_a_link_in_a_fence_is_no_link_for_renderers_without_fences():
    for html in rendered(note_export("```\n[x](javascript:alert(13))\n```")):
        assert "href" not in html, html


def test_a_root_cause_note_keeps_its_formatting():
    body = (
        "## Root cause\n\n"
        "The gateway closes idle sockets after **30 s**; see [the runbook](https://wiki.example.com/gw) "
        "or write to [ops](mailto:ops@example.com).\n\n"
        "- `a < b` in the retry loop\n- ![graph](https://grafana.example.com/p.png)\n\n"
        "```python\nif idle < 30:\n    sock.close()  # <- here\n```\n\n"
        "| step | took |\n|---|---|\n| connect | 3 ms |\n"
    )
    # Every "<" escaped, in code too: python-markdown reads a fence's lines as text, HTML included.
    assert safe_markdown(body) == body.replace("<", "&lt;")
    html = LAX.render(safe_markdown(body))
    assert '<a href="https://wiki.example.com/gw">the runbook</a>' in html
    assert '<a href="mailto:ops@example.com">ops</a>' in html
    assert '<img src="https://grafana.example.com/p.png" alt="graph" />' in html
    assert "<h2>Root cause</h2>" in html and "<strong>30 s</strong>" in html and "<table>" in html
    assert '<pre><code class="language-python">if idle &amp;lt; 30:' in html  # shown as "&lt;": the price


def test_a_note_with_a_link_elsewhere_loses_its_links_but_keeps_its_text():
    html = LAX.render(safe_markdown("[ok](https://example.com) and [bad](javascript:alert(1))"))
    assert "href" not in html
    assert "[ok](https://example.com) and [bad](javascript:alert(1))" in html
