"""Hung and hostile targets, over real loopback sockets: every check ends within its
timeout (timeout_s + 1 s) and its size caps with a message that blames the target, never
"probe error"; evidence stays bounded however much the peer sends; a run that is stopped
(its consumer closes it, raises, or a worker's time limit ends it) stops its probe thread
and closes its sockets; and the engine stays usable afterwards."""

from __future__ import annotations

import json
import textwrap
import threading
import time

import pytest
from celery import current_app
from django.conf import settings

from probes.engine import CheckOutcome, run_checks
from probes.net import NetworkPolicy
from probes.runtime import RunTarget
from probes.suite.loader import parse_suite
from runs.models import RunStatus
from runs.services import create_run
from runs.suites import load_suite_text
from runs.tasks import EXECUTE_RUN_TASK
from tests import hostile
from tests.conftest import isolated_env, start_worker, stop_process, wait_for
from tests.factories import EnvironmentFactory
from tests.hostile import HostileServer, MiB, wait_until

SLACK_S = 1.0  # a check ends within timeout_s + this, whatever the peer does
WALL_SLACK_S = 5.0  # and the caller has it back within this (thread start, loaded machine)
CLOSE_SEEN_S = 10.0  # the server sees the client's sockets closed within this
EVIDENCE_CAP = 256 * 1024
LOOPBACK = NetworkPolicy(frozenset({"127.0.0.1"}))
PROBE_THREAD = "goldpath-probes"


def suite_of(checks: str) -> str:
    """A suite file around the given ``checks:`` entries (YAML, unindented)."""
    return "name: hostile\ncategories: [{name: Hostile}]\nchecks:\n" + textwrap.indent(textwrap.dedent(checks), "  ")


def one_check(steps: str, timeout_s: float = 5, check_id: str = "hostile") -> str:
    """One check of the given ``steps:`` entries (YAML, unindented)."""
    return (
        f"- id: {check_id}\n  name: {check_id}\n  category: Hostile\n  timeout_s: {timeout_s:g}\n  steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "    ")
    )


def probe(base_url: str, checks: str) -> tuple[list[CheckOutcome], float]:
    """Run every check of the suite against ``base_url``; the outcomes and the wall time."""
    model = parse_suite(suite_of(checks)).model
    started = time.monotonic()
    outcomes = list(run_checks(model.checks, RunTarget(model, base_url, policy=LOOPBACK)))
    return outcomes, time.monotonic() - started


def probe_one(server: HostileServer, steps: str, timeout_s: float = 5) -> tuple[CheckOutcome, float]:
    [outcome], took = probe(server.base_url, one_check(steps, timeout_s))
    return outcome, took


def assert_blames_the_target(outcome: CheckOutcome, code: str | tuple[str, ...]) -> None:
    """A failure (not an error) with a failure code of the target's, never the engine's."""
    assert outcome.outcome == "failed", (outcome.outcome, outcome.message)
    assert "probe error" not in outcome.message.lower(), outcome.message
    assert outcome.failure is not None and outcome.failure["code"] != "probe.error", outcome.failure
    codes = (code,) if isinstance(code, str) else code
    assert outcome.failure["code"].startswith(codes), (outcome.failure, outcome.message)


def assert_within(outcome: CheckOutcome, took: float, timeout_s: float) -> None:
    assert outcome.duration_s <= timeout_s + SLACK_S, (outcome.duration_s, outcome.message)
    assert took <= timeout_s + WALL_SLACK_S, took


def probe_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == PROBE_THREAD and t.is_alive()}


def connection(outcome: CheckOutcome, name: str = "ws") -> dict:
    return next(c for c in outcome.evidence["connections"] if c["name"] == name)


