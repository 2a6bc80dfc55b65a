"""Failure classification: ordered rules that name a failure's class.

A probe failure carries a code and details (``evidence["failure"]``, see probes/failures.py);
rules match those, never the wording of messages. Imported results carry only the message
their tool wrote, which rules without a code match by a regex over its first 4 KB. Rules are
data (the FailureRule model, editable in the admin, seeded with BUILTIN_RULES); the first
rule that matches names the class, and the same class across checks and runs groups them.

Messages may be written to make regexes backtrack (issue 14), so a regex runs only when the
excerpt holds the literal words every match of it contains, and an admin cannot save one
whose shape backtracks without end or multiplies repeats (backtracking_shape); a timeout per
search and a regex-time budget per import (RegexBudget) are the nets under both.
"""

from __future__ import annotations

import fnmatch
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from re import _parser as sre  # type: ignore[attr-defined]  # the stdlib's regex parser; `regex` exposes none
from typing import Any

import regex

UNCLASSIFIED = "unclassified"
MESSAGE_EXCERPT = 4096  # regexes only see this much: classification stays linear in the input
QUALIFIER_CHARS = 60


REGEX_TIMEOUT_S = 0.05  # an admin's pattern that backtracks names nothing; it never stalls a worker
REGEX_BUDGET_S = 1.0  # regex time one import may spend in all (RegexBudget), plus:
REGEX_BUDGET_PER_TEXT_S = 50e-6  # per message: 100,000 distinct ones took 0.4 s of searching
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)


@dataclass(frozen=True)
class _Compiled:
    """A rule's pattern and the strings any match must contain: ``needles`` holds groups of
    case-folded literals, and a text holding no literal of some group cannot match, so most
    rules are ruled out by substring checks (C speed, no backtracking) without running."""

    pattern: regex.Pattern[str]
    needles: tuple[frozenset[str], ...]


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> _Compiled:
    return _Compiled(regex.compile(pattern, regex.IGNORECASE), tuple(_needles(_parsed(pattern) or [])))


@lru_cache(maxsize=4)
def _folded(excerpt: str) -> str:
    """The excerpt case-folded once, however many rules look at it (classify hands every
    rule the same excerpt object, so the cache is hit by identity). Full case folding maps
    every character to what IGNORECASE treats it as, so a literal it lacks cannot match."""
    return excerpt.casefold()


@dataclass
class RegexBudget:
    """The regex time one import may spend on its failures' messages: ``seconds`` and
    ``per_text_s`` for each message classified. A timeout per search bounds one search (and
    `regex` checks it only now and then: a 50 ms timeout has been seen to stop a search
    after 131 ms), not a file of 1,000 distinct messages that each cost a timeout's worth.
    Once the budget is spent, the import's later messages are matched by codes only
    (imported results have none, so they stay unclassified), and ``texts_skipped`` counts
    the messages some regex was not tried on, for the run to say so. ``clock`` reads the
    time spent searching."""

    seconds: float = REGEX_BUDGET_S
    per_text_s: float = REGEX_BUDGET_PER_TEXT_S
    clock: Callable[[], float] = time.perf_counter
    spent: float = 0.0
    texts: int = 0
    searches_skipped: int = 0
    texts_skipped: int = 0

    @property
    def remaining(self) -> float:
        return self.seconds + self.per_text_s * self.texts - self.spent

    def note(self) -> str:
        """What the run says when the budget ran out, or ""."""
        if not self.texts_skipped:
            return ""
        return (
            f"Failure classification ran out of its regex time ({self.spent:.1f} s): "
            f"{self.texts_skipped} of {self.texts} failure messages were not matched against the rules' regexes "
            "and may show as unclassified. A rule's regex is probably slow on these messages: check the rules "
            "in the admin."
        )


