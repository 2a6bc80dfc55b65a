"""HTTP plumbing shared by ``request``, ``stream`` and the auth profiles: one request sent to
the address the policy checked, with its timings, sizes and status as evidence."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
import jsonschema
import referencing
import referencing.exceptions
from pydantic import Field, model_validator

from probes.evidence import cut
from probes.failures import StepFailed
from probes.matchers import MISSING, compile_document_matcher, compile_matcher, compile_path, parse_json, short
from probes.net import netloc, network_failure
from probes.suite.fields import (
    RESERVED_HEADERS,
    DocumentMatcher,
    Headers,
    HttpSource,
    Matcher,
    Seconds,
    Status,
    Strict,
    VarName,
    refusals_only,
    status_matches,
    status_text,
)

if TYPE_CHECKING:
    from probes.runtime import StepContext

Scalar = str | int | float | bool


class RequestOptions(Strict):
    """``request: {method, path | url, query, headers, json | body | form, auth}``"""

    method: str = Field("GET", pattern=r"^[A-Za-z]+$")
    path: str | None = None
    url: str | None = None
    query: dict[str, Scalar] = Field(default_factory=dict)
    headers: Headers = Field(default_factory=dict)
    json_: Any = Field(None, alias="json")
    body: str | None = None
    form: dict[str, Scalar] | None = None
    auth: str | None = Field(None, description="an auth profile's name, or none; default: the default profile")
    timeout_s: Seconds | None = Field(None, description="this request; default: the check's timeout")

    @model_validator(mode="after")
    def _one_target_one_body(self) -> RequestOptions:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (joined to the base URL) and url")
        if sum(x is not None for x in (self.json_, self.body, self.form)) > 1:
            raise ValueError("give at most one of json, body and form")
        return self


class HttpExpect(Strict):
    """What the answer must be; without ``status``, any 2xx."""

    status: Status | None = None
    json_: DocumentMatcher | None = Field(None, alias="json")
    headers: dict[str, Matcher] | None = None
    body: Matcher | None = None
    schema_: str | dict[str, Any] | None = Field(
        None, alias="schema", description="a JSON Schema file (relative to the suite file) or an inline schema"
    )
    time_ms: Matcher | None = None


SaveSources = dict[VarName, HttpSource]  # name → "$…" | "header.NAME" | "status" | "body"


@dataclass
class Exchange:
    response: httpx.Response
    body: bytes
    record: dict[str, Any]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 3)


async def send(
    ctx: StepContext,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    json: Any = None,
    content: bytes | None = None,
    form: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    stream: bool = False,
    record_in: list[dict[str, Any]] | None = None,
) -> Exchange:
    """Send one request and record it; the body is read (capped) unless ``stream``.

    The connection goes to the address the policy checked; the Host header and the TLS
    name stay the URL's host. Redirects are never followed.
    """
    policy = ctx.target.policy
    host, port = policy.check_url(url)
    remote_ip, dns_ms = await policy.resolve(host, port)
    marks: dict[str, float] = {}

    async def trace(event: str, info: dict) -> None:
        marks[event] = time.perf_counter()

    record: dict[str, Any] = {"method": method, "url": url, "remote_ip": remote_ip, "dns_ms": dns_ms}
    if record_in is None:
        ctx.evidence.add_request(record)
    else:
        record_in.append(record)
    parts = urlsplit(url)
    params = {k: _query_value(v) for k, v in (query or {}).items()} or None
    request = ctx.http.build_request(
        method,
        pinned_url(parts, remote_ip),
        params=params,
        headers={"Host": netloc(parts.hostname or host, parts.port), **(headers or {})},
        json=json,
        content=content,
        data=form,
        timeout=httpx.Timeout(timeout_s) if timeout_s else httpx.USE_CLIENT_DEFAULT,
    )
    request.extensions["trace"] = trace
    request.extensions["sni_hostname"] = host
    if params:  # the URL with the query it was sent with
        record["url"] = str(request.url.copy_with(host=host))
    record["bytes_out"] = len(request.content) + sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
    started = time.perf_counter()
    try:
        response = await ctx.http.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise (network_failure(exc) or StepFailed("net.error", f"network error: {exc}")) from None
    body = bytearray()
    if not stream:
        try:
            async for chunk in response.aiter_bytes():  # decoded: the cap bounds what is held
                body.extend(chunk)
                if len(body) > ctx.limits.body_bytes:
                    raise StepFailed(
                        "http.too_large",
                        f"the response body exceeds {ctx.limits.body_bytes} bytes; stopped reading",
                        limit=ctx.limits.body_bytes,
                    )
        except httpx.HTTPError as exc:
            raise (network_failure(exc) or StepFailed("net.error", f"network error: {exc}")) from None
        finally:
            await response.aclose()
    ended = time.perf_counter()
    record.update(
        status=response.status_code,
        connect_ms=_ms(
            marks.get("connection.connect_tcp.started", started), marks.get("connection.connect_tcp.complete")
        ),
        tls_ms=_ms(marks.get("connection.start_tls.started", started), marks.get("connection.start_tls.complete")),
        first_byte_ms=_ms(started, marks.get("http11.receive_response_headers.complete")),
        total_ms=_ms(started, ended),
        bytes_in=response.num_bytes_downloaded + sum(len(k) + len(v) + 4 for k, v in response.headers.raw),
        headers_seen=sorted(response.headers.keys())[:30],
    )
    if not stream:
        record["body_excerpt"] = cut(
            bytes(body[: ctx.limits.excerpt_chars + 1]).decode("utf-8", "replace"), ctx.limits.excerpt_chars
        )
    if response.is_redirect:
        record["redirect_not_followed"] = response.headers.get("location", "")
    return Exchange(response, bytes(body), record)


def pinned_url(parts: SplitResult, ip: str) -> str:
    """The URL with its host replaced by the address the policy checked (text: httpx parses
    a URL once more when it builds the request, and each parse costs a few dozen µs)."""
    if parts.hostname == ip:
        return urlunsplit(parts)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{netloc(ip, parts.port)}"))


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def request_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """``send`` keyword arguments from rendered request options."""
    body = options.get("body")
    headers = options.get("headers") or {}
    return {
        # A templated name cannot smuggle a Host in either: the URL's host is the one checked.
        "headers": {str(k): str(v) for k, v in headers.items() if str(k).lower() not in RESERVED_HEADERS},
        "query": options.get("query") or {},
        "json": options.get("json"),
        "content": body.encode() if isinstance(body, str) else None,
        "form": options.get("form"),
        "timeout_s": options.get("timeout_s"),
    }


def excerpt(exchange: Exchange, limit: int = 200) -> str:
    text = cut(" ".join(exchange.text[: limit + 1].split()), limit)
    return f"; body: {text}" if text else ""


def check_status(ctx: StepContext, expected: Any, exchange: Exchange, what: str, default: str = "2xx") -> None:
    status = exchange.response.status_code
    wanted = expected if expected is not None else default
    if status_matches(wanted, status):
        if refusals_only(expected):
            ctx.evidence.auth_enforced = True
        return
    redirect = exchange.record.get("redirect_not_followed")
    note = f" (a redirect to {redirect}: probes never follow redirects)" if redirect else ""
    if refusals_only(expected) and 200 <= status < 300:
        raise StepFailed(
            "auth.not_enforced",
            f"{what} answered {status} without valid credentials, expected {status_text(wanted)}: "
            "authentication is not enforced",
            status=status,
            expected=wanted,
        )
    raise StepFailed(
        "http.status",
        f"{what} answered {status}, expected {status_text(wanted)}{note}{excerpt(exchange)}",
        status=status,
        expected=wanted,
    )


def check_headers(expected: dict[str, Any] | None, response: httpx.Response, what: str) -> None:
    for name, spec in (expected or {}).items():
        value = response.headers.get(name)
        problem = compile_matcher(spec).check(MISSING if value is None else value, f"header {name}")
        if problem:
            raise StepFailed("http.header_mismatch", f"{what}: {problem}", header=name)


def check_expectations(ctx: StepContext, expect: dict[str, Any], exchange: Exchange, what: str) -> None:
    """Every expectation of a rendered ``expect`` mapping, in the order a reader would check."""
    check_status(ctx, expect.get("status"), exchange, what)
    if expect.get("time_ms") is not None:
        total = exchange.record.get("total_ms") or 0.0
        matcher = compile_matcher(expect["time_ms"])
        if matcher.check(total, "time_ms"):
            raise StepFailed(
                "http.time", f"{what} answered in {total:.1f} ms, expected time_ms {matcher.describe()}", time_ms=total
            )
    check_headers(expect.get("headers"), exchange.response, what)
    if expect.get("body") is not None:
        problem = compile_matcher(expect["body"]).check(exchange.text, "body")
        if problem:
            raise StepFailed("http.body_mismatch", f"{what}: {problem}")
    if expect.get("json") or expect.get("schema") is not None:
        document = parse_json(exchange.body)
        if document is MISSING:
            raise StepFailed("http.not_json", f"{what} did not answer JSON{excerpt(exchange)}")
        if expect.get("json"):
            problem = compile_document_matcher(expect["json"]).check(document)
            if problem:
                raise StepFailed("http.json_mismatch", f"{what}: {problem}", path=problem.split(":", 1)[0])
        if expect.get("schema") is not None:
            validator = jsonschema.validators.validator_for(expect["schema"], jsonschema.Draft202012Validator)
            # An empty registry: a $ref is never fetched (the loader allows only refs inside the schema).
            try:
                error = jsonschema.exceptions.best_match(
                    validator(expect["schema"], registry=referencing.Registry()).iter_errors(document)
                )
            except referencing.exceptions.Unresolvable as exc:
                raise StepFailed(
                    "config.template", f"{what}: the schema refers to {exc.ref!r}, which it does not hold"
                ) from None
            if error is not None:
                where = "$" + "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
                raise StepFailed(
                    "http.schema", f"{what}: the body does not match the schema at {where}: {short(error.message, 200)}"
                )


def saved_value(source: str, exchange: Exchange) -> Any:
    """A value to save: ``$…`` from the JSON body, ``header.NAME``, ``status`` or ``body``."""
    if source == "status":
        return exchange.response.status_code
    if source == "body":
        return exchange.text
    if source.startswith("header."):
        value = exchange.response.headers.get(source[len("header.") :])
        return MISSING if value is None else value
    document = parse_json(exchange.body)
    return MISSING if document is MISSING else compile_path(source).get(document)


def save_all(ctx: StepContext, save: dict[str, str] | None, exchange: Exchange) -> list[tuple[str, str]]:
    """Save every value the answer holds, before its expectations are judged: a teardown
    (``always``) must find what to clean up even when the answer was wrong. Returns the
    (name, source) pairs it could not find."""
    missing = []
    for name, source in (save or {}).items():
        value = saved_value(source, exchange)
        if value is MISSING:
            missing.append((name, source))
        else:
            ctx.variables.save(name, value)
    return missing


def save_missing(missing: list[tuple[str, str]], exchange: Exchange, what: str) -> StepFailed:
    name, source = missing[0]
    return StepFailed("http.save_missing", f"{what}: nothing to save as {name!r} at {source}{excerpt(exchange)}")
