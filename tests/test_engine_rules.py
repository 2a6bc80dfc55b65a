"""What the engine promises about time, teardown, saved values, secrets and untrusted
answers, against a loopback aiohttp service whose answers each test picks (compressed
bodies, redirects, deep JSON, echoed secrets)."""

from __future__ import annotations

import gzip
import json

import pytest
from aiohttp import web

from probes.evidence import CUT, REDACTED, Evidence, Limits, Redactor
from probes.suite.loader import SuiteFileError
from runs.tasks import suite_may_read
from tests.engine import one_check, probe, suite_of
from tests.servers.loopback import AppServer

SECRET = "tok-9f8e7d6c5b4a3210"
QUOTED_SECRET = 'se"cr\\et-5678'  # JSON text spells it se\"cr\\et-5678
DELETED = web.AppKey("deleted", list)
HITS = web.AppKey("hits", list)


def service() -> web.Application:
    app = web.Application()
    app[DELETED] = []
    app[HITS] = []

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        app[HITS].append(request.path)
        return await handler(request)

    app.middlewares.append(count)

    async def gzip_json(request: web.Request) -> web.Response:
        body = gzip.compress(json.dumps({"ok": True, "items": [{"x": 2}]}).encode())
        return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    async def gzip_bomb(request: web.Request) -> web.Response:
        body = gzip.compress(b"0" * (8 * 1024 * 1024))  # 8 MiB once decoded, a few KiB on the wire
        return web.Response(body=body, headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})

    async def gzip_events(request: web.Request) -> web.Response:
        body = gzip.compress(b"event: hello\ndata: {}\n\n")
        return web.Response(body=body, headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"})

    async def deep(request: web.Request) -> web.Response:
        return web.Response(text="[" * 200_000 + "]" * 200_000, content_type="application/json")

    async def host(request: web.Request) -> web.Response:
        return web.json_response({"host": request.headers.get("Host")})

    async def echo_headers(request: web.Request) -> web.Response:
        return web.json_response(dict(request.headers))

    async def padded(request: web.Request) -> web.Response:
        # The secret straddles the 500-character excerpt the evidence keeps of a body.
        return web.Response(text="x" * 495 + request.headers["X-Secret"] + "y" * 600)

    async def create_item(request: web.Request) -> web.Response:
        return web.json_response({"id": "item-7"}, status=201)

    async def delete_item(request: web.Request) -> web.Response:
        app[DELETED].append(request.match_info["id"])
        return web.Response(status=204)

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": SECRET})

    async def feed(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:  # says nothing, ever
            pass
        return ws

    async def feed_moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"ws://{request.host}/feed")

    for path, handler in [
        ("/gzip-json", gzip_json),
        ("/gzip-bomb", gzip_bomb),
        ("/gzip-events", gzip_events),
        ("/deep", deep),
        ("/host", host),
        ("/echo-headers", echo_headers),
        ("/padded", padded),
        ("/status/{code}", status),
        ("/feed", feed),
        ("/feed-moved", feed_moved),
    ]:
        app.router.add_get(path, handler)
    app.router.add_post("/items", create_item)
    app.router.add_post("/token", token)
    app.router.add_delete("/items/{id}", delete_item)
    return app


@pytest.fixture(scope="module")
def server():
    with AppServer(service()) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_records(server):
    server.app[DELETED].clear()
    server.app[HITS].clear()


def check_of(server: AppServer, steps: str, **options: object) -> tuple:
    """The one check's outcome, and the check's evidence as stored text."""
    extra = options.pop("extra", "")
    check = options.pop("check", "")
    outcome = probe(one_check(steps, extra=str(extra), check=str(check)), server.base_url, **options)["c"]
    return outcome, json.dumps(outcome.evidence)


# --- untrusted answers ---


def test_a_gzip_answer_is_decoded_before_matching(server):
    outcome, _ = check_of(server, "      - request: {path: /gzip-json}\n        expect: {json: {$.ok: true}}\n")
    assert outcome.outcome == "passed", outcome.message


def test_a_compressed_body_is_capped_at_its_decoded_size(server):
    outcome, _ = check_of(server, "      - request: {path: /gzip-bomb}\n")
    assert outcome.failure["code"] == "http.too_large", outcome.message


def test_a_compressed_event_stream_is_refused_as_not_bounded(server):
    outcome, _ = check_of(server, "      - stream: {path: /gzip-events}\n")
    assert outcome.failure["code"] == "sse.not_event_stream", outcome.message
    assert "gzip-compressed" in outcome.message


def test_json_nested_deeper_than_python_follows_is_not_json(server):
    outcome, _ = check_of(server, "      - request: {path: /deep}\n        expect: {json: {'$[0]': {exists: true}}}\n")
    assert outcome.outcome == "failed"
    assert outcome.failure["code"] == "http.not_json", outcome.message


def test_a_host_header_is_refused_at_load():
    with pytest.raises(SuiteFileError, match="(?i)host"):
        suite_of(one_check("      - request: {path: /host, headers: {Host: internal.example}}\n"))


def test_a_templated_host_header_is_dropped_so_the_checked_host_is_the_one_asked(server):
    steps = "      - request: {path: /host, headers: {'${name}': internal.example}}\n"
    steps += f"        expect: {{json: {{$.host: '127.0.0.1:{server.port}'}}}}\n"
    outcome, _ = check_of(server, steps, check="    vars: {name: Host}\n")
    assert outcome.outcome == "passed", outcome.message


def test_a_websocket_redirect_is_reported_and_never_followed(server):
    outcome, _ = check_of(server, "      - connect: {path: /feed-moved}\n")
    assert outcome.failure["code"] == "ws.handshake_rejected", outcome.message
    assert "probes never follow redirects" in outcome.message
    assert "/feed" not in server.app[HITS]


def test_a_schema_may_refer_only_inside_itself():
    remote = "        expect: {schema: {$ref: 'http://127.0.0.1:9/schema.json'}}\n"
    with pytest.raises(SuiteFileError, match=r"\$ref"):
        suite_of(one_check("      - request: {path: /items, method: POST}\n" + remote))


def test_a_local_schema_ref_validates(server):
    schema = "{$defs: {id: {type: string}}, type: object, properties: {id: {$ref: '#/$defs/id'}}, required: [id]}"
    outcome, _ = check_of(
        server, f"      - request: {{path: /items, method: POST}}\n        expect: {{status: 201, schema: {schema}}}\n"
    )
    assert outcome.outcome == "passed", outcome.message


# --- time and teardown ---

TEARDOWN = "      - request: {method: DELETE, path: /items/t1}\n        expect: {status: 204}\n        always: true\n"


@pytest.mark.parametrize(
    "waiting",
    [
        "      - connect: {path: /feed}\n"
        "      - receive: {sequence: [{$.never: true}], within_s: 30}\n        optional: true\n",
        "      - sleep: {ms: 30000}\n        optional: true\n",
    ],
    ids=["receive", "sleep"],
)
def test_an_optional_step_cut_by_the_timeout_still_leaves_time_for_teardown(server, waiting):
    outcome, _ = check_of(server, waiting + TEARDOWN, check="    timeout_s: 1\n")
    assert outcome.outcome == "passed", outcome.message
    assert "optional step ended the sample" in outcome.message
    assert server.app[DELETED] == ["t1"]


def test_a_value_is_saved_before_the_expectations_so_teardown_can_use_it(server):
    steps = (
        "      - request: {method: POST, path: /items}\n        expect: {status: 200}\n        save: {item: $.id}\n"
        "      - request: {method: DELETE, path: '/items/${item}'}\n        always: true\n"
    )
    outcome, _ = check_of(server, steps)
    assert outcome.failure["code"] == "http.status", outcome.message
    assert server.app[DELETED] == ["item-7"]


def test_a_teardown_that_fails_after_an_optional_step_fails_the_check(server):
    steps = (
        "      - request: {path: /status/503}\n        optional: true\n"
        "      - request: {path: /status/500}\n        always: true\n"
    )
    outcome, _ = check_of(server, steps)
    assert outcome.outcome == "failed"
    assert outcome.failure["code"] == "http.status"
    assert "step 2" in outcome.message and "500" in outcome.message


def test_a_pattern_that_is_wrong_once_filled_in_is_a_suite_error(server):
    steps = "      - request: {path: /status/200}\n        expect: {body: {matches: '${pattern}'}}\n"
    outcome, _ = check_of(server, steps, check="    vars: {pattern: '('}\n")
    assert outcome.failure["code"] == "config.template", outcome.message
    assert "regular expression" in outcome.message


# --- secrets ---


def test_a_secret_is_redacted_in_its_json_spelling(server, monkeypatch):
    monkeypatch.setenv("RULES_QUOTED_SECRET", QUOTED_SECRET)
    steps = "      - request: {path: /echo-headers, headers: {X-Secret: '${env.RULES_QUOTED_SECRET}'}}\n"
    steps += "        expect: {status: 201}\n"
    outcome, stored = check_of(server, steps)
    assert outcome.outcome == "failed"
    spelled_in_json = json.dumps(QUOTED_SECRET)[1:-1]
    assert (
        spelled_in_json not in outcome.message
        and spelled_in_json not in json.loads(stored)["requests"][0]["body_excerpt"]
    )
    assert "[redacted]" in outcome.message


def test_a_secret_cut_short_by_an_excerpt_is_still_redacted(server, monkeypatch):
    monkeypatch.setenv("RULES_SECRET", SECRET)
    steps = "      - request: {path: /padded, headers: {X-Secret: '${env.RULES_SECRET}'}}\n"
    outcome, stored = check_of(server, steps)
    assert outcome.outcome == "passed", outcome.message
    excerpt = json.loads(stored)["requests"][0]["body_excerpt"]
    assert excerpt.endswith("[redacted]…") and SECRET[:4] not in excerpt


@pytest.mark.parametrize(
    "held",
    [
        QUOTED_SECRET,
        json.dumps(QUOTED_SECRET),  # a body that is JSON text
        json.dumps(json.dumps(QUOTED_SECRET)),  # JSON text quoted in JSON text
        "ends with the secret's start " + QUOTED_SECRET[:6] + CUT,
        "a JWT eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    ],
)
def test_stored_evidence_never_holds_a_secret_however_it_is_nested(held):
    redactor = Redactor()
    redactor.add(QUOTED_SECRET)
    evidence = Evidence()
    evidence.add_request({"body_excerpt": held, "headers": {held: "a key too"}})
    stored = json.dumps(evidence.as_dict(redactor))
    assert REDACTED in stored
    for spelling in (QUOTED_SECRET, json.dumps(QUOTED_SECRET)[1:-1], QUOTED_SECRET[:6], "eyJzdWIiOiIxIn0"):
        assert spelling not in json.loads(stored)["requests"][0]["body_excerpt"]


def test_clean_evidence_is_stored_as_it_was():
    redactor = Redactor()
    redactor.add(QUOTED_SECRET)
    evidence = Evidence()
    evidence.add_request({"body_excerpt": "nothing secret here", "n": 3})
    assert evidence.as_dict(redactor)["requests"] == [{"body_excerpt": "nothing secret here", "n": 3}]


def test_a_metric_note_never_holds_a_secret(server, monkeypatch):
    monkeypatch.setenv("RULES_SECRET", SECRET)
    steps = "      - request: {path: /echo-headers, headers: {X-Secret: '${env.RULES_SECRET}'}}\n"
    steps += "        expect: {status: 201}\n        optional: true\n        mark: answered\n"
    outcome, _ = check_of(server, steps, check="    metrics: [{name: Answer, of: answered, target_ms: 1000}]\n")
    [metric] = outcome.metrics
    assert metric.note.startswith("not measured") and "[redacted]" in metric.note
    assert SECRET not in metric.note


def test_a_suite_may_not_read_goldpaths_own_configuration(settings):
    settings.GOLDPATH_SUITE_ENV = ["SHOP_*", "DATABASE_URL"]
    assert suite_may_read("SHOP_TOKEN")
    assert not suite_may_read("OTHER_TOKEN")
    assert not suite_may_read("DATABASE_URL")  # Goldpath's own, whatever the allowlist says
    assert not suite_may_read("GOLDPATH_SECRET_KEY")


def test_a_refused_environment_variable_fails_the_check_without_reading_it(server, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://user:hunter2-db@127.0.0.1/gp")
    steps = "      - request: {path: /echo-headers, headers: {X-Leak: '${env.DATABASE_URL}'}}\n"
    outcome, stored = check_of(server, steps, env_readable=lambda name: name != "DATABASE_URL")
    assert outcome.failure["code"] == "config.env_refused", outcome.message
    assert "DATABASE_URL" in outcome.message
    assert "hunter2" not in stored and "/echo-headers" not in server.app[HITS]


# --- bounded evidence ---


def test_samples_and_token_uses_are_kept_up_to_their_caps(server):
    extra = (
        "auth:\n  api: {type: login, request: {method: POST, path: /token}, token: $.access_token,\n"
        "        apply: {header: Authorization, value: 'Bearer ${token}'}}\n"
    )
    steps = "      - request: {path: /echo-headers, auth: api}\n"
    limits = Limits(samples_kept=3, auth_kept=2, requests_kept=4)
    outcome, stored = check_of(server, steps, extra=extra, check="    repeat: 10\n", limits=limits)
    assert outcome.outcome == "passed", outcome.message
    evidence = json.loads(stored)
    assert len(evidence["samples"]) == 3 and len(evidence["auth"]) <= 2 and len(evidence["requests"]) == 4
    assert evidence["dropped"]["samples"] == 7 and evidence["dropped"]["requests"] > 0
    assert SECRET not in stored
