"""Failure classification: rules over a probe failure's code and details, and over the
message of an imported result. Pure functions, no database; the engine's real failures are
classified in test_probes.py."""

import io
from collections import Counter
from functools import partial

import pytest
import regex
from django.contrib.admin import AdminSite
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.failures import CODES
from runs.admin import FailureRuleAdmin
from runs.analysis import classification
from runs.analysis.classification import (
    BUILTIN_RULES,
    MESSAGE_EXCERPT,
    UNCLASSIFIED,
    RegexBudget,
    Rule,
    backtracking_shape,
    classify,
    label_of,
)
from runs.history import active_rules
from runs.importers import store
from runs.importers.service import import_results
from runs.models import Environment, FailureRule, RunStatus, validate_regex


def failure(code: str, **details) -> dict:
    return {"code": code, "step": 3, "kind": "receive", "details": details}


# One realistic failure per coded built-in rule: (expected class, failure).
PROBE_EXAMPLES = [
    ("ws-closed-1000-after-send", failure("ws.closed", close_code=1000, initiator="server", after_send=True)),
    ("ws-1011-server-error", failure("ws.closed", close_code=1011, initiator="server", after_send=True)),
    ("ws-1008-policy", failure("ws.closed", close_code=1008, initiator="server", after_send=False)),
    ("connection-closed:1006", failure("ws.closed", close_code=1006, initiator="server", after_send=True)),
    ("connection-closed", failure("sse.closed", close_code=None, initiator="server")),
    ("message-too-big", failure("ws.too_large", close_code=1009)),
    ("ws-handshake-rejected:403", failure("ws.handshake_rejected", status=403)),
    ("frame-missing", failure("ws.frame_missing", item=4, of=5)),
    ("frame-out-of-order", failure("sse.out_of_order", item=3, expected_item=2, of=5)),
    ("forbidden-frame", failure("ws.forbidden_frame", frame=7)),
    ("unexpected-frame", failure("ws.unexpected_frame", item=1, of=2)),
    ("not-json", failure("ws.not_json", frame=1)),
    ("connect-timeout", failure("timeout.connect")),
    ("receive-timeout", failure("timeout.receive", item=1, of=1, waited_s=10)),
    ("metric-over-target:Agent Startup Time", failure("metric.over_target", metric="Agent Startup Time")),
    ("auth-not-enforced", failure("auth.not_enforced", status=200, expected=401)),
    ("auth-rejected", failure("auth.rejected", status=401)),
    ("http-5xx", failure("http.status", status=503, expected="2xx")),
    ("http-4xx", failure("http.status", status=404, expected=200)),
    ("http-status", failure("http.status", status=302, expected=200)),
    ("response-mismatch", failure("http.json_mismatch", path="$.status")),
    ("dns-failure", failure("net.dns", host="staging.example.invalid")),
    ("connection-refused", failure("net.refused")),
    ("connection-reset", failure("net.reset")),
    ("tls-error", failure("net.tls")),
    ("host-not-allowed", failure("net.not_allowed", host="evil.example.com")),
    ("network-error", failure("http.protocol")),
    ("missing-variable", failure("config.missing_env", variable="JUPYTER_TOKEN")),
    ("probe-error", failure("probe.error")),
]


@pytest.mark.parametrize(("expected", "given"), PROBE_EXAMPLES, ids=[e[0] for e in PROBE_EXAMPLES])
def test_it_names_the_class_of_a_probe_failure_from_its_code_and_details(expected, given):
    assert classify("any wording at all", given) == expected


def test_every_failure_code_the_engine_can_raise_has_a_class():
    unnamed = [code for code in CODES if classify("", failure(code)) == UNCLASSIFIED]
    assert unnamed == []


def test_it_ignores_the_wording_of_a_probe_failure():
    """A message that reads like a 5xx does not turn a close into an HTTP failure."""
    closed = failure("ws.closed", close_code=1000, initiator="server", after_send=True)
    assert classify("GET /x answered HTTP 500, expected 200", closed) == "ws-closed-1000-after-send"


def test_a_normal_close_before_any_send_is_not_a_close_after_send():
    before_send = failure("ws.closed", close_code=1000, initiator="server", after_send=False)
    assert classify("", before_send) == "connection-closed:1000"


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("receive-timeout", "TimeoutError: Read timed out. (read timeout=5)"),
        ("connect-timeout", "requests.exceptions.ConnectTimeout: connection timed out"),
        ("connection-refused", "ConnectionRefusedError: [Errno 111] Connection refused"),
        ("dns-failure", "socket.gaierror: [Errno -2] Name or service not known"),
        ("http-5xx", "AssertionError: HTTP 502 from the gateway"),
        ("tls-error", "ssl.SSLCertVerificationError: certificate verify failed"),
        ("message-too-big", "payload size 2000000 is too large"),
        ("assertion", "AssertionError: assert 1 == 2"),
        ("assertion", "expected:<3> but was:<4>"),
        ("unclassified", "ModuleNotFoundError: No module named 'shop'"),  # ENOTFOUND only as a word
        ("connection-reset", "Error: read ECONNRESET"),
    ],
)
def test_it_names_the_class_of_an_imported_failure_from_its_message(expected, message):
    assert classify(message, None) == expected


