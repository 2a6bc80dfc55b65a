"""Webhook alerts: which finished run is news, who hears of it, and what they are sent.

The decision and the payloads are plain functions on plain data. ``run_finished`` (called
by ``runs.services`` once a run's finish is committed) stores one WebhookDelivery per
webhook and event in one transaction and queues each for ``runs.tasks.deliver_webhook``,
which POSTs it and retries with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from runs.models import Run, RunStatus, Webhook, WebhookDelivery
from runs.reporting import standing_json
from runs.state import SuiteState, standings

logger = logging.getLogger(__name__)

VERDICT_CHANGED, MRR_ROSE, UNREACHABLE, TEST = "verdict-changed", "mrr-rose", "unreachable", "test"
# A run that could not reach its service changes how the suite stands there: the webhooks
# that hear of verdict changes hear of it.
EVENT_FLAGS = {VERDICT_CHANGED: "on_verdict_change", MRR_ROSE: "on_mrr_rise", UNREACHABLE: "on_verdict_change"}
MAX_ATTEMPTS = 5
BACKOFF_FACTOR = 3  # 10 s, 30 s, 90 s, 270 s with the default base
MAX_RETRY_DELAY_S = 3600.0


def decide(state: SuiteState, previous: SuiteState | None) -> list[str]:
    """The events a finished run raises against the previous finished full-suite run of the
    same environment and suite, each read as it stands (runs.analysis.standing). A scoped
    rerun says little about the environment, and the first run ever has nothing to change
    from: neither alerts.

    A run whose probes reached nothing raises ``unreachable`` when the one before reached the
    service (once per outage), and never an MRR rise: its revenue was not assessed. The
    first run that reaches the service again changed from COULD NOT REACH; its MRR at risk
    has no assessed figure to rise from."""
    if state.run.scope != Run.Scope.ALL or previous is None:
        return []
    if not state.standing.reached:
        return [UNREACHABLE] if previous.standing.reached else []
    events = []
    before = previous.run.verdict if previous.standing.reached else previous.standing.label
    if state.run.verdict and before and state.run.verdict != before:
        events.append(VERDICT_CHANGED)
    if previous.mrr_at_risk is not None and state.run.mrr_at_risk > previous.mrr_at_risk:
        events.append(MRR_ROSE)
    return events


def with_standings(run: Run, previous: Run | None) -> tuple[SuiteState, SuiteState | None]:
    """The run and the one before it with their standings (one query at most)."""
    by_run = standings([r for r in (run, previous) if r is not None])
    return SuiteState(run, by_run[run.pk]), SuiteState(previous, by_run[previous.pk]) if previous else None


def wants(webhook: Webhook, run: Run | None, event: str) -> bool:
    """Whether ``webhook`` hears of ``event`` on ``run``: enabled, filters, event flags."""
    if not webhook.enabled:
        return False
    if run is not None:
        if webhook.environment_id not in (None, run.environment_id):
            return False
        if webhook.suite_id not in (None, run.suite_id):
            return False
    return event == TEST or bool(getattr(webhook, EVENT_FLAGS[event]))


def matching_webhooks(webhooks: Iterable[Webhook], run: Run, event: str) -> list[Webhook]:
    return [webhook for webhook in webhooks if wants(webhook, run, event)]


def _money(dollars: int | None) -> str:
    return f"${dollars or 0:,}"


def _at_risk(dollars: int | None) -> str:
    """ "$550,000 MRR at risk", or "revenue not assessed" for a run that reached nothing."""
    return "revenue not assessed" if dollars is None else f"{_money(dollars)} MRR at risk"


def run_facts(state: SuiteState | None, previous: SuiteState | None) -> dict[str, Any] | None:
    """What an alert says of a run: its verdict and standing, and the previous run's; MRR at
    risk is null where it was not assessed (the probes never reached the service)."""
    if state is None:
        return None
    run = state.run
    return {
        "id": run.pk,
        "url": settings.SITE_URL + run.get_absolute_url(),
        "suite": run.suite.name,
        "environment": run.environment.name,
        "verdict": run.verdict,
        "previous_verdict": previous.run.verdict if previous else None,
        "standing": standing_json(state.standing),
        "previous_standing": standing_json(previous.standing) if previous else None,
        "passed": run.passed,
        "total": run.total,
        "mrr_at_risk": state.mrr_at_risk,
        "previous_mrr_at_risk": previous.mrr_at_risk if previous else None,
    }


def summary(event: str, facts: dict[str, Any] | None, webhook_name: str = "") -> str:
    """One plain sentence a manager can read."""
    if event == TEST:
        about = (
            f" The latest run of {facts['suite']} on {facts['environment']} was {facts['standing']['label']}."
            if facts
            else ""
        )
        return f"Test alert from Goldpath for the webhook “{webhook_name}”: this is what alerts look like.{about}"
    assert facts is not None
    where = f"{facts['suite']} on {facts['environment']}"
    tally = f"{facts['passed']} of {facts['total']} checks passed"
    standing, previous = facts["standing"], facts["previous_standing"] or {}
    if event == UNREACHABLE:
        return (
            f"The probes of {where} {standing['notes'][0]} (run #{facts['id']}; the run before was "
            f"{previous.get('label')})."
        )
    if event == VERDICT_CHANGED:
        return (
            f"{where} went from {previous.get('label')} to {standing['label']} in run #{facts['id']}: "
            f"{tally}, {_at_risk(facts['mrr_at_risk'])}."
        )
    return (
        f"MRR at risk for {where} rose from {_money(facts['previous_mrr_at_risk'])} "
        f"to {_money(facts['mrr_at_risk'])} in run #{facts['id']} ({standing['label']}, {tally})."
    )


def generic_payload(event: str, facts: dict[str, Any] | None, text: str) -> dict[str, Any]:
    return {"event": event, "run": facts, "summary": text}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


TITLES = {
    VERDICT_CHANGED: "Verdict changed",
    MRR_ROSE: "MRR at risk rose",
    UNREACHABLE: "Could not reach the service",
    TEST: "Test alert",
}


def slack_payload(event: str, facts: dict[str, Any] | None, text: str) -> dict[str, Any]:
    """Slack's incoming-webhook shape; Mattermost, Rocket.Chat and Discord's /slack accept it."""
    body = f"*{TITLES.get(event, event)}*\n{_slack_escape(text)}"
    if facts:
        body += f"\n<{facts['url']}|Open run #{facts['id']}>"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]
    if facts:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _slack_escape(
                            f"{facts['environment']} · {facts['suite']} · {facts['standing']['label']} · "
                            f"{facts['passed']}/{facts['total']} passed · {_at_risk(facts['mrr_at_risk'])}"
                        ),
                    }
                ],
            }
        )
    return {"text": text, "blocks": blocks}


def build_payload(
    kind: str, event: str, state: SuiteState | None, previous: SuiteState | None, webhook_name: str = ""
) -> dict[str, Any]:
    facts = run_facts(state, previous)
    text = summary(event, facts, webhook_name)
    build = slack_payload if kind == Webhook.Kind.SLACK else generic_payload
    return build(event, facts, text)


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: base × 3^(attempt-1), or the receiver's
    Retry-After when it asks for longer (capped at an hour)."""
    base = float(settings.GOLDPATH_WEBHOOK_RETRY_BASE)
    delay = base * BACKOFF_FACTOR ** (attempt - 1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_RETRY_DELAY_S)


