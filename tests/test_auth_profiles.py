"""Auth profiles against real servers: an OAuth2 authorization server built with authlib
(client credentials, RFC 6749 §4.4), PyPI httpbin for the static profiles, and the bundled
target for the ``login`` profile. Secrets come from ``${env.…}`` and, like every token a
profile obtains, must never appear in an outcome's message or evidence."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from urllib.parse import quote, quote_plus

import pytest

from probes.engine import CheckOutcome, run_checks
from probes.net import NetworkPolicy
from probes.runtime import RunTarget
from probes.suite.loader import parse_suite
from tests.servers.httpbin_server import HttpbinServer
from tests.servers.oauth import OAuthClient, OAuthServer

LOOPBACK = NetworkPolicy(frozenset({"127.0.0.1"}))
CLIENT_ID = "goldpath-probe"
# RFC 6749 §2.3.1: with HTTP Basic the id and secret are form-encoded before base64, so a
# secret with ':' '%' '+' '/' and a space only works if the client encodes it.
CLIENT_SECRET = "s3cr:t %/+ value-41"
AUDIENCE = "https://api.goldpath.test"
# How URL encoders may leave a value: everything escaped, or some reserved characters kept
# (paths keep "/", httpx keeps "+" in paths and the RFC 3986 sub-delimiters).
URL_SAFE_SETS = ("", "/", "+", "/+:@!$&'()*,;=")

OAUTH_SUITE = """
name: oauth-probe
vars:
  token_url: set-by-the-environment
  client_secret: ${{env.OAUTH_CLIENT_SECRET}}
auth:
  default:
    type: oauth2_client_credentials
    token_url: ${{token_url}}
    client_id: {client_id}
    client_secret: ${{client_secret}}
    client_auth: {client_auth}
    scope: {scope}
    audience: {audience}
categories: [{{name: API}}]
checks:
{checks}
"""

WHOAMI_CHECK = """
  - id: {id}
    name: {id}
    category: API
    timeout_s: 20
    repeat: {repeat}
    steps:
{before}      - request: {{path: /api/whoami}}
        expect: {{status: 200, json: {{$.client_id: {client_id}}}}}
