"""Analysis over one run or several: flakiness, MRR at risk, comparison, critical metrics,
failure patterns. Pure functions, no database."""

from runs.analysis.classification import BUILTIN_RULES, UNCLASSIFIED
from runs.analysis.comparison import compare_runs
from runs.analysis.critical_metrics import critical_metrics
from runs.analysis.facts import MetricFacts, ResultFacts
from runs.analysis.flakiness import MIN_RUNS, flip_rate, is_flaky
from runs.analysis.mrr import mrr_at_risk
from runs.analysis.patterns import failure_patterns

LABELS = {rule.name: rule.label for rule in BUILTIN_RULES} | {UNCLASSIFIED: "Unclassified failure"}  # as class_labels()
SEED_MESSAGE = (
    "step 3 receive: connection 'ws' closed by the server with code 1000 (main cleanup) {:.3f} s after the first "
    "message, before frame 1 of 5 ({{$.type: agent_started}}); seen: nothing"
)


def fact(name="Check", outcome="passed", node_id=None, declares="http", impact=(), failure_class="", **extra):
    return ResultFacts(
        name=name,
        category=extra.pop("category", "Critical Path"),
        outcome=outcome,
        duration_s=extra.pop("duration_s", 0.1),
        node_id=node_id or name.lower().replace(" ", "_"),
        declares=declares,
        impact=tuple(impact),
        failure_class=failure_class,
        **extra,
    )


def metric(key, p95, ok=None, name=None):
    return MetricFacts(key, name or key.replace("_", " ").title(), 100.0, None if p95 is None else p95 / 2, p95, ok)


# -- flakiness -------------------------------------------------------------------


def test_flip_rate_of_no_runs_or_one_run_is_zero():
    assert flip_rate([]) == 0.0
    assert flip_rate(["failed"]) == 0.0


def test_flip_rate_counts_changes_between_consecutive_runs():
    assert flip_rate(["passed", "failed", "passed", "failed"]) == 1.0
    assert flip_rate(["passed", "passed", "failed"]) == 0.5
    assert flip_rate(["passed", "passed", "passed", "failed"]) == 0.333


def test_flip_rate_leaves_skipped_runs_out():
    assert flip_rate(["passed", "skipped", "passed", "skipped"]) == 0.0
    assert flip_rate(["passed", "skipped", "failed"]) == 1.0


def test_flip_rate_treats_an_error_like_a_failure():
    assert flip_rate(["failed", "error", "failed", "error"]) == 0.0


def test_a_test_that_flips_is_flaky():
    assert is_flaky(["passed", "failed", "passed", "failed", "passed", "failed"])


def test_a_test_that_always_fails_is_not_flaky():
    assert not is_flaky(["failed"] * 6)


def test_a_test_that_always_passes_is_not_flaky():
    assert not is_flaky(["passed"] * 6)


def test_a_test_with_too_few_runs_is_not_flaky():
    assert MIN_RUNS == 4
    assert not is_flaky(["passed", "failed", "passed"])
    assert not is_flaky(["passed", "skipped", "failed", "skipped", "passed", "skipped"])


def test_a_test_that_flipped_once_in_many_runs_is_not_flaky():
    assert not is_flaky(["passed"] * 9 + ["failed"])  # 1 flip in 9 pairs, under 20 %


# -- MRR at risk -----------------------------------------------------------------

TAG_MRR = {"Chat": 200_000, "WebSocket Events": 80_000, "Infrastructure": 20_000}


def test_a_tag_is_counted_once_however_many_of_its_checks_fail():
    results = [
        fact("WebSocket Message Send", "failed", impact=["Chat"]),
        fact("Real-time Updates", "failed", impact=["Chat"]),
        fact("End-to-end Message Flow", "failed", impact=["Chat"]),
    ]
    risk = mrr_at_risk(results, TAG_MRR)
    assert risk.total == 200_000
    assert [(a.name, len(a.failing_checks)) for a in risk.at_risk] == [("Chat", 3)]