def _searched(pattern: str, message: str, budget: RegexBudget | None = None) -> bool:
    compiled, excerpt = _compiled(pattern), message[:MESSAGE_EXCERPT]
    if compiled.needles:
        folded = _folded(excerpt)
        if not all(any(needle in folded for needle in group) for group in compiled.needles):
            return False
    if budget is None:
        return _search(compiled.pattern, excerpt, REGEX_TIMEOUT_S)
    if budget.remaining <= 0:
        budget.searches_skipped += 1
        return False
    started = budget.clock()
    try:
        return _search(compiled.pattern, excerpt, min(REGEX_TIMEOUT_S, budget.remaining))
    finally:
        budget.spent += budget.clock() - started


def _search(pattern: regex.Pattern[str], excerpt: str, timeout: float) -> bool:
    try:
        return pattern.search(excerpt, timeout=timeout) is not None
    except TimeoutError:
        return False


# `regex`'s fuzzy matching, which re reads as plain characters: a{e<=1}, (?:ab){1i+1d<3}
_FUZZY = regex.compile(r"(?<!\\)\{[eisd\d<=+,\s]*[eisd][eisd\d<=+,\s]*\}")


def _parsed(pattern: str) -> Any:
    """The pattern's syntax tree as Python's re reads it, or None where `regex` (which runs
    the rules) may read it otherwise: syntax re refuses, sets re warns it will read anew
    ([[:alpha:]]), and fuzzy-match constraints."""
    if _FUZZY.search(pattern):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        try:
            return sre.parse(pattern)
        except (sre.error, FutureWarning, OverflowError, RecursionError):
            return None


def _needles(items: Iterable[tuple[Any, Any]]) -> list[frozenset[str]]:
    """Groups of literals a match of this sequence must contain (one of each group): its runs
    of plain characters, those of groups and of repeats taken at least once, and for an
    alternation the best group of each branch. Anything else is skipped, which only makes
    the check weaker, never wrong."""
    groups: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in [*items, (None, None)]:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            groups.append(frozenset({"".join(run).casefold()}))
            run = []
        if op is sre.SUBPATTERN:
            groups += _needles(arg[3])
        elif op is sre.ATOMIC_GROUP:
            groups += _needles(arg)
        elif op in _REPEATS and arg[0] >= 1:
            groups += _needles(arg[2])
        elif op is sre.BRANCH:
            best = [max(_needles(b), key=lambda g: min(map(len, g)), default=frozenset()) for b in arg[1]]
            if all(best):
                groups.append(frozenset().union(*best))
    return groups


@lru_cache(maxsize=512)  # active_rules checks every stored rule each time rules are loaded
def backtracking_shape(pattern: str) -> str:
    """Why a rule's pattern could take time exponential (or worse than quadratic) in the
    text it reads, or "" when it has none of those shapes: checked when an admin saves a
    rule, because a timeout per search still costs its 50 ms on each of 1,000 failures.
    Lookarounds are read like any group: ``x(?=(a*)*b)`` backtracks as ``(a*)*b`` does."""
    tree = _parsed(pattern)
    if tree is None:
        return (
            "It uses syntax Python's re module reads otherwise or not at all (rules are checked with it): "
            "use the common syntax."
        )
    items = list(tree)
    if _has_backreference(items):
        return (
            "A backreference (like \\1 or (?P=name)) makes the search compare each capture it tries with the "
            "text again: match the words themselves."
        )
    if _chain(items, _Chain()).worst > POLYNOMIAL_WAYS:
        return (
            "More than two repeats that can match the same characters (like .*x.*y.*z, even apart) try every "
            "way to share the text between them: keep two, or make each stop where the next starts ([^x]*x)."
        )
    return _shape_problem(items)


# Two unbounded repeats over one excerpt (like `over the .* limit` tried at every start) are
# the most a rule may combine: more multiply the ways a search can split the text again.
POLYNOMIAL_WAYS = MESSAGE_EXCERPT**2