"""


def oauth_suite(
    checks: str,
    client_auth: str = "basic",
    scope: str = "[probes:read, probes:write]",
    audience: str = AUDIENCE,
):
    return parse_suite(
        OAUTH_SUITE.format(client_id=CLIENT_ID, client_auth=client_auth, scope=scope, audience=audience, checks=checks)
    )


def whoami(check_id: str, repeat: int = 1, sleep_ms: int | None = None) -> str:
    before = f"      - sleep: {{ms: {sleep_ms}}}\n" if sleep_ms else ""
    return WHOAMI_CHECK.format(id=check_id, repeat=repeat, before=before, client_id=CLIENT_ID)


def run(loaded, base_url: str, environ: dict[str, str], **variables) -> dict[str, CheckOutcome]:
    target = RunTarget(loaded.model, base_url, policy=LOOPBACK, environ=environ, variables=variables)
    with contextlib.closing(run_checks(loaded.model.checks, target)) as outcomes:
        return {o.check_id: o for o in outcomes}


def run_oauth(loaded, server: OAuthServer, secret: str = CLIENT_SECRET) -> dict[str, CheckOutcome]:
    return run(loaded, server.base_url, {"OAUTH_CLIENT_SECRET": secret}, token_url=server.token_url)


def assert_never_shown(outcomes: dict[str, CheckOutcome], values: list[str]) -> None:
    """No secret, token or credential, raw or URL-encoded, in any message or evidence."""
    forms = {value for value in values} | {quote_plus(value) for value in values}
    forms |= {quote(value, safe=safe) for value in values for safe in URL_SAFE_SETS}
    leaked = {}
    for outcome in outcomes.values():
        stored = json.dumps([outcome.message, outcome.evidence])
        if found := sorted(form for form in forms if form in stored):
            leaked[outcome.check_id] = found
    assert not leaked


def basic_credentials(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def oauth():
    with OAuthServer([OAuthClient(CLIENT_ID, CLIENT_SECRET)], expires_in=3600, audience=AUDIENCE) as server:
        yield server


@pytest.fixture(scope="module")
def httpbin():
    with HttpbinServer() as server:
        yield server


# ---------------------------------------------------------------- oauth2_client_credentials


@pytest.mark.parametrize(("client_auth", "method"), [("basic", "client_secret_basic"), ("body", "client_secret_post")])
def test_oauth2_sends_a_form_encoded_client_credentials_request(oauth, client_auth, method):
    outcomes = run_oauth(oauth_suite(whoami("whoami"), client_auth=client_auth), oauth)
    assert outcomes["whoami"].outcome == "passed", outcomes["whoami"].message
    (sent,) = oauth.token_requests
    assert sent["status"] == 200
    assert sent["content_type"] == "application/x-www-form-urlencoded"
    assert sent["grant_type"] == "client_credentials"
    assert sent["client_auth"] == method
    assert sent["secret_in_form"] is (client_auth == "body")
    assert ("client_id" in sent["form"]) is (client_auth == "body")
    assert sent["scope"] == "probes:read probes:write"  # a list is sent space-separated (RFC 6749 §3.3)
    assert sent["audience"] == AUDIENCE
    assert sent["accept"] == "application/json"
    assert oauth.resource_requests == [{"path": "/api/whoami", "client_id": CLIENT_ID}]
    assert_never_shown(outcomes, [CLIENT_SECRET, *oauth.issued])


def test_oauth2_token_is_reused_across_checks_and_samples_until_it_expires():
    """expires_in=3: the first two checks (one with 3 samples) share one token; the third
    sleeps past the expiry, so Goldpath fetches a new one (the server rejects old ones)."""
    with OAuthServer([OAuthClient(CLIENT_ID, CLIENT_SECRET)], expires_in=3, audience=AUDIENCE) as server:
        checks = whoami("first", repeat=3) + whoami("second") + whoami("after_expiry", sleep_ms=4500)
        outcomes = run_oauth(oauth_suite(checks), server)
        assert {k: o.outcome for k, o in outcomes.items()} == dict.fromkeys(outcomes, "passed"), {
            k: o.message for k, o in outcomes.items()
        }
        assert len(server.token_requests) == 2
        assert len(server.issued) == 2
        assert len(server.resource_requests) == 5
        early = outcomes["first"].evidence["auth"] + outcomes["second"].evidence["auth"]
        assert len(early) == 4 and sorted(a["cached"] for a in early) == [False, True, True, True]
        (late,) = outcomes["after_expiry"].evidence["auth"]
        assert late["cached"] is False and late["expires_in_s"] == 3
        assert_never_shown(outcomes, [CLIENT_SECRET, *server.issued])


def test_oauth2_wrong_secret_fails_with_auth_rejected_naming_the_oauth2_error(oauth):
    wrong = "not-the-secret-9931"
    outcomes = run_oauth(oauth_suite(whoami("whoami")), oauth, secret=wrong)
    outcome = outcomes["whoami"]
    assert outcome.outcome == "failed"
    assert outcome.failure["code"] == "auth.rejected"
    assert outcome.failure["step"] == 1
    assert "auth profile 'default' (oauth2_client_credentials)" in outcome.message
    assert "the token endpoint answered 401 invalid_client" in outcome.message
    assert oauth.resource_requests == []  # nothing was sent without a token
    assert_never_shown(outcomes, [wrong, CLIENT_SECRET])


def test_oauth2_scope_the_server_does_not_support_is_rejected(oauth):
    outcomes = run_oauth(oauth_suite(whoami("whoami"), scope="superuser"), oauth)
    outcome = outcomes["whoami"]
    assert outcome.failure["code"] == "auth.rejected"
    assert "answered 400 invalid_scope" in outcome.message
    assert oauth.token_requests[0]["scope"] == "superuser"


def test_oauth2_tokens_never_reach_evidence_even_when_echoed(oauth):
    checks = """
  - id: echo
    name: echo
    category: API
    steps:
      - request: {path: /api/echo-auth}
        expect: {json: {$.authorization: {matches: "^Bearer .{20,}$"}}}
