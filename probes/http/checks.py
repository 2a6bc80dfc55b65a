"""HTTP checks: a sequence of requests, each with the status and JSON it must answer."""

from __future__ import annotations

import json
from typing import Any

from probes.base import CheckFailed, CheckSpec, Evidence, ProbeContext, http_request, issue_token, new_http_client

TAMPERED_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.not-a-valid-signature"


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise CheckFailed(f"{what} did not answer JSON") from None


def _expect_subset(actual: Any, expected: Any, where: str) -> None:
    """Every key/value in ``expected`` must be in ``actual`` (recursively for dicts)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise CheckFailed(f"{where}: expected an object, got {type(actual).__name__}")
        for key, value in expected.items():
            if key not in actual:
                raise CheckFailed(f"{where}: key {key!r} missing")
            _expect_subset(actual[key], value, f"{where}.{key}")
    elif actual != expected:
        raise CheckFailed(f"{where}: expected {expected!r}, got {actual!r}")


async def _auth_headers(mode: str, ctx: ProbeContext) -> dict[str, str]:
    if mode == "token":
        return {"Authorization": f"Bearer {await ctx.token()}"}
    if mode == "tampered":
        return {"Authorization": f"Bearer {TAMPERED_TOKEN}"}
    return {}


async def check_http(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    """Send the spec's ``requests`` in order; ``save`` keeps a JSON field for later paths."""
    saved: dict[str, str] = {}
    async with new_http_client(spec.timeout_s) as client:
        for step in spec.options["requests"]:
            method = step.get("method", "GET")
            path = step["path"].format(**saved)
            headers = await _auth_headers(step.get("auth", "none"), ctx)
            body = step.get("body")
            response, content = await http_request(
                ctx,
                evidence,
                client,
                method,
                path,
                headers=headers,
                json=step.get("json"),
                content=body.encode() if body is not None else None,
            )
            where = f"{method} {path}"
            expected_status = step.get("expect_status", 200)
            if response.status_code != expected_status:
                redirect = evidence["requests"][-1].get("redirect_not_followed")
                note = f" (a redirect to {redirect}: probes never follow redirects)" if redirect else ""
                raise CheckFailed(f"{where} answered HTTP {response.status_code}, expected {expected_status}{note}")
            if "expect_json" in step or "save" in step or "expect_keys" in step:
                data = _json(content, where)
                _expect_subset(data, step.get("expect_json", {}), where)
                for key in step.get("expect_keys", []):
                    if key not in data:
                        raise CheckFailed(f"{where}: key {key!r} missing")
                for name, key in step.get("save", {}).items():
                    saved[name] = str(data[key])
    return spec.options.get("success", f"{len(spec.options['requests'])} requests answered as expected")


async def check_auth(spec: CheckSpec, ctx: ProbeContext, evidence: Evidence) -> str:
    """Issue a token, have it accepted, and see the API refuse a missing or tampered one."""
    verify_path = spec.options.get("verify_path", "/api/auth/verify")
    token = await issue_token(ctx, evidence)
    async with new_http_client(spec.timeout_s) as client:
        cases = [
            ("valid token", {"Authorization": f"Bearer {token}"}, 200),
            ("missing token", {}, 401),
            ("tampered token", {"Authorization": f"Bearer {TAMPERED_TOKEN}"}, 401),
        ]
        for label, headers, expected in cases:
            response, _ = await http_request(ctx, evidence, client, "GET", verify_path, headers=headers)
            if response.status_code != expected:
                raise CheckFailed(
                    f"{label}: GET {verify_path} answered HTTP {response.status_code}, expected {expected}"
                )
    evidence["auth_enforced"] = True
    return "JWT issued and accepted; missing and tampered tokens refused with 401"