def test_a_tag_is_at_risk_if_any_of_its_checks_fails():
    results = [
        fact("WebSocket Message Send", "failed", impact=["Chat", "WebSocket Events"]),
        fact("Message Endpoints", "passed", impact=["Chat"]),
        fact("Backend Health Check", "passed", impact=["Infrastructure"]),
    ]
    risk = mrr_at_risk(results, TAG_MRR)
    assert [a.name for a in risk.at_risk] == ["Chat", "WebSocket Events"]  # highest MRR first
    assert [a.name for a in risk.working] == ["Infrastructure"]
    assert risk.total == 280_000
    assert risk.in_scope == 300_000
    chat = risk.at_risk[0]
    assert (chat.failing_checks, chat.passing_checks) == (("WebSocket Message Send",), ("Message Endpoints",))


def test_an_error_puts_a_tag_at_risk_like_a_failure():
    assert mrr_at_risk([fact("Backend Health Check", "error", impact=["Infrastructure"])], TAG_MRR).total == 20_000


def test_skipped_checks_neither_risk_nor_save_a_tag():
    results = [
        fact("Backend Health Check", "skipped", impact=["Infrastructure"]),
        fact("Message Endpoints", "passed", impact=["Chat"]),
        fact("Real-time Updates", "skipped", impact=["Chat"]),
    ]
    risk = mrr_at_risk(results, TAG_MRR)
    assert risk.total == 0
    assert risk.at_risk == []
    assert [a.name for a in risk.working] == ["Chat"]
    assert risk.working[0].passing_checks == ("Message Endpoints",)


def test_a_tag_without_a_known_mrr_counts_zero():
    risk = mrr_at_risk([fact("Odd Check", "failed", impact=["Unpriced"])], TAG_MRR)
    assert (risk.total, [a.name for a in risk.at_risk]) == (0, ["Unpriced"])


def test_no_failures_means_nothing_at_risk():
    risk = mrr_at_risk([fact("Backend Health Check", impact=["Infrastructure"]), fact("Untagged")], TAG_MRR)
    assert (risk.total, risk.in_scope, risk.at_risk) == (0, 20_000, [])


# -- comparison -------------------------------------------------------------------


def test_it_sorts_checks_into_new_failures_fixed_and_still_failing():
    before = [fact("A"), fact("B", "failed"), fact("C", "failed"), fact("D")]
    after = [fact("A", "failed"), fact("B"), fact("C", "error"), fact("D")]
    comparison = compare_runs(before, after)
    assert comparison.new_failures == ["A"]
    assert comparison.fixed == ["B"]
    assert comparison.still_failing == ["C"]
    assert (comparison.added, comparison.removed, comparison.regressions) == ([], [], [])


def test_it_lists_checks_added_and_removed_between_runs():
    comparison = compare_runs([fact("A"), fact("Old", "failed")], [fact("A"), fact("New", "failed")])
    assert comparison.added == ["New"]
    assert comparison.removed == ["Old"]
    assert comparison.new_failures == []  # "New" was not in the earlier run to break


def test_a_failure_that_is_skipped_next_time_is_not_fixed():
    comparison = compare_runs([fact("A", "failed")], [fact("A", "skipped")])
    assert comparison.fixed == []


def test_it_reports_a_p95_regression_over_20_percent_and_5_ms():
    comparison = compare_runs(
        [fact("Perf")], [fact("Perf")], [metric("api_response", 40.0)], [metric("api_response", 50.0)]
    )
    [regression] = comparison.regressions
    assert (regression.key, regression.before, regression.after) == ("api_response", 40.0, 50.0)


def test_a_small_absolute_change_on_loopback_is_not_a_regression():
    comparison = compare_runs([], [], [metric("websocket_latency", 0.5)], [metric("websocket_latency", 3.0)])
    assert comparison.regressions == []  # 6× slower, but only 2.5 ms


def test_a_large_absolute_change_under_20_percent_is_not_a_regression():
    comparison = compare_runs([], [], [metric("total_request", 400.0)], [metric("total_request", 470.0)])
    assert comparison.regressions == []


def test_a_change_of_exactly_20_percent_is_not_a_regression():
    comparison = compare_runs([], [], [metric("agent_startup", 100.0)], [metric("agent_startup", 120.0)])
    assert comparison.regressions == []