@pytest.fixture
def hostile_server():
    """Start hostile servers by behaviour: ``hostile_server(hostile.ws_flood)``."""
    servers: list[HostileServer] = []

    def start(behaviour) -> HostileServer:
        servers.append(HostileServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


WS_RECEIVE_NEVER = """\
- connect: {path: /ws}
- receive: {sequence: [{$.type: never-sent}]}
"""


# --- HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_step", "codes"),
    [
        ("- request: {path: /health}", "timeout."),  # the check's timeout ends it
        ("- request: {path: /health, timeout_s: 1}", "timeout.read"),  # the request's own
    ],
    ids=["check-timeout", "request-timeout"],
)
def test_a_server_that_accepts_and_never_answers_times_out(hostile_server, request_step, codes):
    server = hostile_server(hostile.never_answer)
    outcome, took = probe_one(server, request_step, timeout_s=2)
    assert_blames_the_target(outcome, codes)
    assert_within(outcome, took, 2)
    assert "timeout" in outcome.message and "did not" in outcome.message
    assert wait_until(server.all_closed, CLOSE_SEEN_S)


@pytest.mark.parametrize("behaviour", [hostile.endless_body, hostile.huge_body], ids=["no-length", "100-MiB"])
def test_a_body_over_the_cap_stops_at_1_mib(hostile_server, behaviour):
    server = hostile_server(behaviour)
    outcome, took = probe_one(server, "- request: {path: /download}", timeout_s=10)
    assert_blames_the_target(outcome, "http.too_large")
    assert "exceeds 1048576 bytes" in outcome.message
    assert_within(outcome, took, 10)
    assert wait_until(server.all_closed, CLOSE_SEEN_S)
    assert server.bytes_out() < 50 * MiB  # it stopped reading: the 100 MiB were never taken
    assert len(json.dumps(outcome.evidence)) <= EVIDENCE_CAP


def test_endless_headers_fail_in_time_as_a_protocol_error(hostile_server):
    server = hostile_server(hostile.endless_headers)
    outcome, took = probe_one(server, "- request: {path: /health}", timeout_s=5)
    assert_blames_the_target(outcome, ("http.protocol", "http.too_large", "timeout."))
    assert_within(outcome, took, 5)
    assert outcome.message.startswith("step 1 request: ")
    assert "headers are too long" in outcome.message
    assert wait_until(server.all_closed, CLOSE_SEEN_S)


# --- WebSocket ----------------------------------------------------------------------------


async def huge_frame_then_end(peer: hostile.Peer) -> None:
    """The 100 MiB frame, then the server ends its side of the TCP connection (FIN) and reads
    on until the client closes (as most servers would)."""
    await hostile.ws_huge_frame(peer)
    peer.writer.write_eof()


def test_a_100_mib_frame_is_refused_with_1009(hostile_server):
    server = hostile_server(huge_frame_then_end)
    outcome, took = probe_one(server, WS_RECEIVE_NEVER, timeout_s=10)
    assert_blames_the_target(outcome, "ws.too_large")
    assert "1048576-byte cap" in outcome.message and "1009" in outcome.message
    assert_within(outcome, took, 10)
    record = connection(outcome)
    assert (record["close_code"], record["close_initiator"]) == (1009, "client")
    assert [peer.close_code_from_client() for peer in server.peers] == [1009]  # the close frame it sent


def test_a_100_mib_frame_from_a_server_that_ignores_the_close_is_refused_with_1009(hostile_server):
    server = hostile_server(hostile.ws_huge_frame)  # streams the frame, then stays open, silent
    outcome, took = probe_one(server, WS_RECEIVE_NEVER, timeout_s=10)
    assert_blames_the_target(outcome, ("ws.too_large", "timeout."))
    assert_within(outcome, took, 10)
    assert [peer.close_code_from_client() for peer in server.peers] == [1009]
    assert outcome.failure["code"] == "ws.too_large", outcome.message
    assert "1048576-byte cap" in outcome.message and "1009" in outcome.message
    assert connection(outcome)["close_code"] == 1009
    assert outcome.duration_s < 5  # the close timeout (1 s), not the check's 10 s


