"""Webhook alerts: the decision, the payloads, delivery to a real receiver on loopback
(retries, failures, a real worker), and the DevOps-only pages that never show a URL back."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from runs import alerts
from runs.analysis.standing import run_standing
from runs.models import (
    Environment,
    ImpactTag,
    Run,
    RunStatus,
    Suite,
    Webhook,
    WebhookDelivery,
    mask_url,
    validate_webhook_url,
)
from runs.services import finish_run
from runs.state import SuiteState
from runs.tasks import IN_FLIGHT, deliver, deliver_webhook
from tests.factories import CategoryFactory, EnvironmentFactory, ResultFactory, RunFactory, SuiteFactory, UserFactory
from tests.factories import TestCaseFactory as CheckFactory

SECRET_PATH = "/services/T000/B000/xoxbSECRETtoken9876"
Status = WebhookDelivery.Status


class Receiver:
    """An HTTP server on an ephemeral loopback port that records what it is sent; it can
    answer the first ``fail_first`` requests with ``fail_status``, ``reason`` and ``answer``."""

    def __init__(
        self,
        fail_first: int = 0,
        fail_status: int = 500,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
        answer: bytes = b"server on fire",
    ):
        self.requests: list[dict] = []
        self.fail_first, self.fail_status, self.fail_headers = fail_first, fail_status, headers or {}
        receiver, receiver_answer = self, answer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(receiver.fail_status if failing else 200, reason if failing else None)
                for name, value in (receiver.fail_headers if failing else {}).items():
                    self.send_header(name, value)
                answer = receiver_answer if failing else b"ok"
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def json(self, index: int = 0) -> dict:
        return json.loads(self.requests[index]["body"])

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def webhooks_may_reach_loopback(settings):
    """The receivers here listen on loopback, which webhooks reach only when named."""
    settings.GOLDPATH_WEBHOOK_ALLOWED_HOSTS = ["localhost"]


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


REFUSED = [("failed", "connection-refused")]  # every check ended before any response


def state(verdict: str, mrr: int = 0, scope: str = Run.Scope.ALL, outcomes=(("passed", ""),)) -> SuiteState:
    """A finished run as alerts read it: with its standing (``outcomes``: its results'
    outcome and failure class)."""
    run = Run(verdict=verdict, mrr_at_risk=mrr, scope=scope, base_url="http://staging.example.com")
    standing = run_standing(
        verdict=verdict, base_url=run.base_url, imported=False, outcomes=outcomes, realness_score=0.9, mock_count=0
    )
    return SuiteState(run, standing)


def pending_delivery(url: str, payload: dict | None = None) -> WebhookDelivery:
    webhook = Webhook.objects.create(name="ops", url=url)
    return WebhookDelivery.objects.create(webhook=webhook, event=alerts.TEST, payload=payload or {"event": "test"})


# The decision ------------------------------------------------------------------------------


def test_the_first_run_ever_raises_no_alert():
    assert alerts.decide(state("FAIL", 550_000), None) == []


def test_the_same_verdict_and_mrr_raise_no_alert():
    assert alerts.decide(state("PARTIAL SUCCESS", 550_000), state("PARTIAL SUCCESS", 550_000)) == []


def test_pass_to_partial_success_is_a_verdict_change():
    assert alerts.decide(state("PARTIAL SUCCESS"), state("PASS")) == [alerts.VERDICT_CHANGED]


def test_mrr_at_risk_rising_from_zero_is_an_mrr_rise():
    assert alerts.decide(state("PASS", 550_000), state("PASS", 0)) == [alerts.MRR_ROSE]


def test_mrr_at_risk_falling_is_not_news_but_the_verdict_change_is():
    assert alerts.decide(state("PASS", 0), state("PARTIAL SUCCESS", 550_000)) == [alerts.VERDICT_CHANGED]


def test_a_scoped_rerun_never_alerts():
    rerun = state("FAIL", 900_000, scope=Run.Scope.FAILED)
    assert alerts.decide(rerun, state("PASS")) == []


def test_a_run_that_reached_nothing_is_unreachable_never_an_mrr_rise():
    """A mistyped URL fails every check before any response: its stored MRR at risk (every
    capability) is not news of broken features, and the outage is said once."""
    typo = state("FAIL", 670_000, outcomes=REFUSED)
    assert alerts.decide(typo, state("PASS", 0)) == [alerts.UNREACHABLE]
    assert alerts.decide(typo, state("FAIL", 550_000)) == [alerts.UNREACHABLE]
    assert alerts.decide(typo, state("FAIL", 670_000, outcomes=REFUSED)) == []  # still down: said already


def test_the_first_run_that_reaches_the_service_again_changed_from_could_not_reach():
    down = state("FAIL", 670_000, outcomes=REFUSED)
    assert alerts.decide(state("FAIL", 550_000), down) == [alerts.VERDICT_CHANGED]
    assert alerts.decide(state("PASS"), down) == [alerts.VERDICT_CHANGED]


def test_unreachable_alerts_go_to_the_webhooks_that_hear_of_verdict_changes():
    run = Run(environment_id=1, suite_id=2)
    verdicts_only = Webhook(name="verdicts", on_mrr_rise=False)
    mrr_only = Webhook(name="money", on_verdict_change=False)
    assert alerts.matching_webhooks([verdicts_only, mrr_only], run, alerts.UNREACHABLE) == [verdicts_only]


def test_webhooks_match_by_enabled_filters_and_event_flags():
    run = Run(environment_id=1, suite_id=2)
    everything = Webhook(name="all")
    staging = Webhook(name="staging", environment_id=1)
    production = Webhook(name="production", environment_id=9)
    other_suite = Webhook(name="other suite", suite_id=3)
    verdicts_only = Webhook(name="verdicts", on_mrr_rise=False)
    disabled = Webhook(name="off", enabled=False)
    hooks = [everything, staging, production, other_suite, verdicts_only, disabled]
    assert alerts.matching_webhooks(hooks, run, alerts.VERDICT_CHANGED) == [everything, staging, verdicts_only]
    assert alerts.matching_webhooks(hooks, run, alerts.MRR_ROSE) == [everything, staging]


# Payloads ----------------------------------------------------------------------------------


@pytest.fixture
def changed_run():
    run = Run(
        pk=42,
        suite=Suite(name="golden-path"),
        environment=Environment(name="staging"),
        verdict="PARTIAL SUCCESS",
        passed=9,
        total=12,
        mrr_at_risk=550_000,
        base_url="http://staging.example.com",
    )
    standing = run_standing(
        verdict=run.verdict,
        base_url=run.base_url,
        imported=False,
        outcomes=[("passed", ""), ("failed", "ws-closed-1000-after-send")],
        realness_score=0.9,
        mock_count=0,
    )
    return SuiteState(run, standing), state("PASS", 0)


def test_the_generic_payload_says_what_changed_with_a_link(changed_run, settings):
    settings.SITE_URL = "https://goldpath.example.com"
    payload = alerts.build_payload(Webhook.Kind.GENERIC, alerts.VERDICT_CHANGED, *changed_run)
    assert payload == {
        "event": "verdict-changed",
        "run": {
            "id": 42,
            "url": "https://goldpath.example.com/runs/42/",
            "suite": "golden-path",
            "environment": "staging",
            "verdict": "PARTIAL SUCCESS",
            "previous_verdict": "PASS",
            "standing": {
                "key": "partial-success",
                "label": "PARTIAL SUCCESS",
                "reached": True,
                "realness": "real",
                "notes": [],
            },
            "previous_standing": {"key": "pass", "label": "PASS", "reached": True, "realness": "real", "notes": []},
            "passed": 9,
            "total": 12,
            "mrr_at_risk": 550_000,
            "previous_mrr_at_risk": 0,
        },
        "summary": "golden-path on staging went from PASS to PARTIAL SUCCESS in run #42: "
        "9 of 12 checks passed, $550,000 MRR at risk.",
    }


def test_the_mrr_summary_is_one_plain_sentence(changed_run):
    payload = alerts.build_payload(Webhook.Kind.GENERIC, alerts.MRR_ROSE, *changed_run)
    assert payload["summary"] == (
        "MRR at risk for golden-path on staging rose from $0 to $550,000 in run #42 "
        "(PARTIAL SUCCESS, 9 of 12 checks passed)."
    )


def test_the_slack_payload_has_text_a_section_and_a_link_to_the_run(changed_run, settings):
    settings.SITE_URL = "https://goldpath.example.com"
    payload = alerts.build_payload(Webhook.Kind.SLACK, alerts.VERDICT_CHANGED, *changed_run)
    assert payload["text"].startswith("golden-path on staging went from PASS to PARTIAL SUCCESS")
    section = payload["blocks"][0]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "<https://goldpath.example.com/runs/42/|Open run #42>" in section["text"]["text"]
    assert json.loads(json.dumps(payload)) == payload


def test_a_test_alert_without_any_run_still_has_a_summary():
    payload = alerts.build_payload(Webhook.Kind.GENERIC, alerts.TEST, None, None, "ops channel")
    assert payload["event"] == "test" and payload["run"] is None
    assert "ops channel" in payload["summary"]


# Secrets and addresses ---------------------------------------------------------------------


def test_it_masks_a_webhook_url_to_scheme_host_and_last_four_characters():
    assert mask_url("https://hooks.slack.com/services/T000/B000/XXXXabcd") == "https://hooks.slack.com/…abcd"
    assert mask_url("http://127.0.0.1:8080/hook/longsecretvalue1234") == "http://127.0.0.1:8080/…1234"
    assert mask_url("https://user:pw@example.com/a?token=supersecretvalue") == "https://example.com/…alue"
    assert mask_url("https://example.com/") == "https://example.com/…"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "https:///no-host",
    ],
)
def test_it_refuses_webhook_urls_that_are_not_http_or_point_at_metadata(url):
    with pytest.raises(ValidationError) as caught:
        validate_webhook_url(url)
    assert url not in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "https://hooks.slack.com/services/T/B/x"])
def test_it_accepts_http_urls_including_loopback(url):
    assert Webhook._meta.get_field("url").clean(url, None) == url  # the field's validators pass it as given


def test_the_retry_delay_grows_from_the_configured_base(settings):
    settings.GOLDPATH_WEBHOOK_RETRY_BASE = 10
    assert [alerts.retry_delay(n) for n in (1, 2, 3, 4)] == [10, 30, 90, 270]
    assert alerts.retry_delay(1, retry_after=120) == 120


# Deciding against the database -------------------------------------------------------------


@pytest.fixture
def golden(db):
    """A suite of two non-critical checks; the second carries $550,000 of MRR."""
    suite = SuiteFactory(name="golden-path")
    category = CategoryFactory(suite=suite, critical=False)
    steady = CheckFactory(category=category, suite=suite)
    chat = CheckFactory(category=category, suite=suite)
    chat.impact_tags.add(ImpactTag.objects.create(suite=suite, name="Chat", mrr=550_000))
    environment = EnvironmentFactory(name="staging")

    def finish(chat_outcome: str = "passed", scope: str = Run.Scope.ALL) -> Run:
        run = RunFactory(suite=suite, environment=environment, status=RunStatus.RUNNING, scope=scope)
        ResultFactory(run=run, test_case=steady)
        ResultFactory(run=run, test_case=chat, outcome=chat_outcome)
        finish_run(run)
        run.refresh_from_db()
        return run

    finish.suite, finish.environment = suite, environment
    return finish


def test_it_stores_one_delivery_per_webhook_and_event_when_the_verdict_changes(golden):
    everywhere = Webhook.objects.create(name="all", url="http://127.0.0.1:9/a")
    mrr_only = Webhook.objects.create(name="money", url="http://127.0.0.1:9/b", on_verdict_change=False)
    elsewhere = Webhook.objects.create(name="prod", url="http://127.0.0.1:9/c", environment=EnvironmentFactory())
    assert alerts.run_finished(golden().pk) == []  # the first run: nothing to compare with
    run = golden("failed")
    assert (run.verdict, run.mrr_at_risk) == ("PARTIAL SUCCESS", 550_000)
    created = alerts.run_finished(run.pk)
    rows = WebhookDelivery.objects.filter(pk__in=created)
    assert sorted(rows.values_list("webhook__name", "event")) == [
        ("all", "mrr-rose"),
        ("all", "verdict-changed"),
        ("money", "mrr-rose"),
    ]
    assert not elsewhere.deliveries.exists()
    assert everywhere.deliveries.get(event="verdict-changed").payload["run"]["previous_verdict"] == "PASS"
    assert mrr_only.deliveries.get().status == Status.PENDING
    assert alerts.run_finished(run.pk) == []  # asked twice: nothing more
    assert WebhookDelivery.objects.count() == 3


def test_a_run_that_reached_nothing_stores_an_unreachable_alert_and_no_mrr_rise(golden):
    """Every check refused: the run keeps the MRR of every capability whose checks failed,
    which rose from $0, but its revenue was not assessed — the alert says it could not reach."""
    Webhook.objects.create(name="all", url="http://127.0.0.1:9/a")
    Webhook.objects.create(name="slack", url="http://127.0.0.1:9/b", kind=Webhook.Kind.SLACK)
    golden()
    run = RunFactory(suite=golden.suite, environment=golden.environment, status=RunStatus.RUNNING)
    for check in golden.suite.test_cases.all():
        ResultFactory(run=run, test_case=check, outcome="failed", failure_class="connection-refused")
    finish_run(run)
    run.refresh_from_db()
    assert run.mrr_at_risk == 550_000  # as stored with the run
    created = alerts.run_finished(run.pk)
    rows = WebhookDelivery.objects.filter(pk__in=created)
    assert sorted(rows.values_list("webhook__name", "event")) == [("all", "unreachable"), ("slack", "unreachable")]
    generic = rows.get(webhook__name="all").payload
    assert (generic["run"]["mrr_at_risk"], generic["run"]["previous_mrr_at_risk"]) == (None, 0)
    assert (generic["run"]["standing"]["key"], generic["run"]["standing"]["reached"]) == ("unreachable", False)
    assert generic["summary"] == (
        f"The probes of golden-path on staging could not reach {run.base_url} — configuration or outage, "
        f"revenue not assessed (run #{run.pk}; the run before was PASS · mocked?)."
    )
    slack = rows.get(webhook__name="slack").payload
    assert slack["blocks"][0]["text"]["text"].startswith("*Could not reach the service*")
    assert slack["blocks"][1]["elements"][0]["text"].endswith("COULD NOT REACH · 0/2 passed · revenue not assessed")


def test_a_scoped_rerun_stores_no_delivery(golden):
    Webhook.objects.create(name="all", url="http://127.0.0.1:9/a")
    golden()
    rerun = golden("failed", scope=Run.Scope.FAILED)
    assert alerts.run_finished(rerun.pk) == []
    assert not WebhookDelivery.objects.exists()


def test_finish_run_decides_alerts_once_the_run_is_committed(golden, django_capture_on_commit_callbacks, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(alerts, "queue_delivery", lambda pk: queued.append(pk) or True)  # the broker is the edge here
    Webhook.objects.create(name="all", url="http://127.0.0.1:9/a", on_mrr_rise=False)
    golden()
    with django_capture_on_commit_callbacks(execute=False):
        run = golden("failed")
        assert not WebhookDelivery.objects.exists()  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        run = golden("passed")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.run, delivery.event, queued) == (run, "verdict-changed", [delivery.pk])


# Delivery to a real receiver ---------------------------------------------------------------


@pytest.mark.django_db
def test_it_delivers_on_the_first_2xx(receiver):
    delivery = pending_delivery(receiver.url, {"event": "test", "summary": "hello"})
    before = timezone.now()
    assert deliver(delivery.pk) is None
    after = timezone.now()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (Status.DELIVERED, 1, 200)
    assert before <= delivery.delivered_at <= after and delivery.error == ""
    request = receiver.requests[0]
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    assert receiver.json() == {"event": "test", "summary": "hello"}


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_4xx_fails_at_once_without_retry(status):
    with Receiver(fail_first=99, fail_status=status) as server:
        delivery = pending_delivery(server.url)
        assert deliver(delivery.pk) is None
        assert len(server.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (Status.FAILED, 1, status)
    assert delivery.error.startswith(f"HTTP {status}")


@pytest.mark.django_db
def test_a_500_then_200_is_delivered_on_the_second_attempt(settings):
    settings.GOLDPATH_WEBHOOK_RETRY_BASE = 0.1
    with Receiver(fail_first=1, fail_status=500) as server:
        delivery = pending_delivery(server.url)
        assert deliver(delivery.pk) == pytest.approx(0.1)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.response_code) == (Status.PENDING, 1, 500)
        assert delivery.error == "HTTP 500 Internal Server Error"
        assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (Status.DELIVERED, 2, 200)
    assert delivery.error == ""


def overdue(delivery: WebhookDelivery, seconds: float = 0) -> None:
    """Move the delivery's next attempt into the past (what waiting for it would do)."""
    due = timezone.now() - timedelta(seconds=seconds)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=due)


