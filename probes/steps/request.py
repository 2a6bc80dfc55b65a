"""``request``: one HTTP request and what its answer must be.

Codes: http.status, http.json_mismatch, http.header_mismatch, http.body_mismatch,
http.schema, http.not_json, http.time, http.too_large, http.protocol, http.save_missing,
auth.not_enforced, and the net.* / timeout.* codes of the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probes.steps.base import StepDone, StepKind
from probes.steps.http import (
    HttpExpect,
    RequestOptions,
    SaveSources,
    check_expectations,
    request_kwargs,
    save_all,
    save_missing,
    send,
)

if TYPE_CHECKING:
    from probes.runtime import StepContext


def target_text(options: dict[str, Any]) -> str:
    return f"{options.get('method', 'GET').upper()} {options.get('path') or options.get('url')}"


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options = ctx.render(step.request.model_dump(by_alias=True, exclude_none=True, exclude={"auth"}))
    expect = ctx.render(step.expect.model_dump(by_alias=True, exclude_none=True)) if step.expect else {}
    method = options.get("method", "GET").upper()
    what = target_text(options)
    credentials = await ctx.credentials(step.request.auth)
    kwargs = request_kwargs(options)
    kwargs["headers"] = {**kwargs["headers"], **credentials.headers}
    kwargs["query"] = {**kwargs["query"], **credentials.query}
    url = ctx.target.http_url(options.get("path"), options.get("url"))
    exchange = await send(ctx, method, url, **kwargs)
    record["status"] = exchange.response.status_code
    missing = save_all(ctx, ctx.render(step.save) if step.save else None, exchange)
    check_expectations(ctx, expect, exchange, what)
    if missing:
        raise save_missing(missing, exchange, what)
    return StepDone(f"{what} → {exchange.response.status_code} in {exchange.record['total_ms']:.1f} ms")


KIND = StepKind(
    name="request",
    options=RequestOptions,
    siblings={"expect": HttpExpect, "save": SaveSources},
    run=run,
    codes=(
        "http.status",
        "http.json_mismatch",
        "http.header_mismatch",
        "http.body_mismatch",
        "http.schema",
        "http.not_json",
        "http.time",
        "http.too_large",
        "http.protocol",
        "http.save_missing",
        "auth.not_enforced",
    ),
    declares="http",
    describe=lambda options: f"{options.method.upper()} {options.path or options.url}",
)
