"""``stream``: open a Server-Sent-Events response; ``receive`` then reads its events as
``{event, id, data}`` (``data`` parsed when it is JSON).

Codes: http.status, http.header_mismatch, sse.not_event_stream, sse.too_large (while
reading), and the net.* / timeout.* codes of the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from pydantic import Field

from probes.channels import CappedStream, EventStreamChannel, new_record
from probes.failures import StepFailed
from probes.steps.base import StepDone, StepKind
from probes.steps.http import RequestOptions, check_headers, check_status, request_kwargs, send
from probes.steps.request import target_text
from probes.suite.fields import ConnectionName, Matcher, Status, Strict

if TYPE_CHECKING:
    from probes.runtime import StepContext


class StreamOptions(RequestOptions):
    as_: ConnectionName = Field("stream", alias="as", description="the name receive steps use (on: NAME)")


class StreamExpect(Strict):
    status: Status | None = None
    headers: dict[str, Matcher] | None = None


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options = ctx.render(step.stream.model_dump(by_alias=True, exclude_none=True, exclude={"auth", "as_"}))
    expect = ctx.render(step.expect.model_dump(by_alias=True, exclude_none=True)) if step.expect else {}
    name = step.stream.as_
    method = options.get("method", "GET").upper()
    what = target_text(options)
    credentials = await ctx.credentials(step.stream.auth)
    kwargs = request_kwargs(options)
    kwargs["headers"] = {"Accept": "text/event-stream", **kwargs["headers"], **credentials.headers}
    kwargs["query"] = {**kwargs["query"], **credentials.query}
    url = ctx.target.http_url(options.get("path"), options.get("url"))
    if name in ctx.channels:
        await ctx.channels.pop(name).aclose()
    exchange = await send(ctx, method, url, stream=True, **kwargs)
    response = exchange.response
    try:
        check_status(ctx, expect.get("status"), exchange, what)
        check_headers(expect.get("headers"), response, what)
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("", "identity"):
            raise StepFailed(
                "sse.not_event_stream",
                f"{what} answered a {encoding}-compressed event stream though the probe asked for none; "
                "the stream's size cap could not bound what it decompresses to",
                content_encoding=encoding,
            )
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raise StepFailed(
                "sse.not_event_stream",
                f"{what} answered {content_type or 'no content type'}, not text/event-stream",
                content_type=content_type,
            )
    except BaseException:
        await response.aclose()
        raise
    assert isinstance(response.stream, httpx.AsyncByteStream)  # an AsyncClient's response
    response.stream = CappedStream(
        response.stream, ctx.limits.stream_bytes, "sse.too_large", f"the event stream {name!r}"
    )
    connection = ctx.evidence.add_connection(new_record(name, "sse", exchange.record["url"]))
    connection.update(
        handshake_status=response.status_code,
        handshake_ms=exchange.record.get("first_byte_ms"),
        remote_ip=exchange.record["remote_ip"],
        dns_ms=exchange.record["dns_ms"],
        headers_seen=exchange.record["headers_seen"],
    )
    ctx.channels[name] = EventStreamChannel(name, response, connection, ctx.limits)
    record["connection"] = name
    return StepDone(f"{what} → {response.status_code}, event stream {name!r} open")


KIND = StepKind(
    name="stream",
    options=StreamOptions,
    siblings={"expect": StreamExpect},
    run=run,
    codes=("http.status", "http.header_mismatch", "sse.not_event_stream", "sse.too_large"),
    opens="sse",
    declares="sse",
    describe=lambda options: f"{options.method.upper()} {options.path or options.url} as {options.as_}",
)