def test_it_falls_back_to_unclassified():
    assert classify("", None) == UNCLASSIFIED
    assert classify("segfault in module x", None) == UNCLASSIFIED
    assert classify(None, None) == UNCLASSIFIED


def test_a_rule_with_a_code_never_classifies_by_message_what_carries_a_failure():
    rule = Rule("gateway", "Gateway", code="http.status", http_status_min=502, http_status_max=504, message_regex="x")
    assert rule.matches("x", failure("http.status", status=503))
    assert not rule.matches("x", failure("http.status", status=500))
    assert not rule.matches("x", failure("ws.closed", close_code=1011))
    assert rule.matches("x", None)  # an imported result: the regex decides


def test_an_http_status_range_includes_its_bounds_and_may_be_open():
    gateway = Rule("gateway", "Gateway error", code="http.status", http_status_min=502, http_status_max=504)
    assert gateway.matches("", failure("http.status", status=502))
    assert gateway.matches("", failure("http.status", status=504))
    assert not gateway.matches("", failure("http.status", status=505))
    at_least_500 = Rule("server", "Server error", code="http.status", http_status_min=500)
    assert at_least_500.matches("", failure("http.status", status=599))
    assert not at_least_500.matches("", failure("http.status", status=404))
    assert not at_least_500.matches("", failure("http.status"))  # no status: no match


def test_codes_may_use_wildcards_and_lists():
    rule = Rule("slow", "Slow", code="timeout.* metric.over_target")
    assert rule.matches("", failure("timeout.pong"))
    assert rule.matches("", failure("metric.over_target", metric="x"))
    assert not rule.matches("", failure("net.refused"))


def test_every_detail_a_rule_names_must_match():
    rule = Rule("ws-4001", "App close", code="ws.closed", details={"close_code": 4001, "initiator": "server"})
    assert rule.matches("", failure("ws.closed", close_code=4001, initiator="server"))
    assert not rule.matches("", failure("ws.closed", close_code=4001, initiator="client"))
    assert not rule.matches("", failure("ws.closed", close_code=4002, initiator="server"))


def test_it_uses_the_first_matching_rule():
    custom = Rule("mcp-config-down", "MCP config endpoint down", code="http.status", details={"status": 500})
    given = failure("http.status", status=500)
    assert classify("", given, [custom, *BUILTIN_RULES]) == "mcp-config-down"
    assert classify("", given, [*BUILTIN_RULES, custom]) == "http-5xx"


def test_a_qualified_class_takes_its_rules_label_and_the_qualifier():
    labels = {rule.name: rule.label for rule in BUILTIN_RULES}
    assert label_of("metric-over-target:Agent Startup Time", labels) == "Performance target missed: Agent Startup Time"
    assert label_of("ws-closed-1000-after-send", labels) == "WebSocket closed normally (1000) right after send"
    assert label_of("no-such-class", labels) == "no-such-class"


def test_a_long_qualifier_is_cut():
    name = classify("", failure("metric.over_target", metric="x" * 500))
    assert len(name) <= 100 and name.startswith("metric-over-target:")


def test_a_regex_only_sees_the_start_of_a_long_message():
    tail = "x" * 10_000 + " connection refused"
    assert classify(tail, None) == UNCLASSIFIED
    assert classify("connection refused" + "x" * 10_000, None) == "connection-refused"


# --- issue 14 row 4: messages written to make regexes backtrack ------------------------------

OVER_A_LIMIT = Rule("over-a-limit", "Over a limit", message_regex=r"over the .* limit")  # as an admin wrote it


def adversarial(i: int) -> str:
    """20 KB that `over the .* limit` backtracks over quadratically, distinct per failure."""
    return "".join(f"{i}.{j} over the target missed: " for j in range(700))


class CountingPattern:
    def __init__(self, pattern: regex.Pattern[str], searched: list[int]) -> None:
        self.pattern, self.searched = pattern, searched

    def search(self, text: str, **options: object) -> regex.Match[str] | None:
        self.searched.append(len(text))
        return self.pattern.search(text, **options)