def _shape_problem(items: list[tuple[Any, Any]]) -> str:
    previous: tuple[int, int, list[Any]] | None = None  # the repeat just before, if the last item was one
    for op, arg in items:
        if op is sre.AT:
            continue
        if op not in _REPEATS:
            if op not in _ZERO_WIDTH:  # a lookaround matches nothing: the repeat before it is still just before
                previous = None
            problem = next((found for part in _children(op, arg) if (found := _shape_problem(list(part)))), "")
            if problem:
                return problem
            continue
        _low, high, body = arg
        if high > 1 and any(h > 1 for h, _ in _inner_repeats(body)) and not _delimited(body):
            return (
                "A repeat inside a repeat (like (a+)+, (.*)* or (a{1,100}){1,100}) can backtrack without end: "
                "repeat only one of them, or end each turn with a character the inner repeat cannot match "
                "(like (\\d+\\.)+)."
            )
        if high > 1 and _overlapping_branches(body):
            return (
                "A repeated alternation whose branches can start alike (like (a|a)* or (a|ab)+) can backtrack "
                "without end: make the branches start differently, or use a character class."
            )
        if previous and _open(high) and _open(previous[1]) and _first(previous[2]) & _first(body):
            return "Two repeats in a row over the same characters (like .*.* or \\d+\\d*) try every split: keep one."
        if problem := _shape_problem(list(body)):
            return problem
        previous = arg
    return ""


def _children(op: Any, arg: Any) -> list[Any]:
    """The sequences inside a group, an alternation or a lookaround."""
    if op is sre.SUBPATTERN:
        return [arg[3]]
    if op is sre.ATOMIC_GROUP:
        return [arg]
    if op is sre.BRANCH:
        return list(arg[1])
    if op is sre.ASSERT or op is sre.ASSERT_NOT:
        return [arg[1]]
    if op is sre.GROUPREF_EXISTS:
        return [part for part in arg[1:] if part is not None]
    return []


def _open(high: int) -> bool:
    return bool(high == sre.MAXREPEAT)


def _inner_repeats(items: Iterable[tuple[Any, Any]]) -> list[tuple[int, frozenset[str]]]:
    """The maximum count and the characters of each repeat anywhere inside ``items``."""
    found: list[tuple[int, frozenset[str]]] = []
    for op, arg in items:
        if op in _REPEATS:
            found += [(arg[1], _matchable(arg[2])), *_inner_repeats(arg[2])]
        for part in _children(op, arg):
            found += _inner_repeats(part)
    return found


def _delimited(body: Iterable[tuple[Any, Any]]) -> bool:
    """Whether each turn of a repeat over ``body`` must match a character none of the repeats
    inside it can, so the text splits into turns one way only: (\\d{1,3}\\.){3} or ([^,]*,)+."""
    inner = frozenset().union(*(chars for high, chars in _inner_repeats(body) if high > 1))
    return any(_required(op, arg) and not _matchable([(op, arg)]) & inner for op, arg in _opened(body))


def _required(op: Any, arg: Any) -> bool:
    """Whether the item consumes at least one character in every match."""
    if op in _REPEATS:
        return bool(arg[0] >= 1) and any(_required(*item) for item in arg[2])
    if op is sre.BRANCH:
        return all(any(_required(*item) for item in branch) for branch in arg[1])
    if op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP:
        return any(_required(*item) for item in _children(op, arg)[0])
    return op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY)