@pytest.mark.parametrize(
    ("payload", "at_least"),
    [('{"type": "tick", "n": 1}', 1000), (json.dumps({"type": "tick", "pad": "p" * 60_000}), 100)],
    ids=["small-frames", "60-KiB-frames"],
)
def test_a_frame_flood_ends_at_the_timeout_with_bounded_evidence(hostile_server, payload, at_least):
    server = hostile_server(hostile.ws_flood_of(payload))
    outcome, took = probe_one(server, WS_RECEIVE_NEVER, timeout_s=3)
    assert_blames_the_target(outcome, "timeout.")
    assert_within(outcome, took, 3)
    assert len(json.dumps(outcome.evidence)) <= EVIDENCE_CAP
    record = connection(outcome)
    assert record["frames_in"] >= at_least, record["frames_in"]  # thousands of frames were read …
    assert len(record["frames"]) <= 50  # … 50 at most kept, each cut short …
    assert all(len(frame["text"]) <= 300 for frame in record["frames"])
    assert record["frames_dropped"] > 0  # … and the rest counted as dropped
    assert len(record["frames"]) + record["frames_dropped"] >= record["frames_in"]
    assert record["bytes_in"] >= record["frames_in"] * len(payload)


def test_a_flood_on_one_check_does_not_starve_another(hostile_server, target):
    """Both checks run in one event loop: the well-behaved one still finishes promptly."""
    flood = hostile_server(hostile.ws_flood)
    checks = one_check(WS_RECEIVE_NEVER, timeout_s=10, check_id="flooded") + one_check(
        f"""\
        - sleep: {{ms: 1000}}
        - request: {{url: "{target.base_url}/health", auth: none}}
          expect: {{status: 200, json: {{$.status: healthy}}}}
        - sleep: {{ms: 200}}
        - request: {{url: "{target.base_url}/health", auth: none}}
        """,
        timeout_s=10,
        check_id="polite",
    )
    model = parse_suite(suite_of(checks)).model
    started = time.monotonic()
    arrivals: list[tuple[str, float, CheckOutcome]] = []
    for outcome in run_checks(model.checks, RunTarget(model, flood.base_url, policy=LOOPBACK)):
        arrivals.append((outcome.check_id, time.monotonic() - started, outcome))
    assert [check_id for check_id, _, _ in arrivals] == ["polite", "flooded"]
    _, polite_at, polite = arrivals[0]
    assert polite.outcome == "passed", polite.message
    assert polite.duration_s < 6 and polite_at < 7  # 1.2 s of sleeps; far before the flood's 10 s
    _, flooded_at, flooded = arrivals[1]
    assert_blames_the_target(flooded, "timeout.")
    assert_within(flooded, flooded_at, 10)
    assert connection(flooded)["frames_in"] >= 1000  # it really was flooded meanwhile


def test_a_frame_that_is_not_json_fails_quoting_its_start(hostile_server):
    server = hostile_server(hostile.ws_sends("this is not json: <html>" + "z" * 5000))
    outcome, took = probe_one(server, WS_RECEIVE_NEVER)
    assert_blames_the_target(outcome, "ws.not_json")
    assert "frame 1 on 'ws' is not JSON" in outcome.message
    assert "this is not json: <html>" in outcome.message
    assert len(outcome.message) < 1000  # the start of the frame, not all of it
    assert_within(outcome, took, 5)


def test_a_json_array_where_paths_expect_an_object_fails_as_not_json(hostile_server):
    server = hostile_server(hostile.ws_sends("[1, 2, 3]"))
    outcome, took = probe_one(server, "- connect: {path: /ws}\n- receive: {sequence: [{$.x: 1}]}\n")
    assert_blames_the_target(outcome, "ws.not_json")
    assert "JSON but not an object" in outcome.message and "[1, 2, 3]" in outcome.message
    assert_within(outcome, took, 5)


def test_a_server_that_drops_the_connection_without_a_close_frame_is_named_1006(hostile_server):
    server = hostile_server(hostile.ws_drop_without_close_frame)
    outcome, took = probe_one(server, WS_RECEIVE_NEVER)
    assert_blames_the_target(outcome, "ws.closed")
    assert "closed by the server with code 1006" in outcome.message
    assert "no close frame" in outcome.message
    assert_within(outcome, took, 5)
    record = connection(outcome)
    assert (record["close_code"], record["close_initiator"]) == (1006, "server")


