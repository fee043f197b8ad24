"""Relay: DynamoDB stream records of the outbox in, confirmed RabbitMQ messages out.

At-least-once: an event is marked published only after the broker confirmed it, so a
crash in between publishes it again with the same id, and consumers de-duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.adapters.outbox import DynamoOutbox
from chalicelib.adapters.publisher import ConfirmedPublisher, Outgoing
from chalicelib.config import get_settings

log = logging.getLogger("titan.relay")


class RelayIncomplete(RuntimeError):
    """Some events were not confirmed; the batch must be retried."""


@dataclass(frozen=True)
class RelayReport:
    published: int
    skipped: int


@lru_cache(maxsize=1)
def _outbox() -> DynamoOutbox:
    return DynamoOutbox(get_settings())


@lru_cache(maxsize=1)
def _publisher() -> ConfirmedPublisher:
    return ConfirmedPublisher(get_settings().amqp_url)


def pending_events(records: Iterable[dict]) -> list[Outgoing]:
    """The unpublished events among stream records (INSERT or MODIFY with a NewImage)."""
    found: dict[str, Outgoing] = {}
    for record in records:
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        if record.get("eventName") not in ("INSERT", "MODIFY") or "unpublished" not in image:
            continue
        event_id = image["event_id"]["S"]
        found[event_id] = Outgoing(event_id=event_id, body=image["body"]["S"].encode())
    return list(found.values())


def relay(
    records: Iterable[dict], outbox: DynamoOutbox | None = None, publisher: ConfirmedPublisher | None = None
) -> RelayReport:
    outbox = outbox or _outbox()
    publisher = publisher or _publisher()
    candidates = pending_events(records)
    if not candidates:
        return RelayReport(published=0, skipped=0)
    still = outbox.still_unpublished([c.event_id for c in candidates])
    todo = [c for c in candidates if c.event_id in still]
    confirmed = publisher.publish(todo)
    outbox.mark_published(confirmed)
    if len(confirmed) < len(todo):
        raise RelayIncomplete(f"{len(todo) - len(confirmed)} of {len(todo)} events not confirmed")
    return RelayReport(published=len(confirmed), skipped=len(candidates) - len(todo))


def on_stream(event: Iterable) -> RelayReport:
    """Entry point for Chalice's DynamoDB stream event (records as Lambda delivers them)."""
    return relay(record.to_dict() if hasattr(record, "to_dict") else record for record in event)