def _opened(items: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    """The items of a sequence with its groups opened: (a)(b) reads as ab."""
    for op, arg in items:
        if op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP:
            yield from _opened(_children(op, arg)[0])
        else:
            yield op, arg


def _has_backreference(items: Iterable[tuple[Any, Any]]) -> bool:
    for op, arg in items:
        if op is sre.GROUPREF:
            return True
        parts = [arg[2]] if op in _REPEATS else _children(op, arg)
        if any(_has_backreference(part) for part in parts):
            return True
    return False


@dataclass(frozen=True)
class _Chain:
    """Repeats read so far that can trade characters: ``ways`` is the product of their
    counts (an unbounded one counts as long as the excerpt), ``chars`` what they match, and
    ``worst`` the largest product seen in the pattern."""

    ways: int = 1
    chars: frozenset[str] = frozenset()
    worst: int = 1


def _chain(items: Iterable[tuple[Any, Any]], chain: _Chain) -> _Chain:
    """``chain`` carried on through ``items``. A repeat joins it when it can match some
    character the chain's repeats can, and a character every match needs ends it when no
    repeat of the chain could have matched it instead: in .*x.*y the first .* may take the
    x, so the two share the text; in [^x]*x[^y]*y neither can pass its stop."""
    for op, arg in items:
        if op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP:
            chain = _chain(_children(op, arg)[0], chain)
        elif op is sre.BRANCH or op is sre.GROUPREF_EXISTS:
            ends = [_chain(part, chain) for part in _children(op, arg)]
            chain = _Chain(
                max(end.ways for end in ends),
                frozenset().union(*(end.chars for end in ends)),
                max(end.worst for end in ends),
            )
        elif op is sre.ASSERT or op is sre.ASSERT_NOT:  # read from where the chain is; consumes nothing
            chain = _Chain(chain.ways, chain.chars, _chain(arg[1], chain).worst)
        elif op in _REPEATS and arg[1] > 1:
            chars = _matchable(arg[2])
            kept = chain if chain.chars & chars else _Chain(worst=chain.worst)
            ways = kept.ways * min(arg[1], MESSAGE_EXCERPT)
            chain = _Chain(ways, kept.chars | chars, max(chain.worst, ways))
        elif _required(op, arg) and not _matchable([(op, arg)]) & chain.chars:
            chain = _Chain(worst=chain.worst)
    return chain


def _matchable(items: Iterable[tuple[Any, Any]]) -> frozenset[str]:
    """The sample characters (in either case) some match of ``items`` can consume."""
    chars: set[str] = set()
    for op, arg in items:
        if op is sre.LITERAL:
            chars |= _cased({chr(arg)})
        elif op is sre.NOT_LITERAL:
            chars |= _SAMPLE - _cased({chr(arg)})
        elif op is sre.IN:
            chars |= _in_set(arg)
        elif op in _REPEATS:
            chars |= _matchable(arg[2])
        elif op in _ZERO_WIDTH:
            continue
        elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP, sre.BRANCH, sre.GROUPREF_EXISTS):
            for part in _children(op, arg):
                chars |= _matchable(part)
        else:  # any character, a backreference
            chars |= _SAMPLE
    return frozenset(chars)


def _overlapping_branches(items: Iterable[tuple[Any, Any]]) -> bool:
    for op, arg in items:
        if op is sre.BRANCH:
            firsts = [_first(branch) for branch in arg[1]]
            if any(a & b for i, a in enumerate(firsts) for b in firsts[i + 1 :]):
                return True
        parts = [arg[2]] if op in _REPEATS else _children(op, arg)
        if any(_overlapping_branches(part) for part in parts):
            return True
    return False


# Characters that tell the usual classes apart (ASCII and Latin letters, digits, spaces,
# punctuation): two first-character sets overlap if some of these are in both.
_SAMPLE = frozenset(map(chr, range(0x250)))
_CATEGORIES = {
    sre.CATEGORY_DIGIT: str.isdecimal,
    sre.CATEGORY_SPACE: str.isspace,
    sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
}
_CATEGORIES |= {
    sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
}


def _first(items: Iterable[tuple[Any, Any]]) -> frozenset[str]:
    """The characters a match of ``items`` can start with, in either case (rules ignore
    case); all of _SAMPLE when that could be anything, or when the start may be empty and
    the text after it decides."""
    for op, arg in items:
        if op in _ZERO_WIDTH:
            continue
        if op is sre.LITERAL:
            return _cased({chr(arg)})
        if op is sre.IN:
            return _in_set(arg)
        if op in _REPEATS and arg[0] >= 1:
            return _first(arg[2])
        if op is sre.SUBPATTERN or op is sre.ATOMIC_GROUP or op is sre.BRANCH:
            return frozenset().union(*(_first(part) for part in _children(op, arg)))
        return _SAMPLE
    return _SAMPLE


