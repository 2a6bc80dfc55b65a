"""Markdown that people wrote (notes), made safe to put into a Markdown report: the report
is opened in wikis, editors and tools that render raw HTML and follow any link, so what a
note says must reach them as text and http(s)/mailto links only, in any Markdown dialect.

``safe_markdown`` keeps a note's formatting. It escapes every ``<`` (no raw HTML, no
autolink), in code blocks too: a renderer without fenced code blocks (python-markdown's
default, the original Markdown) reads a fence's lines as text, HTML included. It then reads
the result as a lax CommonMark renderer would (raw HTML on, every link accepted), once with
code blocks and once without, and if a link or an image points anywhere but http, https or
mailto, it escapes every ``[`` (no links at all); if even that did not pass, the note goes in
as an indented code block."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

SAFE_SCHEMES = {"http", "https", "mailto"}
SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
# Browsers drop tabs and newlines anywhere in a URL and controls and spaces around it.
URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")

_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_PARSER.validateLink = lambda url: True  # type: ignore[method-assign]  # see every link, as lax renderers do
_WITHOUT_CODE_BLOCKS = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_WITHOUT_CODE_BLOCKS.disable(["fence", "code"])
_WITHOUT_CODE_BLOCKS.validateLink = lambda url: True  # type: ignore[method-assign]


def safe_markdown(text: str) -> str:
    """``text`` with no raw HTML and no link or image other than http, https or mailto for
    any Markdown renderer, and with no fence left open to swallow what follows it."""
    escaped = _closed(text).replace("<", "&lt;")
    if _is_safe(escaped):
        return escaped
    unlinked = escaped.replace("[", "\\[")
    if _is_safe(unlinked):
        return unlinked
    return "\n".join("    " + line for line in unlinked.split("\n"))


def _closed(text: str) -> str:
    """``text`` with a closing fence added if a fenced block runs to its end: in the report,
    it would take in everything after the note."""
    lines = text.split("\n")
    for token in _PARSER.parse(text):
        if token.type == "fence" and token.level == 0 and token.map:
            start, end = token.map
            last = lines[end - 1].strip()
            if not (end - 1 > start and len(last) >= len(token.markup) and set(last) == {token.markup[0]}):
                return f"{text}\n{token.markup}"
    return text


def _is_safe(text: str) -> bool:
    return all(_safe_for(parser, text) for parser in (_PARSER, _WITHOUT_CODE_BLOCKS))


def _safe_for(parser: MarkdownIt, text: str) -> bool:
    env: dict[str, Any] = {}
    tokens = parser.parse(text, env)
    definitions = [reference.get("href", "") for reference in env.get("references", {}).values()]
    return all(_safe_url(url) for url in definitions) and all(_safe_token(token) for token in _walk(tokens))


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        yield from _walk(token.children or [])


def _safe_token(token: Token) -> bool:
    if token.type in ("html_block", "html_inline"):
        return False
    if token.type == "link_open":
        return _safe_url(str(token.attrs.get("href", "")))
    if token.type == "image":
        return _safe_url(str(token.attrs.get("src", "")))
    return True


def _safe_url(url: str) -> bool:
    """A relative URL or one of SAFE_SCHEMES, read as strictly as a browser would read it."""
    scheme = SCHEME.match(URL_IGNORED.sub("", unquote(url)))
    return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES
