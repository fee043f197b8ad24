"""Webhook handler: Amazon MQ (aws:rmq) batches from notifications.webhook, POSTed with
Standard Webhooks signatures, concurrently."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

from chalicelib.adapters.webhook_client import WebhookClient, WebhookRequest
from chalicelib.config import get_settings
from chalicelib.domain.delivery import Outcome, Result
from chalicelib.domain.ports import Subscriptions
from chalicelib.handlers import wiring
from chalicelib.handlers.delivery import BatchReport, Deliverer, Job

CHANNEL = "webhook"
# What a receiver gets: the event without the student's contact details.
PAYLOAD_FIELDS = (
    "type",
    "event_id",
    "occurred_at",
    "student_id",
    "class_id",
    "class_name",
    "section",
    "message",
    "waitlist_position",
)


def payload(event: dict) -> bytes:
    return json.dumps({k: event[k] for k in PAYLOAD_FIELDS if k in event}, separators=(",", ":")).encode()


def signed_headers(secret: str, event_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    timestamp = now or datetime.now(UTC)
    signature = Webhook(secret).sign(event_id, timestamp, body.decode())
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


class WebhookChannel:
    name = CHANNEL

    def __init__(self, client: WebhookClient, subscriptions: Subscriptions) -> None:
        self.client = client
        self.subscriptions = subscriptions

    def wants(self, event: dict) -> bool:
        return bool(event.get("webhook_url"))

    def send(self, jobs: list[Job], delivered: Callable[[list[Job]], None]) -> list[Result]:
        results: list[Result | None] = []
        requests: list[WebhookRequest] = []
        requested: list[Job] = []
        keys: dict[int, tuple[int, int]] = {}
        for index, job in enumerate(jobs):
            with contextlib.suppress(KeyError, TypeError, ValueError):  # a malformed one is answered below
                keys[index] = (int(job.event["student_id"]), int(job.event["class_id"]))
        found = dict(zip(keys, self.subscriptions.get_many(list(keys.values())), strict=True))
        for index, job in enumerate(jobs):
            if index not in keys:
                # A malformed event fails alone instead of failing (and re-sending) its batch.
                results.append(Result(Outcome.FAILED, "invalid event: no student or class id"))
                continue
            subscription = found[index]
            if subscription is None or subscription.webhook_url != job.event["webhook_url"] or not subscription.secret:
                # Unsubscribed, or the webhook was removed (410) since the event was written.
                results.append(Result(Outcome.SKIPPED))
                continue
            body = payload(job.event)
            requests.append(
                WebhookRequest(job.event["webhook_url"], body, signed_headers(subscription.secret, job.event_id, body))
            )
            requested.append(job)
            results.append(None)
        sent = iter(self.client.send_batch(requests, lambda done: delivered([requested[i] for i in done])))
        return [r if r is not None else next(sent) for r in results]

    def on_gone(self, job: Job) -> None:
        self.subscriptions.drop_webhook(int(job.event["student_id"]), int(job.event["class_id"]))

    def close(self) -> None:
        self.client.close()


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    settings = get_settings()
    client = WebhookClient(settings.allow_private_webhook_targets)
    return wiring.deliverer(WebhookChannel(client, wiring.subscriptions()))


def handle(event: dict) -> BatchReport:
    return deliverer().handle(event)


def close() -> None:
    if deliverer.cache_info().currsize:
        deliverer().close()
