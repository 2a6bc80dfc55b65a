"""``receive``: wait for frames (WebSocket) or events (stream) that match a sequence.

Frames that do not match ``where`` are ignored (kept as evidence). Sequence items must come
in order; unrelated frames may come between them unless ``strict``. An item that arrives
before an earlier one is *out of order*; an item never seen by the time the last one
arrives is *missing*; a frame matching ``forbid`` fails the step at once. The deadline
(``within_s``, and the check's timeout) holds however fast the peer sends.

Codes: timeout.receive, ws.closed / sse.closed, ws.frame_missing / sse.event_missing,
ws.out_of_order / sse.out_of_order, ws.forbidden_frame / sse.forbidden_event,
ws.unexpected_frame / sse.unexpected_event, ws.not_json, ws.too_large, sse.too_large,
ws.save_missing / sse.save_missing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from probes.channels import Channel, ChannelClosed, Message, closed_failure
from probes.failures import StepFailed
from probes.matchers import MISSING, DocumentMatcher, compile_document_matcher, compile_path, flow, short
from probes.steps.base import StepDone, StepKind
from probes.suite.fields import ConnectionName, FrameSource, Seconds, Strict, VarName
from probes.suite.fields import DocumentMatcher as DocumentMatcherSpec

if TYPE_CHECKING:
    from probes.runtime import StepContext

# Codes per connection type: (WebSocket, SSE).
CODES = {
    "closed": ("ws.closed", "sse.closed"),
    "missing": ("ws.frame_missing", "sse.event_missing"),
    "order": ("ws.out_of_order", "sse.out_of_order"),
    "forbidden": ("ws.forbidden_frame", "sse.forbidden_event"),
    "unexpected": ("ws.unexpected_frame", "sse.unexpected_event"),
    "not_json": ("ws.not_json", "sse.not_json"),
    "save": ("ws.save_missing", "sse.save_missing"),
}
SEEN_SHOWN = 12


class SequenceItem(Strict):
    match: DocumentMatcherSpec
    mark: str | None = None
    save: dict[VarName, FrameSource] | None = Field(None, description="name → $… (JSONPath into the frame) or text")


class ReceiveOptions(Strict):
    on: ConnectionName | None = Field(None, description="the connection; default: ws, or the only one open")
    where: DocumentMatcherSpec | None = None
    within_s: Seconds | None = None
    sequence: list[SequenceItem] = Field(min_length=1)
    forbid: list[DocumentMatcherSpec] = Field(default_factory=list)
    strict: bool = False

    @field_validator("sequence", mode="before")
    @classmethod
    def _short_items(cls, items: Any) -> Any:
        """A sequence item is a matcher, or ``{match: matcher, mark, save}``."""
        if isinstance(items, list):
            return [item if isinstance(item, dict) and "match" in item else {"match": item} for item in items]
        return items


def code(channel: Channel, what: str) -> str:
    return CODES[what][channel.type == "sse"]


def noun(channel: Channel) -> str:
    return "event" if channel.type == "sse" else "frame"


def shown(channel: Channel, message: Message) -> str:
    """A frame as a message shows it; an event with its type."""
    if channel.type == "sse" and isinstance(message.document, dict):
        return short(f"{message.document.get('event')}: {message.text}", 100)
    return short(message.text, 100)


class _Seen:
    """What came, as the sequence's first path shows it: ``seen: started, thinking``."""

    def __init__(self, items: list[DocumentMatcher]) -> None:
        first = items[0].paths[0][0] if items[0].paths else None
        self.path = first
        self.labels: list[str] = []
        self.more = 0

    def add(self, message: Message) -> None:
        if len(self.labels) >= SEEN_SHOWN:
            self.more += 1
            return
        value = MISSING
        if self.path is not None and message.document is not MISSING:
            value = self.path.get(message.document)
        self.labels.append(short(value if value is not MISSING else message.text, 40))

    def __str__(self) -> str:
        if not self.labels:
            return "seen: nothing"
        return "seen: " + ", ".join(self.labels) + (f" and {self.more} more" if self.more else "")


def _save(ctx: StepContext, channel: Channel, item: dict[str, Any], message: Message, position: str) -> None:
    for name, source in (item.get("save") or {}).items():
        if source == "text":
            value: Any = message.text
        else:
            value = MISSING if message.document is MISSING else compile_path(source).get(message.document)
        if value is MISSING:
            raise StepFailed(code(channel, "save"), f"{position}: nothing to save as {name!r} at {source}")
        ctx.variables.save(name, value)