def test_a_check_whose_timeout_cuts_its_close_short_still_closes_its_socket(hostile_server):
    server = hostile_server(hostile.ws_sends())  # silent, and never answers the close frame
    steps = "- connect: {path: /ws}\n- receive: {within_s: 2.5, sequence: [{$.type: never-sent}]}\n"
    outcome, took = probe_one(server, steps, timeout_s=3)
    assert_blames_the_target(outcome, "timeout.")
    assert_within(outcome, took, 3)
    assert wait_until(server.all_closed, CLOSE_SEEN_S), "the probe's socket is still open"
    assert outcome.failure["code"] == "timeout.receive", outcome.message


# --- Server-Sent Events -------------------------------------------------------------------

SSE_RECEIVE = """\
- stream: {{path: /events}}
- receive: {{on: stream, within_s: {within}, sequence: [{{$.event: never-sent}}]}}
"""


def test_a_stream_of_heartbeats_only_times_out_the_receive(hostile_server):
    server = hostile_server(hostile.sse_heartbeats)
    outcome, took = probe_one(server, SSE_RECEIVE.format(within=1), timeout_s=10)
    assert_blames_the_target(outcome, "timeout.receive")
    assert "event 1 of 1" in outcome.message and "not seen within" in outcome.message
    assert outcome.duration_s <= 1 + SLACK_S + 1  # the receive's 1 s, then the stream's close
    assert took <= 1 + WALL_SLACK_S
    assert wait_until(server.all_closed, CLOSE_SEEN_S)


def test_an_event_over_the_stream_cap_fails_as_too_large(hostile_server):
    server = hostile_server(hostile.sse_huge_event)
    outcome, took = probe_one(server, SSE_RECEIVE.format(within=20), timeout_s=30)
    assert_blames_the_target(outcome, "sse.too_large")
    assert "exceeds 8388608 bytes" in outcome.message
    assert_within(outcome, took, 30)
    assert wait_until(server.all_closed, CLOSE_SEEN_S)
    assert server.bytes_out() < 50 * MiB  # it stopped reading long before the 100 MiB
    assert len(json.dumps(outcome.evidence)) <= EVIDENCE_CAP


def test_a_response_that_is_not_an_event_stream_fails_as_such(hostile_server):
    server = hostile_server(hostile.json_not_event_stream)
    outcome, took = probe_one(server, SSE_RECEIVE.format(within=1))
    assert_blames_the_target(outcome, "sse.not_event_stream")
    assert "application/json, not text/event-stream" in outcome.message
    assert_within(outcome, took, 5)


# --- Stopping a run -----------------------------------------------------------------------


class StopHere(Exception):
    pass


@pytest.mark.parametrize("how", ["close", "raise"])
def test_a_stopped_run_ends_its_probe_thread_and_closes_its_sockets(hostile_server, how):
    flood = hostile_server(hostile.ws_flood)
    silent = hostile_server(hostile.never_answer)
    checks = (
        one_check(WS_RECEIVE_NEVER, timeout_s=120, check_id="flooded")
        + one_check(f'- request: {{url: "{silent.base_url}/health"}}\n', timeout_s=120, check_id="hung")
        + one_check("- sleep: {ms: 1500}\n", timeout_s=120, check_id="quick")
    )
    model = parse_suite(suite_of(checks)).model
    target = RunTarget(model, flood.base_url, policy=LOOPBACK)
    before = probe_threads()
    first, mine = None, set()
    if how == "close":
        outcomes = run_checks(model.checks, target)
        first = next(outcomes)
        mine = probe_threads() - before
        stopping = time.monotonic()
        outcomes.close()
    else:  # the generator is only the loop's: the exception leaving the loop closes it
        with pytest.raises(StopHere):
            for outcome in run_checks(model.checks, target):
                first = outcome
                mine = probe_threads() - before
                stopping = time.monotonic()
                raise StopHere
    assert len(mine) == 1
    assert first is not None and first.check_id == "quick" and first.outcome == "passed"
    assert flood.peers and silent.peers  # both hostile checks were connected when it stopped
    assert wait_until(lambda: not any(t.is_alive() for t in mine), 15), "the probe thread still runs"
    assert wait_until(flood.all_closed, CLOSE_SEEN_S), "the flooded WebSocket is still open"
    assert wait_until(silent.all_closed, CLOSE_SEEN_S), "the hung HTTP connection is still open"
    assert time.monotonic() - stopping < 25
    taken = flood.bytes_out(), silent.bytes_in()
    time.sleep(1)
    assert (flood.bytes_out(), silent.bytes_in()) == taken  # nobody reads or writes any more
    assert len(flood.peers) == 1 and len(silent.peers) == 1  # and nothing reconnected