def _in_set(items: list[tuple[Any, Any]]) -> frozenset[str]:
    """The sample characters a character class such as [a-z\\d_] matches in either case (and
    its literals); a negated class such as [^x] matches neither x nor X."""
    chars: set[str] = set()
    for op, arg in items:
        if op is sre.LITERAL:
            chars.add(chr(arg))
        elif op is sre.RANGE:
            chars |= {c for c in _SAMPLE if arg[0] <= ord(c) <= arg[1]}
        elif op is sre.CATEGORY and arg in _CATEGORIES:
            chars |= set(filter(_CATEGORIES[arg], _SAMPLE))
        elif op is not sre.NEGATE:
            chars |= _SAMPLE
    cased = _cased(chars)
    return _SAMPLE - cased if items and items[0][0] is sre.NEGATE else cased


def _cased(chars: set[str]) -> frozenset[str]:
    return frozenset(chars | {c.swapcase() for c in chars})


@dataclass(frozen=True)
class Rule:
    """Matches when every condition given holds: the failure's code is one of ``code``
    (space-separated, ``*`` wildcards), its details include ``details``, its HTTP status is
    in the range, and — for a rule without a code — the message matches ``message_regex``.
    ``qualifier`` names a detail whose value is added to the class (one class per metric)."""

    name: str
    label: str
    code: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    qualifier: str = ""
    message_regex: str = ""
    http_status_min: int | None = None
    http_status_max: int | None = None

    def matches(self, message: str, failure: Mapping[str, Any] | None, budget: RegexBudget | None = None) -> bool:
        if failure is not None and self.code:
            if not any(fnmatch.fnmatchcase(str(failure.get("code", "")), p) for p in self.code.split()):
                return False
            details = failure.get("details") or {}
            if any(details.get(key) != value for key, value in self.details.items()):
                return False
            if self.http_status_min is not None or self.http_status_max is not None:
                status = details.get("status")
                low, high = self.http_status_min or 0, self.http_status_max or 999
                if not isinstance(status, int) or not low <= status <= high:
                    return False
            return True
        # An imported result (no structured failure), or a rule that only has a regex.
        return bool(self.message_regex) and _searched(self.message_regex, message, budget)

    def class_name(self, failure: Mapping[str, Any] | None) -> str:
        if self.qualifier and failure:
            value = (failure.get("details") or {}).get(self.qualifier)
            if value is not None:
                return f"{self.name}:{str(value)[:QUALIFIER_CHARS]}"
        return self.name