def test_a_metric_unmeasured_on_either_side_is_not_compared():
    before = [metric("agent_startup", None), metric("api_response", 10.0)]
    after = [metric("agent_startup", 2000.0), metric("api_response", None), metric("new_metric", 900.0)]
    assert compare_runs([], [], before, after).regressions == []


def test_a_faster_run_has_no_regression():
    assert compare_runs([], [], [metric("api_response", 150.0)], [metric("api_response", 20.0)]).regressions == []


# -- critical metrics --------------------------------------------------------------

SEED_DEFINITIONS = [
    {"name": "API Endpoint Success", "count": "requests", "checks": ["backend_health", "critical_endpoints"]},
    {
        "name": "WebSocket Message Flow",
        "checks": ["websocket_message_send", "agent_execution_flow", "realtime_updates"],
    },
    {"name": "Performance Targets", "count": "measurements"},
]


def answered(*statuses):
    return {"requests": [{"method": "GET", "url": "http://127.0.0.1:8765/x", "status": s} for s in statuses]}


def test_a_checks_metric_counts_passing_checks_and_names_the_failing_ones():
    results = [
        fact("WebSocket Message Send", "failed", node_id="websocket_message_send"),
        fact("Agent Execution Flow", "passed", node_id="agent_execution_flow"),
        fact("Real-time Updates", "error", node_id="realtime_updates"),
    ]
    [row] = critical_metrics(SEED_DEFINITIONS[1:2], results)
    assert (row.name, row.passed, row.total, row.ok) == ("WebSocket Message Flow", 1, 3, False)
    assert row.detail == "failing: WebSocket Message Send, Real-time Updates"


def test_a_checks_metric_leaves_out_skipped_checks_and_checks_not_in_the_run():
    results = [
        fact("WebSocket Message Send", "passed", node_id="websocket_message_send"),
        fact("Agent Execution Flow", "skipped", node_id="agent_execution_flow"),
    ]
    [row] = critical_metrics(SEED_DEFINITIONS[1:2], results)
    assert (row.passed, row.total, row.ok, row.detail) == (1, 1, True, "")


def test_a_metric_none_of_whose_checks_ran_is_left_out():
    results = [fact("WebSocket Message Send", "skipped", node_id="websocket_message_send")]
    assert critical_metrics(SEED_DEFINITIONS[1:2], results) == []


def test_a_requests_metric_counts_2xx_answers_out_of_the_defined_requests():
    results = [
        fact("Backend Health Check", node_id="backend_health", evidence=answered(200)),
        # critical_endpoints defines 5 requests; the second one answered 500 and the check stopped there
        fact("Critical API Endpoints", "failed", node_id="critical_endpoints", evidence=answered(200, 500)),
    ]
    [row] = critical_metrics(
        SEED_DEFINITIONS[:1], results, defined_requests={"backend_health": 1, "critical_endpoints": 5}
    )
    assert (row.name, row.passed, row.total) == ("API Endpoint Success", 2, 6)
    assert row.detail == "endpoints answering"


def test_a_requests_metric_counts_every_201_and_no_3xx_or_4xx():
    results = [fact("Backend Health Check", node_id="backend_health", evidence=answered(201, 204, 301, 404))]
    [row] = critical_metrics(SEED_DEFINITIONS[:1], results)
    assert (row.passed, row.total) == (2, 4)  # without definitions the requests seen are the total


def test_a_requests_metric_of_a_healthy_seed_run_is_8_of_8():
    definitions = [{"name": "API", "count": "requests", "checks": ["a", "b", "c"]}]
    results = [
        fact("A", node_id="a", evidence=answered(200)),
        fact("B", node_id="b", evidence=answered(200, 200)),
        fact("C", node_id="c", evidence=answered(200, 200, 200, 200, 200)),
    ]
    [row] = critical_metrics(definitions, results, defined_requests={"a": 1, "b": 2, "c": 5})
    assert (row.passed, row.total, row.ok) == (8, 8, True)