@pytest.fixture
def searched(monkeypatch) -> list[int]:
    """The length of each text a rule's regex was run on."""
    lengths: list[int] = []
    compiled = classification._compiled

    def counting(pattern: str) -> classification._Compiled:
        real = compiled(pattern)
        return classification._Compiled(CountingPattern(real.pattern, lengths), real.needles)

    monkeypatch.setattr(classification, "_compiled", counting)
    return lengths


def test_it_runs_no_regex_on_a_message_lacking_the_words_every_match_holds(searched):
    rules = [OVER_A_LIMIT, *BUILTIN_RULES]
    for i in range(1_000):
        assert classify(adversarial(i), None, rules) == UNCLASSIFIED
    assert searched == []  # before: 10 regexes over each 4 KB excerpt, the admin's backtracking ~0.5 ms


def test_a_regex_whose_words_are_there_runs_once_on_the_excerpt(searched):
    message = "a limit " + adversarial(1)  # ' limit' and 'over the ' both present: the regex decides
    assert classify(message, None, [OVER_A_LIMIT]) == UNCLASSIFIED
    assert searched == [MESSAGE_EXCERPT]


def test_the_words_a_regex_needs_are_found_in_any_case():
    assert classify("java.net.ConnectException: CONNECTION REFUSED", None) == "connection-refused"
    assert classify("ſsl handshake failed", None) == "tls-error"  # long s: IGNORECASE reads it as an s
    assert classify("\u212aelvin", None, [Rule("k", "K", message_regex="kelvin")]) == "k"  # the Kelvin sign


class Steps:
    """A clock that moves ``step`` seconds each time it is read: every search then costs
    ``step`` of an import's regex time, whatever the machine's speed."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_once_the_regex_time_is_spent_later_messages_are_matched_by_codes_only(searched):
    """Issue 14's rerun (F5): a 50 ms timeout per search still let 400 messages take 10 s,
    and `regex` overran it (131 ms). The budget is shared by all of an import's messages."""
    budget = RegexBudget(seconds=1.0, per_text_s=0.0, clock=Steps(0.3))
    classes = [classify(f"connection refused #{i}", None, BUILTIN_RULES, budget) for i in range(10)]
    assert classes == ["connection-refused"] * 4 + [UNCLASSIFIED] * 6  # 0.3 s each: the 4th passes 1 s
    assert len(searched) == 4
    assert classify("connection refused", failure("net.refused"), BUILTIN_RULES, budget) == "connection-refused"
    assert (budget.texts, budget.texts_skipped) == (11, 6)
    assert "6 of 11 failure messages were not matched" in budget.note()


def test_the_regex_time_grows_with_the_messages_so_an_honest_large_file_keeps_it(searched):
    budget = RegexBudget(seconds=0.0, per_text_s=0.3, clock=Steps(0.3))
    classes = {classify(f"connection refused #{i}", None, BUILTIN_RULES, budget) for i in range(1_000)}
    assert classes == {"connection-refused"}
    assert len(searched) == 1_000 and budget.texts_skipped == 0 and budget.note() == ""


@pytest.mark.django_db
def test_an_import_that_runs_out_of_regex_time_says_so_on_its_run(monkeypatch):
    monkeypatch.setattr(store, "RegexBudget", partial(RegexBudget, seconds=1.0, per_text_s=0.0, clock=Steps(0.3)))
    Environment.objects.create(name="ci", base_url="")
    cases = "".join(
        f'<testcase classname="c" name="t{i}"><failure message="connection refused #{i}"/></testcase>'
        for i in range(10)
    )
    run = import_results(
        io.BytesIO(f"<testsuite>{cases}</testsuite>".encode()), suite_name="slow", environment_name="ci"
    )
    classes = Counter(run.results.values_list("failure_class", flat=True))
    assert classes == {"connection-refused": 4, UNCLASSIFIED: 6}
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED
    assert "6 of 10 failure messages were not matched against the rules' regexes" in run.status_message


PIECES = st.sampled_from(
    [
        "connection refused",
        "Connection Reset",
        "SSL",
        "ſsl",
        "timed out",
        "timeout",
        "HTTP 503",
        "503 Bad Gateway",
        "exceeds 12 bytes",
        "too large",
        "getaddrinfo",
        "over the",
        " limit",
        "assert",
        "but was",
        "ß",
        "ẞ",
        "İ",
        "\u212a",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=8).map(" ".join))
def test_skipping_a_regex_for_missing_words_never_changes_what_it_finds(text):
    for rule in [OVER_A_LIMIT, *BUILTIN_RULES]:
        if rule.message_regex:
            expected = regex.search(rule.message_regex, text, regex.IGNORECASE) is not None
            assert rule.matches(text, None) == expected, rule.message_regex