"""
    outcomes = run_oauth(oauth_suite(checks), oauth)
    outcome = outcomes["echo"]
    assert outcome.outcome == "passed", outcome.message
    assert json.loads(outcome.evidence["requests"][0]["body_excerpt"]) == {"authorization": "Bearer [redacted]"}
    token_response = outcome.evidence["auth"][0]["requests"][0]
    assert '"access_token": "[redacted]"' in token_response["body_excerpt"]
    assert_never_shown(outcomes, [CLIENT_SECRET, *oauth.issued])


def test_oauth2_secret_missing_on_the_worker_fails_naming_the_variable(oauth):
    outcomes = run(oauth_suite(whoami("whoami")), oauth.base_url, {}, token_url=oauth.token_url)
    outcome = outcomes["whoami"]
    assert outcome.failure["code"] == "config.missing_env"
    assert "environment variable OAUTH_CLIENT_SECRET is not set on the worker" in outcome.message
    assert oauth.token_requests == []


# ---------------------------------------------------------------- static profiles, on httpbin

STATIC_SUITE = """
name: static-profiles
vars:
  user: goldpath
  password: ${env.PROBE_PASSWORD}
  token: ${env.PROBE_TOKEN}
auth:
  default: {type: header, name: X-Suite, value: static-profiles}
  basic: {type: basic, username: "${user}", password: "${password}"}
  bearer: {type: bearer, token: "${token}"}
  key_header: {type: header, name: X-Api-Key, value: "${token}"}
  key_query: {type: query, name: api_key, value: "${token}"}
categories: [{name: Auth}]
checks:
  - id: basic
    name: basic
    category: Auth
    steps:
      - request: {path: "/basic-auth/${user}/${password}", auth: basic}
        expect: {status: 200, json: {$.authenticated: true, $.user: goldpath}}
      - request: {path: /headers, auth: basic}
        expect: {json: {$.headers.Authorization: {matches: "^Basic [A-Za-z0-9+/=]+$"}}}
      - request: {path: "/basic-auth/${user}/${password}", auth: none}
        expect: {status: 401}
  - id: bearer
    name: bearer
    category: Auth
    steps:
      - request: {path: /bearer, auth: bearer}
        expect: {status: 200, json: {$.token: "${token}"}}
      - request: {path: /headers, auth: bearer}
        expect: {json: {$.headers.Authorization: "Bearer ${token}"}}
  - id: header
    name: header
    category: Auth
    steps:
      - request: {path: /headers, auth: key_header, headers: {X-Other: kept}}
        expect: {json: {"$.headers['X-Api-Key']": "${token}", "$.headers['X-Other']": kept}}
  - id: query
    name: query
    category: Auth
    steps:
      - request: {path: /get, query: {page: 2}, auth: key_query}
        expect: {json: {$.args: {api_key: "${token}", page: "2"}}}
  - id: default_and_none
    name: default and none
    category: Auth
    steps:
      - request: {path: /headers}
        expect: {json: {"$.headers['X-Suite']": static-profiles}}
      - request: {path: /headers, auth: none}
        expect: {json: {"$.headers['X-Suite']": {exists: false}, $.headers.Authorization: {exists: false}}}
