"""Data for 0014: suites get a first version from the definition they held, runs point at
it, impact tags move to the suites that use them, environments' client settings become
variables, and the built-in failure rules are seeded as they are written here (frozen: the
code's BUILTIN_RULES may change later without changing what this migration did)."""

import hashlib
import json

from django.db import migrations

# The names 0003 seeded before failures carried codes.
OLD_BUILTIN_NAMES = [
    "ws-closed-1000-after-send",
    "ws-1011-server-error",
    "ws-1008-policy",
    "message-too-big",
    "ws-handshake-rejected",
    "events-missing",
    "events-out-of-order",
    "connect-timeout",
    "receive-timeout",
    "agent-startup-slow",
    "api-response-slow",
    "performance-target-missed",
    "http-5xx",
    "http-4xx",
    "dns-failure",
    "connection-refused",
    "connection-reset",
    "auth-not-enforced",
    "tls-error",
    "host-not-allowed",
    "assertion",
]
RULES = [
    {
        "name": "ws-closed-1000-after-send",
        "label": "WebSocket closed normally (1000) right after send",
        "code": "ws.closed",
        "details": {"close_code": 1000, "initiator": "server", "after_send": True},
    },
    {
        "name": "ws-1011-server-error",
        "label": "WebSocket closed with 1011 internal error",
        "code": "ws.closed",
        "details": {"close_code": 1011},
    },
    {
        "name": "ws-1008-policy",
        "label": "WebSocket closed with 1008 policy violation",
        "code": "ws.closed",
        "details": {"close_code": 1008},
    },
    {
        "name": "connection-closed",
        "label": "Connection closed before the expected frames",
        "code": "ws.closed sse.closed",
        "qualifier": "close_code",
    },
    {
        "name": "message-too-big",
        "label": "Message over the size limit",
        "code": "*.too_large",
        "message_regex": "too large|exceeds \\d+ bytes|payload size",
    },
    {
        "name": "ws-handshake-rejected",
        "label": "WebSocket handshake rejected",
        "code": "ws.handshake_rejected",
        "qualifier": "status",
    },
    {"name": "frame-missing", "label": "Expected frame missing", "code": "ws.frame_missing sse.event_missing"},
    {"name": "frame-out-of-order", "label": "Frames out of order", "code": "ws.out_of_order sse.out_of_order"},
    {"name": "forbidden-frame", "label": "Forbidden frame received", "code": "ws.forbidden_frame sse.forbidden_event"},
    {
        "name": "unexpected-frame",
        "label": "Unexpected frame in a strict sequence",
        "code": "ws.unexpected_frame sse.unexpected_event",
    },
    {"name": "not-json", "label": "Answer is not the JSON expected", "code": "*.not_json sse.not_event_stream"},
    {
        "name": "connect-timeout",
        "label": "Connect timeout",
        "code": "timeout.connect",
        "message_regex": "connect(?:ion)? timed? ?out",
    },
    {
        "name": "receive-timeout",
        "label": "Receive timeout",
        "code": "timeout.*",
        "message_regex": "timed? ?out\\b|timeout",
    },
    {
        "name": "metric-over-target",
        "label": "Performance target missed",
        "code": "metric.over_target",
        "qualifier": "metric",
    },
    {"name": "auth-not-enforced", "label": "Authentication not enforced", "code": "auth.not_enforced"},
    {
        "name": "auth-rejected",
        "label": "Credentials refused when asking for a token",
        "code": "auth.rejected auth.no_token",
    },
    {
        "name": "http-5xx",
        "label": "HTTP 5xx from the server",
        "code": "http.status",
        "message_regex": "\\bHTTP 5\\d\\d\\b|\\b5\\d\\d (?:Internal Server Error|Bad Gateway|Service Unavailable)",
        "http_status_min": 500,
        "http_status_max": 599,
    },
    {
        "name": "http-4xx",
        "label": "Unexpected HTTP 4xx",
        "code": "http.status",
        "http_status_min": 400,
        "http_status_max": 499,
    },
    {"name": "http-status", "label": "Unexpected HTTP status", "code": "http.status"},
    {
        "name": "response-mismatch",
        "label": "Response does not match",
        "code": "http.json_mismatch http.header_mismatch http.body_mismatch http.schema http.time *.save_missing ws.close_code ws.not_closed ws.handshake_accepted",
    },
    {
        "name": "dns-failure",
        "label": "DNS failure",
        "code": "net.dns",
        "message_regex": "name or service not known|getaddrinfo|ENOTFOUND",
    },
    {
        "name": "connection-refused",
        "label": "Connection refused",
        "code": "net.refused",
        "message_regex": "connection refused|ECONNREFUSED",
    },
    {
        "name": "connection-reset",
        "label": "Connection reset by the server",
        "code": "net.reset",
        "message_regex": "connection reset|ECONNRESET",
    },
    {
        "name": "tls-error",
        "label": "TLS error",
        "code": "net.tls",
        "message_regex": "\\bTLS\\b|\\bSSL\\b|certificate verify",
    },
    {"name": "host-not-allowed", "label": "Host outside the environment's allowlist", "code": "net.not_allowed"},
    {"name": "network-error", "label": "Network error", "code": "net.* http.protocol"},
    {"name": "missing-variable", "label": "Variable missing on the worker", "code": "config.*"},
    {"name": "probe-error", "label": "Probe engine error", "code": "probe.error"},
    {
        "name": "assertion",
        "label": "Assertion mismatch",
        "message_regex": "assert|expected|mismatch|!=|not equal|\\bwant\\b|but was",
    },
]
CONDITION_DEFAULTS = {
    "code": "",
    "details": {},
    "qualifier": "",
    "message_regex": "",
    "http_status_min": None,
    "http_status_max": None,
}
DECLARES = {
    "http": "http",
    "auth": "auth http",
    "ws_connect": "auth ws",
    "ws_send": "ws",
    "ws_events": "ws",
    "ws_fanout": "ws",
    "performance": "http ws",
}