BACKTRACKING = [
    r"(a+)+",
    r"(.*)*",
    r"(?:\w+\s?)+x",
    r"(a|a)*",
    r"(a|ab)+",
    r"(?:GET|GETS)+",
    r".*.*x",
    r"\d+\d*",
    r"(a+){2,}",
    # issue 14's rerun (F5): inside a lookaround, and counted repeats inside counted repeats
    r"x(?=(a*)*b)",
    r"(?!(a+)+b)",
    r"(?:(?:a{1,100}){1,100})b",
    r"(.{1,20}){1,20}z",
]
# Repeats that share the text (polynomial: each one multiplies the ways to split it) and backreferences.
MULTIPLYING = [
    r".*x.*y.*z.*w.*v",
    r"(.*)x(.*)y(.*)z",
    r".{0,100}x.{0,100}y.{0,100}z.{0,100}w",
    r"\w+\s?\w+\s?\w+x",
    r"\b(\w+)\b.*\1.*\1.*\1 q",
    r"(?P<word>\w+) (?P=word)",
]


@pytest.mark.parametrize("pattern", BACKTRACKING)
def test_an_admin_cannot_save_a_regex_that_backtracks_without_end(pattern):
    with pytest.raises(ValidationError, match="backtrack|every split"):
        validate_regex(pattern)


@pytest.mark.parametrize("pattern", MULTIPLYING)
def test_an_admin_cannot_save_a_regex_whose_repeats_multiply_or_that_refers_back(pattern):
    with pytest.raises(ValidationError, match="every way to share the text|backreference"):
        validate_regex(pattern)


WRAPPINGS = st.sampled_from(["(?:{})", "({})", "x(?={})", "(?!{})", "(?:{}|zzz)", "q {}", "{} q", "(?>{})"])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(BACKTRACKING + MULTIPLYING), st.lists(WRAPPINGS, max_size=3))
def test_a_refused_regex_stays_refused_wherever_it_is_put(pattern, wrappings):
    """In a group, a lookaround or a branch, after or before other words: the shape check
    reads every part of the pattern, so no wrapping hides what it refused."""
    for wrapping in wrappings:
        pattern = wrapping.format(pattern)
    assert backtracking_shape(pattern), pattern


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab.*+?{}()[]^$|\\1,=!<:dws ", max_size=20))
def test_the_shape_check_answers_for_any_pattern(pattern):
    """Whatever an admin types, the check gives a reason or none; it never fails itself."""
    assert isinstance(backtracking_shape(pattern), str)


def test_an_admin_cannot_save_syntax_the_shape_check_cannot_read():
    for pattern in (r"\p{L}+", r"[[:alpha:]]+", r"refused{e<=2}"):
        with pytest.raises(ValidationError, match="common syntax"):
            validate_regex(pattern)


@pytest.mark.django_db
def test_a_backtracking_regex_saved_before_the_check_is_not_applied_and_the_admin_says_why(caplog):
    """Rows saved before the admin refused such regexes (or written by SQL) stay stored but
    never run; the admin's rule list names the problem."""
    FailureRule.objects.create(name="slow", label="Slow one", message_regex=r"(a+)+$", order=0)
    FailureRule.objects.create(name="fine", label="Fine one", message_regex=r"over the .* limit", order=0)
    names = [rule.name for rule in active_rules()]
    assert "slow" not in names and "fine" in names
    assert "classification rule 'slow' is not applied" in caplog.text
    admin_row = FailureRuleAdmin(FailureRule, AdminSite())
    assert "backtrack" in admin_row.not_applied(FailureRule.objects.get(name="slow"))
    assert admin_row.not_applied(FailureRule.objects.get(name="fine")) == ""


@pytest.mark.parametrize(
    "pattern",
    [
        *(rule.message_regex for rule in BUILTIN_RULES if rule.message_regex),
        r"over the .* limit",
        r"(?:\d{1,3}\.){3}\d+",
        r"(?:foo|bar)+",
        r"\d+\s+ms",
        r"[a-z]+[0-9]+",
        r"\{\"status\": 5\d\d\}",
        r"error: (\w+)",
        r"(?=.*timeout)",
        r"(?:\w+\.)+py",  # each turn ends with a dot the \w+ inside cannot take
        r"(?:[^,]*,){3}",
        r"[^x]*x[^y]*y[^z]*z",  # each repeat stops where the next starts
        r"\d+\s\d+\s\d+",
        r"(.*) over (.*)",  # two repeats sharing the text: quadratic at most
    ],
)
def test_an_admin_can_save_the_regexes_rules_usually_hold(pattern):
    validate_regex(pattern)