def test_a_measurements_metric_counts_targets_met_and_says_what_was_not_measured():
    metrics = [
        metric("api_response", 12.0, ok=True),
        metric("websocket_latency", 0.4, ok=True),
        metric("agent_startup", None),
        metric("message_processing", None),
        metric("total_request", 1300.0, ok=False),
    ]
    [row] = critical_metrics(SEED_DEFINITIONS[2:], [], metrics)
    assert (row.name, row.passed, row.total, row.ok) == ("Performance Targets", 2, 5, False)
    assert row.detail == "2 not measured"


def test_a_measurements_metric_with_everything_measured_has_no_detail():
    [row] = critical_metrics(SEED_DEFINITIONS[2:], [], [metric("api_response", 12.0, ok=True)])
    assert (row.passed, row.total, row.detail, row.rate) == (1, 1, "", 1.0)


def test_critical_metrics_keep_the_definition_order():
    results = [
        fact("Backend Health Check", node_id="backend_health", evidence=answered(200)),
        fact("WebSocket Message Send", node_id="websocket_message_send"),
    ]
    rows = critical_metrics(SEED_DEFINITIONS, results, [metric("api_response", 12.0, ok=True)])
    assert [r.name for r in rows] == ["API Endpoint Success", "WebSocket Message Flow", "Performance Targets"]


# -- failure patterns --------------------------------------------------------------


def ws_connection(name="ws", **extra):
    return {"name": name, "type": "websocket", "url": "ws://127.0.0.1:8765/ws", "handshake_status": 101, **extra}


def answered_request(status=200, path="/health"):
    return {"method": "GET", "url": f"http://127.0.0.1:8765{path}", "status": status}


def seed_failure(name, node_id, connection="ws", after_ms=14.0):
    record = ws_connection(
        connection,
        close_code=1000,
        close_reason="main cleanup",
        close_initiator="server",
        closed_after_send_ms=after_ms,
    )
    details = {"close_code": 1000, "initiator": "server", "after_send": True}
    return fact(
        name,
        "failed",
        node_id=node_id,
        declares="ws",
        category="Message Flow",
        failure_class="ws-closed-1000-after-send",
        message=SEED_MESSAGE.format(after_ms / 1000),
        evidence={"connections": [record], "failure": {"code": "ws.closed", "step": 3, "details": details}},
    )


def seed_run():
    """The seed: 9 checks pass, the three that send a message see the server close with 1000."""
    return [
        fact("Backend Health Check", node_id="backend_health", evidence={"requests": [answered_request()]}),
        fact(
            "API Authentication",
            declares="auth http",
            node_id="api_authentication",
            evidence={"requests": [answered_request(401)], "auth_enforced": True},
        ),
        fact(
            "WebSocket Connection",
            declares="auth ws",
            node_id="websocket_connection",
            evidence={"connections": [ws_connection()]},
        ),
        seed_failure("WebSocket Message Send", "websocket_message_send", after_ms=14.0),
        seed_failure("Agent Execution Flow", "agent_execution_flow", after_ms=13.0),
        seed_failure("Real-time Updates", "realtime_updates", connection="subscriber", after_ms=12.0),
    ]


def test_the_seed_failure_is_one_pattern_over_three_checks():
    [pattern] = failure_patterns(seed_run(), LABELS)
    assert pattern.failure_class == "ws-closed-1000-after-send"
    assert pattern.label == "WebSocket closed normally (1000) right after send"
    assert pattern.checks == ("WebSocket Message Send", "Agent Execution Flow", "Real-time Updates")


def test_the_seed_paragraph_says_code_reason_timing_and_which_checks():
    [pattern] = failure_patterns(seed_run(), LABELS)
    summary = pattern.summary
    assert "code 1000 (main cleanup)" in summary
    assert "about 13 ms after the client's first message" in summary  # the median of 12, 13 and 14 ms
    assert "3 checks affected: WebSocket Message Send, Agent Execution Flow and Real-time Updates." in summary
    assert summary.startswith(
        "WebSocket connections opened, authentication succeeded, HTTP endpoints answered; then the server closed"
    )
    assert "points at the server's message handler" in summary