def forwards(apps, schema_editor):
    Suite = apps.get_model("runs", "Suite")
    SuiteVersion = apps.get_model("runs", "SuiteVersion")
    Run = apps.get_model("runs", "Run")
    ImpactTag = apps.get_model("runs", "ImpactTag")
    TestCase = apps.get_model("runs", "TestCase")
    Environment = apps.get_model("runs", "Environment")
    FailureRule = apps.get_model("runs", "FailureRule")

    for suite in Suite.objects.all():
        if suite.definition.get("imported"):
            suite.origin = "import"
        else:
            canonical = json.dumps(suite.definition, sort_keys=True, separators=(",", ":"))  # as digest_of
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            suite.current_version = SuiteVersion.objects.create(
                suite=suite, number=1, digest=digest, definition=suite.definition, source_path=suite.source_path
            )
            Run.objects.filter(suite=suite).update(version=suite.current_version)
        suite.save()

    through = TestCase.impact_tags.through
    for tag in ImpactTag.objects.all():
        suite_ids = sorted(set(through.objects.filter(impacttag=tag).values_list("testcase__suite_id", flat=True)))
        if not suite_ids:
            tag.delete()
            continue
        tag.suite_id = suite_ids[0]
        tag.save()
        for suite_id in suite_ids[1:]:
            copy = ImpactTag.objects.create(
                suite_id=suite_id, name=tag.name, mrr=tag.mrr, severity=tag.severity, description=tag.description
            )
            through.objects.filter(impacttag=tag, testcase__suite_id=suite_id).update(impacttag=copy)

    for old, new in DECLARES.items():
        TestCase.objects.filter(declares=old).update(declares=new)

    for environment in Environment.objects.all():
        variables = {}
        if environment.client_id:
            variables["client_id"] = environment.client_id
        if environment.client_secret_env:
            variables["client_secret"] = "${env.%s}" % environment.client_secret_env
        environment.variables = variables
        environment.save()

    # Rules written before failures carried codes: a close code becomes a ws.closed rule, a
    # status range an http.status one, so they keep matching what they matched.
    for rule in FailureRule.objects.exclude(name__in=OLD_BUILTIN_NAMES):
        if rule.close_code is not None:
            rule.code, rule.details = "ws.closed", {**(rule.details or {}), "close_code": rule.close_code}
        elif rule.http_status_min is not None or rule.http_status_max is not None:
            rule.code = rule.code or "http.status"
        rule.save()
    # The built-in rules: those still built in take their new conditions and keep what an
    # admin set (enabled, order, label); those for classes that no longer occur go.
    new = {rule["name"]: rule for rule in RULES}
    FailureRule.objects.filter(name__in=set(OLD_BUILTIN_NAMES) - set(new)).delete()
    existing = {rule.name: rule for rule in FailureRule.objects.filter(name__in=list(new))}
    for order, (name, fields) in enumerate(new.items(), start=1):
        conditions = {key: fields.get(key, default) for key, default in CONDITION_DEFAULTS.items()}
        if name in existing:
            FailureRule.objects.filter(pk=existing[name].pk).update(**conditions)
        else:
            FailureRule.objects.create(name=name, label=fields["label"], order=order * 10, **conditions)


class Migration(migrations.Migration):
    dependencies = [("runs", "0014_suite_versions")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