@pytest.mark.django_db
def test_a_429_is_retried_after_the_time_the_receiver_asks_for_and_not_before(settings):
    settings.GOLDPATH_WEBHOOK_RETRY_BASE = 0.1
    with Receiver(fail_first=1, fail_status=429, headers={"Retry-After": "30"}) as server:
        delivery = pending_delivery(server.url)
        assert deliver(delivery.pk) == 30
        assert deliver(delivery.pk) is None  # a message that comes early sends nothing
        assert len(server.requests) == 1
        overdue(delivery)
        assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)


@pytest.mark.django_db
def test_a_duplicate_message_does_not_post_while_an_attempt_is_in_flight(receiver):
    delivery = pending_delivery(receiver.url)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1, next_attempt_at=timezone.now() + IN_FLIGHT)
    assert deliver(delivery.pk) is None
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)


@pytest.mark.django_db
def test_only_deliveries_overdue_by_the_redispatch_delay_are_queued_again(settings, monkeypatch):
    queued = []
    monkeypatch.setattr(alerts, "queue_delivery", lambda pk: queued.append(pk) or True)
    lost = pending_delivery("http://127.0.0.1:9/hook")
    overdue(lost, settings.GOLDPATH_REDISPATCH_AFTER + 1)
    waiting = WebhookDelivery.objects.create(webhook=lost.webhook, event=alerts.TEST)
    overdue(waiting, settings.GOLDPATH_REDISPATCH_AFTER - 60)
    done = WebhookDelivery.objects.create(webhook=lost.webhook, event=alerts.TEST, status=Status.DELIVERED)
    overdue(done, settings.GOLDPATH_REDISPATCH_AFTER + 1)
    assert alerts.resend_lost_deliveries() == [lost.pk] == queued
    assert alerts.resend_lost_deliveries() == []  # queued again once, not on every pass


