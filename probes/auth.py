"""Auth profiles: how a step's requests and handshakes prove who they are.

Static profiles (``bearer``, ``header``, ``query``, ``basic``) are rendered for each use.
Token profiles (``oauth2_client_credentials``, ``login``) fetch a token once per run, share
it between checks, and fetch again once it expires. Every token is redacted from evidence.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field, model_validator

from probes.failures import StepFailed
from probes.matchers import MISSING, compile_path, parse_json
from probes.steps.http import RequestOptions, excerpt, request_kwargs, send
from probes.suite.fields import JsonPath, Strict, TokenSource
from probes.templates import render

if TYPE_CHECKING:
    from probes.runtime import RunTarget, StepContext

NO_AUTH = "none"
DEFAULT_PROFILE = "default"
EXPIRY_SKEW_S = 1.0  # fetch a little before the token expires, never after


class Bearer(Strict):
    type: Literal["bearer"]
    token: str


class HeaderAuth(Strict):
    type: Literal["header"]
    name: str
    value: str


class QueryAuth(Strict):
    type: Literal["query"]
    name: str
    value: str


class Basic(Strict):
    type: Literal["basic"]
    username: str
    password: str


class OAuth2ClientCredentials(Strict):
    """RFC 6749 §4.4: a form-encoded POST to ``token_url`` with the client's credentials."""

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: str
    scope: str | list[str] | None = None
    audience: str | None = None
    client_auth: Literal["basic", "body"] = "basic"


class LoginApply(Strict):
    header: str | None = None
    query: str | None = None
    value: str = "${token}"

    @model_validator(mode="after")
    def _one_place(self) -> LoginApply:
        if (self.header is None) == (self.query is None):
            raise ValueError("give exactly one of header and query")
        return self


class Login(Strict):
    """A custom login request; ``token`` is where its answer holds the token."""

    type: Literal["login"]
    request: RequestOptions
    token: TokenSource = Field(description="JSONPath into the answer ($.access_token) or header.NAME")
    apply: LoginApply
    expires_in: JsonPath | None = Field(None, description="JSONPath to the token's lifetime in seconds")

    @model_validator(mode="after")
    def _no_nested_auth(self) -> Login:
        if self.request.auth not in (None, NO_AUTH):
            raise ValueError("a login request cannot itself use an auth profile")
        return self


AuthProfile = Annotated[
    Bearer | HeaderAuth | QueryAuth | Basic | OAuth2ClientCredentials | Login, Field(discriminator="type")
]


@dataclass
class Credentials:
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class _Token:
    value: str
    expires_at: float | None  # monotonic time, or None: valid for the whole run


def seconds(value: Any) -> float | None:
    """A token lifetime as a number of seconds (providers send 3600 or "3600")."""
    if isinstance(value, bool):
        return None
    try:
        lifetime = float(value)
    except (TypeError, ValueError):
        return None
    return max(lifetime, 0.0)  # 0: expired at once, fetched again at the next use