@pytest.mark.django_db(transaction=True)
def test_a_worker_time_limit_ends_the_run_and_closes_the_probes_sockets(hostile_server, tmp_path, monkeypatch):
    """A real Celery worker, GOLDPATH_RUN_TIME_LIMIT=3, a check that would flood for 120 s."""
    flood = hostile_server(hostile.ws_flood)
    env = isolated_env(tmp_path, GOLDPATH_RUN_TIME_LIMIT="3")
    # The worker reads this process's broker (the same data directory) but a queue of its own,
    # so no other worker of the session can take the run.
    env["GOLDPATH_DATA_DIR"] = str(settings.DATA_DIR)
    queue = env["GOLDPATH_QUEUE"]
    monkeypatch.setattr(
        "runs.services.dispatch_run",
        lambda run, raise_error=True: current_app.send_task(
            EXECUTE_RUN_TASK, args=[run.pk], queue=queue, time_limit=None, soft_time_limit=None
        ),
    )
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        suite = load_suite_text(
            suite_of(one_check(WS_RECEIVE_NEVER, timeout_s=120, check_id="flooded")), "hostile.yaml"
        )
        environment = EnvironmentFactory(base_url=flood.base_url, allowed_hosts="127.0.0.1")
        run = wait_for(create_run(suite, environment), timeout=90)
        assert run.status == RunStatus.ERROR, (run.status, run.status_message)
        assert "time limit" in run.status_message
        assert flood.peers, "the worker never connected"
        assert flood.bytes_out() > MiB  # it was flooded before the limit
        assert wait_until(flood.all_closed, CLOSE_SEEN_S), "the worker left the flooded socket open"
        taken = flood.bytes_out()
        time.sleep(2)
        assert flood.bytes_out() == taken  # no more reads after the run ended
        assert len(flood.peers) == 1  # and no reconnection
        assert (run.finished_at - run.started_at).total_seconds() < 30  # the 3 s limit, not the 120 s check
    finally:
        stop_process(worker)


# --- Afterwards ---------------------------------------------------------------------------


def test_the_engine_still_works_after_hostile_targets(hostile_server, target):
    before = probe_threads()
    for behaviour, steps in (
        (hostile.never_answer, "- request: {path: /health}\n"),
        (hostile.endless_body, "- request: {path: /health}\n"),
        (huge_frame_then_end, WS_RECEIVE_NEVER),
        (hostile.ws_flood, WS_RECEIVE_NEVER),
    ):
        outcome, _ = probe_one(hostile_server(behaviour), steps, timeout_s=2)
        assert_blames_the_target(outcome, ("timeout.", "http.too_large", "ws.too_large"))
    [outcome], _ = probe(
        target.base_url,
        one_check(
            "- request: {path: /health, auth: none}\n  expect: {status: 200, json: {$.status: healthy}}\n",
            check_id="health",
        ),
    )
    assert outcome.outcome == "passed", outcome.message
    assert probe_threads() - before == set()  # every run's thread ended with it