# Most specific first. Rules with a code classify probe failures; those with only a regex
# classify what imported tools wrote (and probe failures no coded rule names).
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule(
        "ws-closed-1000-after-send",
        "WebSocket closed normally (1000) right after send",
        code="ws.closed",
        details={"close_code": 1000, "initiator": "server", "after_send": True},
    ),
    Rule(
        "ws-1011-server-error",
        "WebSocket closed with 1011 internal error",
        code="ws.closed",
        details={"close_code": 1011},
    ),
    Rule(
        "ws-1008-policy", "WebSocket closed with 1008 policy violation", code="ws.closed", details={"close_code": 1008}
    ),
    Rule(
        "connection-closed",
        "Connection closed before the expected frames",
        code="ws.closed sse.closed",
        qualifier="close_code",
    ),
    Rule(
        "message-too-big",
        "Message over the size limit",
        code="*.too_large",
        message_regex=r"too large|exceeds \d+ bytes|payload size",
    ),
    Rule("ws-handshake-rejected", "WebSocket handshake rejected", code="ws.handshake_rejected", qualifier="status"),
    Rule("frame-missing", "Expected frame missing", code="ws.frame_missing sse.event_missing"),
    Rule("frame-out-of-order", "Frames out of order", code="ws.out_of_order sse.out_of_order"),
    Rule("forbidden-frame", "Forbidden frame received", code="ws.forbidden_frame sse.forbidden_event"),
    Rule("unexpected-frame", "Unexpected frame in a strict sequence", code="ws.unexpected_frame sse.unexpected_event"),
    Rule("not-json", "Answer is not the JSON expected", code="*.not_json sse.not_event_stream"),
    Rule("connect-timeout", "Connect timeout", code="timeout.connect", message_regex=r"connect(?:ion)? timed? ?out"),
    Rule("receive-timeout", "Receive timeout", code="timeout.*", message_regex=r"timed? ?out\b|timeout"),
    Rule("metric-over-target", "Performance target missed", code="metric.over_target", qualifier="metric"),
    Rule("auth-not-enforced", "Authentication not enforced", code="auth.not_enforced"),
    Rule("auth-rejected", "Credentials refused when asking for a token", code="auth.rejected auth.no_token"),
    Rule(
        "http-5xx",
        "HTTP 5xx from the server",
        code="http.status",
        http_status_min=500,
        http_status_max=599,
        message_regex=r"\bHTTP 5\d\d\b|\b5\d\d (?:Internal Server Error|Bad Gateway|Service Unavailable)",
    ),
    Rule("http-4xx", "Unexpected HTTP 4xx", code="http.status", http_status_min=400, http_status_max=499),
    Rule("http-status", "Unexpected HTTP status", code="http.status"),
    Rule(
        "response-mismatch",
        "Response does not match",
        code="http.json_mismatch http.header_mismatch http.body_mismatch http.schema http.time *.save_missing "
        "ws.close_code ws.not_closed ws.handshake_accepted",
    ),
    Rule(
        "dns-failure",
        "DNS failure",
        code="net.dns",
        message_regex=r"name or service not known|getaddrinfo|\bENOTFOUND\b",
    ),
    Rule(
        "connection-refused",
        "Connection refused",
        code="net.refused",
        message_regex=r"connection refused|\bECONNREFUSED\b",
    ),
    Rule(
        "connection-reset",
        "Connection reset by the server",
        code="net.reset",
        message_regex=r"connection reset|\bECONNRESET\b",
    ),
    Rule("tls-error", "TLS error", code="net.tls", message_regex=r"\bTLS\b|\bSSL\b|certificate verify"),
    Rule("host-not-allowed", "Host outside the environment's allowlist", code="net.not_allowed"),
    Rule("network-error", "Network error", code="net.* http.protocol"),
    Rule("missing-variable", "Variable missing on the worker", code="config.*"),
    Rule("probe-error", "Probe engine error", code="probe.error"),
    Rule("assertion", "Assertion mismatch", message_regex=r"assert|expected|mismatch|!=|not equal|\bwant\b|but was"),
)


def classify(
    message: str,
    failure: Mapping[str, Any] | None,
    rules: Sequence[Rule] = BUILTIN_RULES,
    budget: RegexBudget | None = None,
) -> str:
    """The class of the first rule that matches, or ``unclassified``. Every rule is shown the
    same excerpt, so it is cut and case-folded once; ``budget``, shared by every message of
    one import, bounds the regex time they take together."""
    message = (message or "")[:MESSAGE_EXCERPT]
    if budget is None:
        return _first_class(message, failure, rules, None)
    budget.texts += 1
    skipped_before = budget.searches_skipped
    found = _first_class(message, failure, rules, budget)
    budget.texts_skipped += budget.searches_skipped > skipped_before
    return found


def _first_class(
    message: str, failure: Mapping[str, Any] | None, rules: Sequence[Rule], budget: RegexBudget | None
) -> str:
    for rule in rules:
        if rule.matches(message, failure, budget):
            return rule.class_name(failure)
    return UNCLASSIFIED


def label_of(failure_class: str, labels: Mapping[str, str]) -> str:
    """The label of a class; a qualified class (``metric-over-target:API Response Time``)
    takes its rule's label followed by the qualifier."""
    if failure_class in labels:
        return labels[failure_class]
    base, _, qualifier = failure_class.partition(":")
    if qualifier and base in labels:
        return f"{labels[base]}: {qualifier}"
    return failure_class


def websocket_records(evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in evidence.get("connections") or [] if isinstance(c, dict) and c.get("type") == "websocket"]