class AuthSession:
    """The auth state of one run: tokens fetched so far, one lock per profile."""

    def __init__(self, target: RunTarget) -> None:
        self.target = target
        self.tokens: dict[str, _Token] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.variables = target.variables_for({})  # profiles see suite variables, never a check's

    def profile_name(self, requested: str | None) -> str | None:
        if requested == NO_AUTH:
            return None
        if requested is None:
            return DEFAULT_PROFILE if DEFAULT_PROFILE in self.target.suite.auth else None
        return requested

    async def credentials(self, requested: str | None, ctx: StepContext) -> Credentials:
        name = self.profile_name(requested)
        if name is None:
            return Credentials()
        profile = self.target.suite.auth[name]
        try:
            return await self._credentials(name, profile, ctx)
        except StepFailed as exc:
            exc.message = f"auth profile {name!r} ({profile.type}): {exc.message}"
            raise

    async def _credentials(self, name: str, profile: Any, ctx: StepContext) -> Credentials:
        secret = self.target.redactor.add
        if isinstance(profile, Bearer):
            return Credentials(headers={"Authorization": f"Bearer {self._render(profile.token)}"})
        if isinstance(profile, HeaderAuth):
            return Credentials(headers={self._render(profile.name): self._render(profile.value)})
        if isinstance(profile, QueryAuth):
            return Credentials(query={self._render(profile.name): self._render(profile.value)})
        if isinstance(profile, Basic):
            pair = f"{self._render(profile.username)}:{self._render(profile.password)}"
            encoded = base64.b64encode(pair.encode()).decode()
            secret(encoded)
            return Credentials(headers={"Authorization": f"Basic {encoded}"})
        token = await self.token(name, profile, ctx)
        if isinstance(profile, OAuth2ClientCredentials):
            return Credentials(headers={"Authorization": f"Bearer {token}"})
        value = render(profile.apply.value, lambda n: token if n == "token" else self.variables(n))
        if profile.apply.header:
            return Credentials(headers={profile.apply.header: str(value)})
        return Credentials(query={str(profile.apply.query): str(value)})

    def _render(self, template: str) -> str:
        return str(render(template, self.variables))

    async def token(self, name: str, profile: Any, ctx: StepContext) -> str:
        lock = self.locks.setdefault(name, asyncio.Lock())
        async with lock:
            cached = self.tokens.get(name)
            if cached and (cached.expires_at is None or time.monotonic() < cached.expires_at):
                ctx.evidence.add_auth({"profile": name, "type": profile.type, "cached": True})
                return cached.value
            record: dict[str, Any] = {"profile": name, "type": profile.type, "cached": False}
            ctx.evidence.add_auth(record)
            requests: list[dict[str, Any]] = []
            record["requests"] = requests
            fetch = self._oauth2 if isinstance(profile, OAuth2ClientCredentials) else self._login
            value, lifetime = await fetch(profile, ctx, requests)
            self.target.redactor.add(value)
            expires_at = None
            if lifetime is not None:
                expires_at = time.monotonic() + max(lifetime - min(EXPIRY_SKEW_S, lifetime * 0.1), 0.0)
                record["expires_in_s"] = lifetime
            self.tokens[name] = _Token(value, expires_at)
            return value

    async def _oauth2(
        self, profile: OAuth2ClientCredentials, ctx: StepContext, requests: list
    ) -> tuple[str, float | None]:
        client_id, client_secret = self._render(profile.client_id), self._render(profile.client_secret)
        self.target.redactor.add(client_secret)
        form = {"grant_type": "client_credentials"}
        scope = profile.scope
        if scope:
            form["scope"] = " ".join(self._render(s) for s in scope) if isinstance(scope, list) else self._render(scope)
        if profile.audience:
            form["audience"] = self._render(profile.audience)
        headers = {"Accept": "application/json"}
        if profile.client_auth == "basic":
            # RFC 6749 §2.3.1: each part form-encoded first. A space goes as %20, never "+":
            # form decoders read both, and servers that only percent-decode (Authlib) too.
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            encoded = base64.b64encode(pair.encode()).decode()
            self.target.redactor.add(encoded)
            headers["Authorization"] = f"Basic {encoded}"
        else:
            form.update(client_id=client_id, client_secret=client_secret)
        url = self._render(profile.token_url)
        exchange = await send(ctx, "POST", url, headers=headers, form=form, record_in=requests)
        document = parse_json(exchange.body)
        if not 200 <= exchange.response.status_code < 300:
            error = ""
            if isinstance(document, dict) and document.get("error"):
                error = f" {document['error']}" + (
                    f": {document['error_description']}" if document.get("error_description") else ""
                )
            raise StepFailed(
                "auth.rejected",
                f"the token endpoint answered {exchange.response.status_code}{error or excerpt(exchange)}",
                status=exchange.response.status_code,
            )
        if not isinstance(document, dict) or not isinstance(document.get("access_token"), str):
            raise StepFailed("auth.no_token", f"the token response has no access_token{excerpt(exchange)}")
        self._redact_other_tokens(document)
        return document["access_token"], seconds(document.get("expires_in"))

    def _redact_other_tokens(self, document: Any) -> None:
        """A token answer's other credentials are never used, and never stored either."""
        if isinstance(document, dict):
            for other in ("refresh_token", "id_token"):
                if isinstance(document.get(other), str):
                    self.target.redactor.add(document[other])

    async def _login(self, profile: Login, ctx: StepContext, requests: list) -> tuple[str, float | None]:
        options = render(profile.request.model_dump(by_alias=True, exclude_none=True), self.variables)
        url = ctx.target.http_url(options.get("path"), options.get("url"))
        method = options.get("method", "GET").upper()
        exchange = await send(ctx, method, url, **request_kwargs(options), record_in=requests)
        status = exchange.response.status_code
        if not 200 <= status < 300:
            raise StepFailed(
                "auth.rejected", f"{method} {url} answered {status}, expected 2xx{excerpt(exchange)}", status=status
            )
        if profile.token.startswith("header."):
            token = exchange.response.headers.get(profile.token[len("header.") :])
        else:
            document = parse_json(exchange.body)
            found = MISSING if document is MISSING else compile_path(profile.token).get(document)
            token = found if isinstance(found, str) else None
        if not token:
            raise StepFailed("auth.no_token", f"{method} {url}: no token at {profile.token}")
        self._redact_other_tokens(parse_json(exchange.body))
        lifetime = None
        if profile.expires_in:
            document = parse_json(exchange.body)
            lifetime = seconds(MISSING if document is MISSING else compile_path(profile.expires_in).get(document))
        return token, lifetime
