"""An OAuth2 authorization server (RFC 6749 §4.4, client credentials) built with authlib's
Flask integration, and a resource that accepts only the tokens it issued.

- ``POST /oauth/token``: ``grant_type=client_credentials``; the client authenticates with
  ``client_secret_basic`` (HTTP Basic, each part form-encoded first, RFC 6749 §2.3.1) or
  ``client_secret_post`` (``client_id``/``client_secret`` in the form). Tokens live
  ``expires_in`` seconds (short, configurable). ``audience``, when the server names one,
  must match.
- ``GET /api/whoami``: the token's client, scope and audience; 401 without a live token.
- ``GET /api/echo-auth``: echoes the request's Authorization header (as httpbin would), so
  tests can see that the token never reaches evidence.

Every token request is recorded (``.token_requests``: how the client authenticated, the
content type, the form without the secret, the status answered), as is every token issued
(``.issued``) and every resource request (``.resource_requests``).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, jsonify, request

from tests.servers import WSGIThreadServer

SCOPES = ("probes:read", "probes:write", "admin")


@dataclass
class OAuthClient(ClientMixin):
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("probes:read", "probes:write")
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return list_to_scope([s for s in scope_to_list(scope) if s in self.scopes])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclass
class IssuedToken(TokenMixin):
    access_token: str
    client_id: str
    scope: str
    audience: str | None
    expires_in: int
    issued_at: float = field(default_factory=time.monotonic)

    def check_client(self, client: ClientMixin) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.monotonic() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class OAuthServer(WSGIThreadServer):
    """``with OAuthServer(expires_in=1) as oauth: oauth.token_url, oauth.token_requests``"""

    name = "oauth"

    def __init__(
        self,
        clients: list[OAuthClient] | None = None,
        *,
        expires_in: int = 3600,
        audience: str | None = None,
    ) -> None:
        self.clients = {c.client_id: c for c in clients or [OAuthClient("goldpath-probe", "probe-secret")]}
        self.expires_in = expires_in
        self.audience = audience
        self.lock = threading.Lock()
        self.tokens: dict[str, IssuedToken] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.resource_requests: list[dict[str, Any]] = []
        super().__init__(self._build_app())

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def issued(self) -> list[str]:
        with self.lock:
            return list(self.tokens)

    def _save_token(self, token: dict[str, Any], oauth_request: Any) -> None:
        issued = IssuedToken(
            token["access_token"],
            oauth_request.client.get_client_id(),
            token.get("scope", ""),
            oauth_request.form.get("audience"),
            token["expires_in"],
        )
        with self.lock:
            self.tokens[issued.access_token] = issued

    def _build_app(self) -> Flask:
        app = Flask("goldpath-test-oauth")
        app.config.update(
            OAUTH2_TOKEN_EXPIRES_IN={"client_credentials": self.expires_in},
            OAUTH2_SCOPES_SUPPORTED=list(SCOPES),
            OAUTH2_ACCESS_TOKEN_GENERATOR=lambda *args, **kwargs: secrets.token_urlsafe(32),
        )
        authorization = AuthorizationServer(app, query_client=self.clients.get, save_token=self._save_token)
        authorization.register_grant(ClientCredentialsGrant)
        server = self

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string: str) -> IssuedToken | None:
                with server.lock:
                    return server.tokens.get(token_string)

        require_oauth = ResourceProtector()
        require_oauth.register_token_validator(Validator())

        @app.post("/oauth/token")
        def token():  # type: ignore[no-untyped-def]
            form = request.form.to_dict()
            header = request.headers.get("Authorization", "")
            record = {
                "client_auth": "client_secret_basic"
                if header.lower().startswith("basic ")
                else "client_secret_post"
                if "client_secret" in form
                else None,
                "content_type": request.content_type,
                "accept": request.headers.get("Accept"),
                "form": {k: v for k, v in form.items() if k != "client_secret"},
                "secret_in_form": "client_secret" in form,
                "grant_type": form.get("grant_type"),
                "scope": form.get("scope"),
                "audience": form.get("audience"),
            }
            with self.lock:
                self.token_requests.append(record)
            if self.audience is not None and form.get("audience") != self.audience:
                record["status"] = 400
                return jsonify(error="invalid_request", error_description="unknown audience"), 400
            response = authorization.create_token_response()
            record["status"] = response.status_code
            return response

        @app.get("/api/whoami")
        @require_oauth()
        def whoami():  # type: ignore[no-untyped-def]
            token = current_token
            with self.lock:
                self.resource_requests.append({"path": "/api/whoami", "client_id": token.client_id})
            return jsonify(client_id=token.client_id, scope=token.scope, audience=token.audience)

        @app.get("/api/echo-auth")
        @require_oauth()
        def echo_auth():  # type: ignore[no-untyped-def]
            with self.lock:
                self.resource_requests.append({"path": "/api/echo-auth", "client_id": current_token.client_id})
            return jsonify(authorization=request.headers.get("Authorization"))

        return app