"""


def test_static_profiles_send_what_they_say_and_stay_secret(httpbin):
    environ = {"PROBE_PASSWORD": "pass-word-5521", "PROBE_TOKEN": "token-value-8a8b"}
    outcomes = run(parse_suite(STATIC_SUITE), httpbin.base_url, environ)
    assert {k: o.outcome for k, o in outcomes.items()} == dict.fromkeys(outcomes, "passed"), {
        k: o.message for k, o in outcomes.items()
    }
    assert outcomes["basic"].evidence.get("auth_enforced") is True
    query = outcomes["query"].evidence["requests"][0]["url"]
    assert "api_key=" in query and "page=2" in query
    assert_never_shown(outcomes, [*environ.values(), basic_credentials("goldpath", environ["PROBE_PASSWORD"])])


def test_static_profile_secret_missing_on_the_worker_fails_naming_it(httpbin):
    outcomes = run(parse_suite(STATIC_SUITE), httpbin.base_url, {})
    assert outcomes["default_and_none"].outcome == "passed"  # reads no secret
    for check_id, variable in [("basic", "PROBE_PASSWORD"), ("bearer", "PROBE_TOKEN"), ("query", "PROBE_TOKEN")]:
        outcome = outcomes[check_id]
        assert outcome.failure["code"] == "config.missing_env", outcome.message
        assert f"environment variable {variable} is not set on the worker" in outcome.message


def test_secrets_with_url_special_characters_are_redacted_from_urls(httpbin):
    environ = {"PROBE_PASSWORD": "pass word+5521", "PROBE_TOKEN": "token value+8a8b"}
    outcomes = run(parse_suite(STATIC_SUITE), httpbin.base_url, environ)
    assert outcomes["query"].outcome == "passed", outcomes["query"].message
    assert outcomes["basic"].outcome == "passed", outcomes["basic"].message
    assert_never_shown(outcomes, list(environ.values()))


# ---------------------------------------------------------------- login, on the bundled target

LOGIN_SUITE = """
name: login-profile
vars:
  client_secret: ${env.GOLDPATH_TARGET_SECRET}
auth:
  default:
    type: login
    request:
      method: POST
      path: /api/auth/token
      json: {client_id: goldpath-demo, client_secret: "${client_secret}"}
    token: $.access_token
    expires_in: $.expires_in
    apply: {header: Authorization, value: "Bearer ${token}"}
  in_query:
    type: login
    request:
      method: POST
      path: /api/auth/token
      json: {client_id: goldpath-demo, client_secret: "${client_secret}"}
    token: $.access_token
    apply: {query: token}
categories: [{name: Auth}]
checks:
  - id: verify
    name: verify
    category: Auth
    steps:
      - request: {path: /api/auth/verify}
        expect: {status: 200, json: {$.valid: true, $.sub: goldpath-demo}}
  - id: profile
    name: profile
    category: Auth
    repeat: 2
    steps:
      - request: {path: /api/user/profile}
      - request: {path: /api/auth/verify, auth: none}
        expect: {status: 401}
  - id: websocket_query
    name: websocket with the token in the URL
    category: Auth
    steps:
      - connect: {path: /ws, auth: in_query}
      - ping:
"""


def test_login_profile_against_the_bundled_target(target):
    outcomes = run(parse_suite(LOGIN_SUITE), target.base_url, dict(os.environ))
    assert {k: o.outcome for k, o in outcomes.items()} == dict.fromkeys(outcomes, "passed"), {
        k: o.message for k, o in outcomes.items()
    }
    records = [a for o in outcomes.values() for a in o.evidence.get("auth", [])]
    fetched = [a["profile"] for a in records if not a["cached"]]
    assert sorted(fetched) == ["default", "in_query"]  # one login per profile for the whole run
    assert len([a for a in records if a["profile"] == "default"]) == 3  # verify + 2 samples of profile
    assert next(a for a in records if not a["cached"] and a["profile"] == "default")["expires_in_s"] == 3600
    (connection,) = outcomes["websocket_query"].evidence["connections"]
    assert "token=" in connection["url"]
    stored = json.dumps([[o.message, o.evidence] for o in outcomes.values()])
    assert "eyJ" not in stored  # the target's tokens are JWTs
    assert_never_shown(outcomes, [os.environ["GOLDPATH_TARGET_SECRET"]])


def test_login_profile_with_a_wrong_secret_is_rejected(target):
    wrong = "not-the-demo-secret"
    outcomes = run(parse_suite(LOGIN_SUITE), target.base_url, {"GOLDPATH_TARGET_SECRET": wrong})
    for check_id in ("verify", "profile"):
        outcome = outcomes[check_id]
        assert outcome.failure["code"] == "auth.rejected", outcome.message
        assert "auth profile 'default' (login)" in outcome.message
        assert "/api/auth/token answered 401, expected 2xx" in outcome.message
        assert "invalid_client" in outcome.message
    assert outcomes["websocket_query"].failure["code"] == "auth.rejected"
    assert_never_shown(outcomes, [wrong])