def previous_run(run: Run) -> Run | None:
    """The full-suite run of the same environment and suite that finished just before."""
    if run.finished_at is None:
        return None
    return (
        Run.objects.state_of_environment()
        .filter(environment_id=run.environment_id, suite_id=run.suite_id)
        .filter(Q(finished_at__lt=run.finished_at) | Q(finished_at=run.finished_at, pk__lt=run.pk))
        .order_by("-finished_at", "-pk")
        .first()
    )


def run_finished(run_id: int) -> list[int]:
    """Decide the alerts of a run that has just finished and queue their deliveries.

    The rows are stored in one transaction with the decision (so a crash loses nothing
    half-decided) and queued only once committed. Calling it twice for a run stores and
    sends nothing more. Returns the ids of the deliveries created.
    """
    created: list[int] = []
    with transaction.atomic():
        run = Run.objects.select_related("environment", "suite").filter(pk=run_id, status=RunStatus.FINISHED).first()
        if run is None:
            return created
        state, previous = with_standings(run, previous_run(run))
        events = decide(state, previous)
        if not events:
            return created
        webhooks = list(Webhook.objects.filter(enabled=True))
        for event in events:
            for webhook in matching_webhooks(webhooks, run, event):
                try:
                    with transaction.atomic():
                        delivery = WebhookDelivery.objects.create(
                            webhook=webhook,
                            run=run,
                            event=event,
                            payload=build_payload(webhook.kind, event, state, previous),
                        )
                except IntegrityError:
                    continue  # already decided for this run
                created.append(delivery.pk)
        logger.info("run %s: %s -> %d webhook deliveries", run_id, ", ".join(events), len(created))
        if created:
            transaction.on_commit(lambda: [queue_delivery(pk) for pk in created])
    return created