def test_a_paragraph_names_the_first_ten_checks_and_counts_the_rest():
    failures = [fact(f"Check {i}", "failed", failure_class="assertion") for i in range(1_429)]
    [pattern] = failure_patterns(failures, LABELS)
    assert "1429 checks affected: Check 0, Check 1, Check 2," in pattern.summary
    assert "Check 9 and 1,419 more." in pattern.summary and "Check 10," not in pattern.summary
    assert len(pattern.checks) == 1_429


def test_a_1011_paragraph_gives_the_code_without_the_normal_close_hint():
    result = fact(
        "WebSocket Message Send",
        "failed",
        declares="ws",
        failure_class="ws-1011-server-error",
        evidence={
            "connections": [ws_connection(close_code=1011, close_reason="internal error", close_initiator="server")],
            "failure": {"code": "ws.closed", "details": {"close_code": 1011, "initiator": "server"}},
        },
    )
    [pattern] = failure_patterns([result], LABELS)
    # Its own handshake worked: the paragraph says so before the close.
    assert pattern.summary.startswith(
        "WebSocket connections opened; then the server closed the connection with code 1011 (internal error)."
    )
    assert "1 check affected: WebSocket Message Send." in pattern.summary
    assert "message handler" not in pattern.summary
    assert "after the client's first message" not in pattern.summary


def test_a_connection_refused_paragraph_names_host_and_port():
    refused = {
        "requests": [{"method": "GET", "url": "http://127.0.0.1:9/health", "remote_ip": "127.0.0.1"}],
        "failure": {"code": "net.refused", "details": {}},
    }
    results = [
        fact("Backend Health Check", "failed", failure_class="connection-refused", evidence=refused),
        fact("API Authentication", "failed", declares="auth http", failure_class="connection-refused", evidence={}),
    ]
    [pattern] = failure_patterns(results, LABELS)
    assert pattern.summary.startswith("Nothing was listening at 127.0.0.1:9: connections were refused.")
    assert "2 checks affected: Backend Health Check and API Authentication." in pattern.summary


def test_patterns_are_grouped_by_class_largest_first():
    results = [
        fact("A", "failed", failure_class="http-5xx", message="GET /a answered HTTP 500, expected 200"),
        fact("B", "failed", failure_class="frame-missing", message="frame 4 of 5 not seen by the time 5 arrived"),
        fact("C", "failed", failure_class="http-5xx", message="GET /c answered HTTP 503, expected 200"),
        fact("D", "passed"),
        fact("E", "error", failure_class="http-5xx", message="GET /e answered HTTP 502, expected 200"),
    ]
    patterns = failure_patterns(results, LABELS)
    assert [(p.failure_class, p.checks) for p in patterns] == [
        ("http-5xx", ("A", "C", "E")),
        ("frame-missing", ("B",)),
    ]


def test_a_generic_paragraph_quotes_the_first_message():
    results = [
        fact("Message Endpoints", "passed", evidence={"requests": [answered_request()]}),
        fact(
            "Critical API Endpoints",
            "failed",
            failure_class="http-5xx",
            message="GET /api/mcp/config answered HTTP 500, expected 200\nsecond line",
        ),
    ]
    [pattern] = failure_patterns(results, LABELS)
    assert pattern.summary == (
        "HTTP endpoints answered; http 5xx from the server: “GET /api/mcp/config answered HTTP 500, expected 200”. "
        "1 check affected: Critical API Endpoints."
    )


def test_a_failure_without_a_class_is_grouped_as_unclassified():
    [pattern] = failure_patterns([fact("X", "error", message="probe error: RuntimeError: boom")], LABELS)
    assert (pattern.failure_class, pattern.label) == ("unclassified", "Unclassified failure")


def test_a_run_without_failures_has_no_patterns():
    assert failure_patterns([fact("A"), fact("B", "skipped")], LABELS) == []


def test_a_slow_close_is_timed_in_seconds():
    results = [seed_failure("WebSocket Message Send", "websocket_message_send", after_ms=1250.0)]
    [pattern] = failure_patterns(results, LABELS)
    assert "about 1.25 s after the client's first message" in pattern.summary