RECEIVER_SECRET = "db_password=hunter2"


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "logged"), [(500, "HTTP 500 Internal Server Error"), (403, "HTTP 403 Forbidden")])
def test_the_log_keeps_the_status_and_its_standard_reason_never_the_receivers_answer(devops, status, logged):
    page = f"<h1>Traceback</h1><pre>connect(postgres://app:{RECEIVER_SECRET}@db)</pre>".encode()
    with Receiver(fail_first=99, fail_status=status, reason=f"Oops {RECEIVER_SECRET}", answer=page) as server:
        delivery = pending_delivery(server.url)
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.response_code, delivery.error) == (status, logged)
    assert RECEIVER_SECRET not in devops.get(f"/alerts/{delivery.webhook.pk}/").content.decode()


@pytest.mark.django_db
def test_a_receiver_that_answers_garbage_leaves_only_the_kind_of_error():
    """h11 quotes a malformed status line in its error: that line is the receiver's too."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(f"HTTP/1.1 {RECEIVER_SECRET}\r\n\r\n".encode())

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        delivery = pending_delivery(f"http://127.0.0.1:{listener.getsockname()[1]}{SECRET_PATH}")
        deliver(delivery.pk)
        thread.join(5)
    delivery.refresh_from_db()
    assert delivery.error == "RemoteProtocolError"


@pytest.mark.django_db
def test_an_unreachable_receiver_fails_after_every_attempt_with_the_error_kept(settings):
    settings.GOLDPATH_WEBHOOK_RETRY_BASE = 0.1
    delivery = pending_delivery(closed_port_url())
    delays = []
    while (delay := deliver(delivery.pk)) is not None:
        delays.append(delay)
    assert delays == pytest.approx([0.1, 0.3, 0.9, 2.7])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (Status.FAILED, alerts.MAX_ATTEMPTS, None)
    assert delivery.error == "ConnectError: Connection refused"
    assert SECRET_PATH not in delivery.error
    assert deliver(delivery.pk) is None  # final: nothing more is sent


@pytest.mark.django_db
def test_the_task_retries_through_celery_until_delivered(settings):
    settings.GOLDPATH_WEBHOOK_RETRY_BASE = 0.01
    with Receiver(fail_first=2, fail_status=503) as server:
        delivery = pending_delivery(server.url)
        deliver_webhook.apply(args=[delivery.pk])
        assert len(server.requests) == 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 3)


@pytest.mark.django_db
def test_it_refuses_a_host_that_resolves_to_a_metadata_address(monkeypatch, receiver):
    delivery = pending_delivery(f"http://hooks.example.com:{receiver.server.server_address[1]}{SECRET_PATH}")
    monkeypatch.setattr(
        "runs.tasks.socket.getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))],
    )
    assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and "169.254.169.254" in delivery.error
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_deleted_webhook_or_delivery_is_nothing_to_do(receiver):
    delivery = pending_delivery(receiver.url)
    delivery.webhook.delete()
    assert deliver(delivery.pk) is None
    assert receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_verdict_change_reaches_the_receiver_through_the_worker(celery_worker, receiver):
    suite = SuiteFactory(name="golden-path")
    category = CategoryFactory(suite=suite, critical=False)
    checks = [CheckFactory(category=category, suite=suite) for _ in range(2)]
    environment = EnvironmentFactory(name="staging")
    webhook = Webhook.objects.create(name="ops", url=receiver.url, on_mrr_rise=False)

    def finish(outcomes: list[str]) -> Run:
        run = RunFactory(suite=suite, environment=environment, status=RunStatus.RUNNING)
        for check, outcome in zip(checks, outcomes, strict=True):
            ResultFactory(run=run, test_case=check, outcome=outcome)
        finish_run(run)
        return run

    finish(["passed", "passed"])
    run = finish(["passed", "failed"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivery = webhook.deliveries.first()
        if delivery and delivery.status != Status.PENDING:
            break
        time.sleep(0.2)
    assert delivery is not None, "run_finished stored no delivery"
    assert (delivery.status, delivery.event, delivery.attempts) == (Status.DELIVERED, "verdict-changed", 1), (
        delivery.error
    )
    assert len(receiver.requests) == 1
    payload = receiver.json()
    assert payload["event"] == "verdict-changed"
    assert payload["run"]["id"] == run.pk
    assert (payload["run"]["previous_verdict"], payload["run"]["verdict"]) == ("PASS", "PARTIAL SUCCESS")
    assert (payload["run"]["passed"], payload["run"]["total"]) == (1, 2)
    # These results carry no network evidence: the pass reads "mocked?", as on every page.
    assert payload["summary"].startswith("golden-path on staging went from PASS · mocked? to PARTIAL SUCCESS")
    logged = f"delivery {delivery.pk} verdict-changed: delivered"
    while logged not in celery_worker.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = celery_worker.log_path.read_text()
    assert logged in log and mask_url(receiver.url) in log
    assert SECRET_PATH not in log


@pytest.mark.django_db(transaction=True)
def test_a_delivery_the_broker_lost_is_queued_again_and_delivered_by_the_worker(celery_worker, receiver, settings):
    delivery = pending_delivery(receiver.url, {"event": "test", "summary": "lost once"})  # never queued
    overdue(delivery, settings.GOLDPATH_REDISPATCH_AFTER + 1)
    assert alerts.resend_lost_deliveries() == [delivery.pk]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and delivery.status == Status.PENDING:
        time.sleep(0.2)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 1), delivery.error
    assert [r["path"] for r in receiver.requests] == [SECRET_PATH]


# Pages -------------------------------------------------------------------------------------


def signed_in(client, role: str):
    user = UserFactory(username=role.lower())
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return client


@pytest.fixture
def devops(client, db):
    return signed_in(client, "DevOps")


@pytest.fixture
def webhook(db):
    return Webhook.objects.create(name="ops", url=f"https://hooks.slack.com{SECRET_PATH}", kind=Webhook.Kind.SLACK)


def form_data(**overrides) -> dict:
    data = {"name": "ops", "url": "", "kind": "generic", "on_verdict_change": "on", "on_mrr_rise": "on"}
    data["enabled"] = "on"
    data.update(overrides)
    return data


def test_devops_adds_a_webhook_and_the_list_shows_it_masked(devops):
    url = f"https://hooks.slack.com{SECRET_PATH}"
    response = devops.post("/alerts/", form_data(url=url, kind="slack"))
    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert (webhook.url, webhook.kind, webhook.environment) == (url, "slack", None)
    page = devops.get("/alerts/").content.decode()
    assert "https://hooks.slack.com/…9876" in page
    assert SECRET_PATH not in page and "xoxbSECRET" not in page


def test_the_edit_form_never_shows_the_url_and_blank_keeps_it(devops, webhook):
    page = devops.get(f"/alerts/{webhook.pk}/").content.decode()
    assert "xoxbSECRET" not in page
    assert "https://hooks.slack.com/…9876" in page
    environment = EnvironmentFactory(name="production")
    response = devops.post(f"/alerts/{webhook.pk}/", form_data(name="prod", environment=environment.pk))
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert (webhook.name, webhook.environment, webhook.url) == (
        "prod",
        environment,
        f"https://hooks.slack.com{SECRET_PATH}",
    )


def test_devops_can_replace_the_url(devops, webhook):
    devops.post(f"/alerts/{webhook.pk}/", form_data(url="http://127.0.0.1:8080/new-hook"))
    webhook.refresh_from_db()
    assert webhook.url == "http://127.0.0.1:8080/new-hook"


def test_it_refuses_a_metadata_address_with_a_clear_form_error(devops):
    response = devops.post("/alerts/", form_data(url="http://169.254.169.254/latest/meta-data/iam"))
    assert response.status_code == 200
    assert "link-local or cloud-metadata" in response.content.decode()
    assert not Webhook.objects.exists()


def test_it_refuses_a_host_name_that_resolves_to_a_link_local_address(devops, monkeypatch):
    monkeypatch.setattr(
        "dashboard.webhooks.socket.getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1", 443, 0, 0))],
    )
    response = devops.post("/alerts/", form_data(url="https://sneaky.example.com/hook"))
    assert "resolves to fe80::1" in response.content.decode()
    assert not Webhook.objects.exists()


def test_it_refuses_a_url_that_is_not_http(devops):
    response = devops.post("/alerts/", form_data(url="gopher://example.com/hook"))
    assert "starts with http:// or https://" in response.content.decode()


def test_it_needs_at_least_one_event(devops):
    data = form_data(url="http://127.0.0.1:9/hook")
    del data["on_verdict_change"], data["on_mrr_rise"]
    assert "at least one event" in devops.post("/alerts/", data).content.decode()


def test_devops_deletes_a_webhook_with_its_log(devops, webhook):
    WebhookDelivery.objects.create(webhook=webhook, event="test")
    assert devops.post(f"/alerts/{webhook.pk}/delete/").status_code == 302
    assert Webhook.objects.exists()  # not without the confirmation box
    assert devops.post(f"/alerts/{webhook.pk}/delete/", {"confirm": "1"}).status_code == 302
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


def test_the_test_button_queues_a_test_delivery_about_the_latest_run(devops, webhook):
    run = RunFactory(status=RunStatus.FINISHED, verdict="PASS")
    assert devops.post(f"/alerts/{webhook.pk}/test/").status_code == 302
    delivery = webhook.deliveries.get()
    assert (delivery.event, delivery.status, delivery.run) == ("test", Status.PENDING, run)
    assert delivery.payload["text"].startswith("Test alert from Goldpath")


def test_the_delivery_log_shows_attempts_and_errors_but_never_the_url(devops, webhook):
    run = RunFactory(status=RunStatus.FINISHED)
    WebhookDelivery.objects.create(
        webhook=webhook,
        run=run,
        event="verdict-changed",
        status=Status.FAILED,
        attempts=5,
        error="HTTP 404: no_service",
    )
    page = devops.get(f"/alerts/{webhook.pk}/").content.decode()
    assert "HTTP 404: no_service" in page and f"#{run.pk}" in page
    assert "xoxbSECRET" not in page


def test_the_delivery_log_says_when_a_retry_is_due(devops, webhook):
    due = timezone.localtime(timezone.now() + timedelta(seconds=90))
    WebhookDelivery.objects.create(
        webhook=webhook, event=alerts.TEST, attempts=1, error="HTTP 503: busy", next_attempt_at=due
    )
    page = devops.get(f"/alerts/{webhook.pk}/").content.decode()
    assert f"pending · next attempt by {due:%H:%M:%S}" in page


def test_the_nav_shows_alerts_to_devops_only(client, devops):
    assert 'href="/alerts/"' in devops.get("/").content.decode()
    engineer = signed_in(client, "Engineer")
    assert 'href="/alerts/"' not in engineer.get("/").content.decode()


@pytest.mark.parametrize("role", ["Engineer", "Manager"])
def test_other_roles_get_403_everywhere(client, webhook, role):
    signed_in(client, role)
    assert client.get("/alerts/").status_code == 403
    assert client.post("/alerts/", form_data(url="http://127.0.0.1:9/x")).status_code == 403
    assert client.get(f"/alerts/{webhook.pk}/").status_code == 403
    assert client.post(f"/alerts/{webhook.pk}/", form_data(name="taken")).status_code == 403
    assert client.post(f"/alerts/{webhook.pk}/test/").status_code == 403
    assert client.post(f"/alerts/{webhook.pk}/delete/", {"confirm": "1"}).status_code == 403
    webhook.refresh_from_db()
    assert webhook.name == "ops" and not webhook.deliveries.exists()


def test_the_admin_lists_webhooks_masked(admin_client, webhook):
    page = admin_client.get("/admin/runs/webhook/").content.decode()
    assert "https://hooks.slack.com/…9876" in page and "xoxbSECRET" not in page
    change = admin_client.get(f"/admin/runs/webhook/{webhook.pk}/change/").content.decode()
    assert "xoxbSECRET" not in change
