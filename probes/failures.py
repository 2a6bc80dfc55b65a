"""Why a step failed, as data: a machine-readable code, its details, and a sentence.

Classification (``runs.analysis.classification``) matches codes and details, never the
wording of messages, so messages can improve without regrouping old failures. Each step
kind lists the codes it can raise in its module; ``CODES`` is the whole vocabulary.
"""

from __future__ import annotations

from typing import Any

CODES: dict[str, str] = {
    # HTTP requests and streams
    "http.status": "the response status is not the expected one",
    "http.json_mismatch": "a JSONPath in the response body does not match",
    "http.header_mismatch": "a response header does not match",
    "http.body_mismatch": "the raw response body does not match",
    "http.schema": "the response body does not validate against the JSON Schema",
    "http.not_json": "the response body is not JSON where JSON was expected",
    "http.time": "the response took longer than allowed",
    "http.too_large": "the response body is over the size cap",
    "http.protocol": "the server broke the HTTP protocol",
    "http.save_missing": "a value to save is not in the response",
    # WebSocket connections
    "ws.handshake_rejected": "the WebSocket handshake was refused",
    "ws.handshake_accepted": "a handshake that should have been refused was accepted",
    "ws.closed": "the connection closed before what was expected arrived",
    "ws.frame_missing": "an expected frame never came (the sequence's last frame did)",
    "ws.out_of_order": "an expected frame arrived before an earlier one",
    "ws.forbidden_frame": "a forbidden frame arrived",
    "ws.unexpected_frame": "a frame arrived between sequence items of a strict receive",
    "ws.not_json": "a frame is not the JSON the step expects",
    "ws.too_large": "a frame is over the size cap",
    "ws.not_closed": "the server did not close the connection in time",
    "ws.close_code": "the server closed with another code than expected",
    "ws.save_missing": "a value to save is not in the frame",
    # Server-Sent Events
    "sse.closed": "the event stream ended before what was expected arrived",
    "sse.event_missing": "an expected event never came (the sequence's last event did)",
    "sse.out_of_order": "an expected event arrived before an earlier one",
    "sse.forbidden_event": "a forbidden event arrived",
    "sse.unexpected_event": "an event arrived between sequence items of a strict receive",
    "sse.not_json": "an event's data is not the JSON the step expects",
    "sse.too_large": "the stream is over the size cap",
    "sse.not_event_stream": "the response is not text/event-stream",
    "sse.save_missing": "a value to save is not in the event",
    # Time
    "timeout.receive": "nothing matching arrived within the step's time",
    "timeout.connect": "the host did not accept the connection in time",
    "timeout.read": "the server accepted the request but did not answer in time",
    "timeout.check": "the whole check ran past its timeout",
    "timeout.pong": "no pong came back for a ping",
    # Network
    "net.refused": "nothing listens at that address",
    "net.dns": "the host name does not resolve",
    "net.tls": "the TLS handshake failed",
    "net.reset": "the server reset the connection",
    "net.not_allowed": "the host is outside the environment's allowed hosts",
    "net.error": "another network error",
    # Authentication
    "auth.rejected": "the service refused the credentials an auth profile sent for a token",
    "auth.no_token": "the token response holds no token where the profile looks",
    "auth.not_enforced": "a request without valid credentials was answered as if allowed",
    # Configuration on the worker
    "config.missing_env": "an environment variable the suite names is not set on the worker",
    "config.env_refused": "the suite names an environment variable suites may not read on this worker",
    "config.template": "a template names a value that does not exist at run time",
    # Metrics
    "metric.over_target": "a measured percentile is over its target",
    # The engine itself (a bug: please report it)
    "probe.error": "the probe engine failed",
}


class StepFailed(Exception):
    """The service did not behave as a step expects.

    ``message`` says what was expected and what was seen; ``code`` (a key of ``CODES``)
    and ``details`` (plain JSON values: status, close code, which frame …) say the same
    for machines.
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        assert code in CODES, code
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message
