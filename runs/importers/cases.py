"""What the importers produce: one ImportedCase per test, whatever the file format."""

from __future__ import annotations

import codecs
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Protocol

MAX_TEXT = 10_000
MAX_NODE_ID = 500
MAX_NAME = 4096  # characters of a test's name or class name: real ones are far shorter
MAX_DURATION_S = 86_400.0  # a single test longer than a day is a broken file, not a result
MAX_DEPTH = 64  # elements, lists or objects open at once; real files nest a few deep


class ByteStream(Protocol):
    """What the parsers read from: a file opened in binary mode, or service.LimitedReader."""

    def read(self, size: int = -1, /) -> bytes: ...


class ImportFailed(ValueError):
    """The file cannot be imported; the message says why and where. Nothing was stored."""


@dataclass(frozen=True, slots=True)
class ImportedCase:
    suite: str  # the file's suite name (testsuite / module), used to pick a category
    classname: str
    name: str
    outcome: str  # passed | failed | error | skipped
    duration_s: float
    message: str = ""
    # The failure's own one-line message when the file gives it apart from the trace (JUnit's
    # message attribute); classified first, see runs.importers.store.classifier.
    headline: str = ""
    key: str = field(init=False)  # the node id as stored, see stored_node_id()

    def __post_init__(self) -> None:
        if len(self.name) > MAX_NAME or len(self.classname) > MAX_NAME:
            raise ImportFailed(
                f"refused: test {self.name[:80]!r} has a name or class name of "
                f"{max(len(self.name), len(self.classname)):,} characters, over the limit of {MAX_NAME:,}"
            )
        node_id = f"{self.classname}::{self.name}" if self.classname else self.name
        object.__setattr__(self, "key", stored_node_id(node_id))


# A byte-order mark names the encoding (UTF-32's before UTF-16's: FF FE starts both).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


# Without one, where the first four bytes are zero ("0") or not ("x") tells a '<' or '{' in
# UTF-16 or UTF-32, as the XML specification's appendix F and RFC 4627 read them.
ZERO_BYTES = {"000x": "utf-32-be", "x000": "utf-32-le", "0x0x": "utf-16-be", "x0x0": "utf-16-le"}


def head_encoding(head: bytes) -> str:
    """The encoding of a file's first bytes. Any ASCII-compatible one (UTF-8, or whatever
    an XML declaration names) reads as UTF-8 here: the first character is all that counts."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    return ZERO_BYTES.get("".join("0" if byte == 0 else "x" for byte in head[:4]), "utf-8")


def stored_node_id(node_id: str) -> str:
    """The node id as stored (TestCase.node_id holds 500 characters): a longer one is cut
    and given a digest of the whole, so it stays unique and matches on re-import."""
    if len(node_id) <= MAX_NODE_ID:
        return node_id
    return node_id[: MAX_NODE_ID - 17] + "#" + hashlib.sha1(node_id.encode()).hexdigest()[:16]


def clip(text: str | None, limit: int = MAX_TEXT, dropped: int = 0) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was; ``dropped`` counts the
    characters a parser already left out of its end (it keeps no more than it stores)."""
    text = (text or "").strip()
    if len(text) <= limit and not dropped:
        return text
    return text[:limit] + f"… [truncated: {len(text) + dropped} characters in all]"


THOUSANDS = {",": re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+"), ".": re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+")}
AMBIGUOUS_COMMA = re.compile(r"[+-]?[1-9]\d{0,2},\d{3}")
# What a time may read as once its separators are read: ASCII digits, one '.', an exponent
# (or a word float() takes, refused below as no duration). float() alone also takes '_'
# between digits ("1_5" would be 15 s) and any script's digits ("١٥", fullwidth "１５").
PLAIN_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def decimal_text(raw: str, where: str) -> str:
    """A time as ``float`` reads it. Tools write the locale's decimal comma ("1,5" is 1.5 s)
    and thousands separators ("1,234.5", Surefire; "1.234,5"): the last of ',' and '.' is the
    decimal mark and the other must group thousands. "1,234" alone could be either: refused,
    as a silent factor of 1,000 would be worse."""
    if "," not in raw:
        return raw
    if "." not in raw:
        if raw.count(",") > 1 and THOUSANDS[","].fullmatch(raw):
            return raw.replace(",", "")
        if AMBIGUOUS_COMMA.fullmatch(raw):
            raise ImportFailed(f"{where}: time {raw!r} is ambiguous (a decimal comma or a thousands separator?)")
        return raw.replace(",", ".", 1) if raw.count(",") == 1 else raw
    mark = "." if raw.rfind(".") > raw.rfind(",") else ","
    whole, _, fraction = raw.rpartition(mark)
    grouping = "," if mark == "." else "."
    if not THOUSANDS[grouping].fullmatch(whole):
        raise ImportFailed(f"{where}: time {raw!r} is not a number")
    return whole.replace(grouping, "") + "." + fraction


def duration(raw: object, where: str) -> float:
    """A test's duration in seconds; refuse what no real run can produce."""
    if raw in (None, ""):
        return 0.0
    text = decimal_text(str(raw).strip(), where)
    if not PLAIN_NUMBER.fullmatch(text):
        raise ImportFailed(f"{where}: time {raw!r} is not a number")
    value = float(text)
    if math.isnan(value) or math.isinf(value) or value < 0 or value > MAX_DURATION_S:
        raise ImportFailed(f"{where}: time {raw!r} is not a duration between 0 and {MAX_DURATION_S:g} s")
    return value