def latest_run_for(webhook: Webhook) -> Run | None:
    runs = Run.objects.state_of_environment().select_related("environment", "suite")
    if webhook.environment_id:
        runs = runs.filter(environment_id=webhook.environment_id)
    if webhook.suite_id:
        runs = runs.filter(suite_id=webhook.suite_id)
    return runs.order_by(F("finished_at").desc(nulls_last=True), "-pk").first()


def send_test(webhook: Webhook) -> WebhookDelivery:
    """Queue a test alert about the latest run the webhook would hear of (if any)."""
    run = latest_run_for(webhook)
    state, previous = with_standings(run, previous_run(run)) if run else (None, None)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            run=run,
            event=TEST,
            payload=build_payload(webhook.kind, TEST, state, previous, webhook.name),
        )
        transaction.on_commit(lambda: queue_delivery(delivery.pk))
    return delivery


def queue_delivery(delivery_id: int) -> bool:
    """Hand a delivery to the broker. If the broker is down the row stays pending and
    says so in its log; nothing raises into the caller (a finished run stays finished)."""
    from runs.tasks import deliver_webhook  # here: runs.tasks imports this module

    try:
        deliver_webhook.apply_async(
            args=(delivery_id,),
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        )
    except Exception as exc:  # kombu raises OperationalError, OSError and more for a dead broker
        logger.warning("webhook delivery %s not queued: %s", delivery_id, exc)
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(
            error=f"Not queued: the Celery broker could not be reached ({type(exc).__name__})."[:500]
        )
        return False
    return True


def resend_lost_deliveries(limit: int = 100) -> list[int]:
    """Queue again the pending deliveries overdue by GOLDPATH_REDISPATCH_AFTER seconds: the
    broker lost their message, or was down when they were decided. Safe from every worker at
    once: a conditional UPDATE lets one of them re-queue each. Returns the ids queued."""
    now = timezone.now()
    overdue = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lt=now - timedelta(seconds=settings.GOLDPATH_REDISPATCH_AFTER),
    )
    resent = []
    for pk, due in overdue.order_by("next_attempt_at").values_list("pk", "next_attempt_at")[:limit]:
        mine = WebhookDelivery.objects.filter(pk=pk, status=WebhookDelivery.Status.PENDING, next_attempt_at=due)
        if mine.update(next_attempt_at=now) and queue_delivery(pk):  # a dead broker: next pass
            resent.append(pk)
    return resent