async def run(step: Any, ctx: StepContext, record: dict[str, Any]) -> StepDone:
    options: ReceiveOptions = step.receive
    channel = ctx.channel(options.on, Channel)
    spec = ctx.render(options.model_dump(exclude_none=True))
    items = [compile_document_matcher(item["match"]) for item in spec["sequence"]]
    where = compile_document_matcher(spec["where"]) if spec.get("where") else None
    forbid = [compile_document_matcher(f) for f in spec.get("forbid", [])]
    everything = items + forbid + ([where] if where else [])
    json_only = (
        channel.type == "websocket" and any(m.uses_json for m in everything) and all(m.text is None for m in everything)
    )
    container = next((m.expects for m in everything if m.expects), None) if json_only else None
    started = time.perf_counter()
    within = options.within_s
    deadline = min(ctx.deadline, started + within) if within else ctx.deadline
    total, index, seen = len(items), 0, _Seen(items)
    thing = noun(channel)
    written = [flow(item.match) for item in options.sequence]  # as in the file: ${…} unrendered

    def position(i: int) -> str:
        return f"{thing} {i + 1} of {total} ({written[i]})"

    matched: list[int] = []
    record["matched"] = matched
    while True:
        try:
            message = await channel.receive(deadline)
        except TimeoutError:
            waited = time.perf_counter() - started
            raise StepFailed(
                "timeout.receive",
                f"{position(index)} not seen within {waited:.1f} s; {seen}",
                item=index + 1,
                of=total,
                waited_s=round(waited, 3),
            ) from None
        except ChannelClosed as closed:
            failure = closed_failure(channel, closed, f"before {position(index)}; {seen}")
            failure.details.update(item=index + 1, of=total)
            raise failure from None
        document = message.document
        if json_only and (document is MISSING or (container is not None and not isinstance(document, container))):
            kind = (
                "not JSON"
                if document is MISSING
                else f"JSON but not {'an object' if container is dict else 'an array'}"
            )
            raise StepFailed(
                code(channel, "not_json"),
                f"{thing} {message.index} on {channel.name!r} is {kind} ({shown(channel, message)}); "
                f"the step matches JSON {'objects' if container is dict else 'values'}",
                frame=message.index,
            )
        if where is not None and where.check(document, message.text):
            continue  # an unrelated frame: evidence only
        for rule in forbid:
            if rule.check(document, message.text) is None:
                raise StepFailed(
                    code(channel, "forbidden"),
                    f"{thing} {message.index} matches forbid {flow(rule.spec)}: {shown(channel, message)}; {seen}",
                    frame=message.index,
                )
        if items[index].check(document, message.text) is None:
            arrived = time.perf_counter()
            seen.add(message)
            matched.append(message.index)
            item = spec["sequence"][index]
            ctx.mark(item.get("mark"), started, arrived)
            _save(ctx, channel, item, message, position(index))
            index += 1
            if index == total:
                noun_plural = thing + ("s" if total != 1 else "")
                return StepDone(
                    f"{total} {noun_plural} matched on {channel.name!r} in {(arrived - started) * 1000:.1f} ms"
                )
            continue
        later = next((j for j in range(index + 1, total) if items[j].check(document, message.text) is None), None)
        seen.add(message)
        if later == total - 1:
            raise StepFailed(
                code(channel, "missing"),
                f"{position(index)} not seen by the time {thing} {total} of {total} arrived; {seen}",
                item=index + 1,
                of=total,
            )
        if later is not None:
            raise StepFailed(
                code(channel, "order"),
                f"{position(later)} arrived before {thing} {index + 1} ({written[index]}); {seen}",
                item=later + 1,
                expected_item=index + 1,
                of=total,
            )
        if options.strict:
            raise StepFailed(
                code(channel, "unexpected"),
                f"{'an' if thing == 'event' else 'a'} {thing} ({shown(channel, message)}) came before "
                f"{position(index)}; the receive is strict; {seen}",
                item=index + 1,
                of=total,
            )


KIND = StepKind(
    name="receive",
    options=ReceiveOptions,
    run=run,
    codes=tuple(
        sorted({c for pair in CODES.values() for c in pair} | {"timeout.receive", "ws.too_large", "sse.too_large"})
    ),
    uses="any",
    describe=lambda options: f"{len(options.sequence)} in sequence" + (f" on {options.on}" if options.on else ""),
)
