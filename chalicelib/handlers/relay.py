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

    def summary(self) -> dict[str, int]:
        """What the Lambda returns (a stream invocation's result is only logged)."""
        return {"published": self.published, "skipped": self.skipped}


@lru_cache(maxsize=1)
def _outbox() -> DynamoOutbox:
    return DynamoOutbox(get_settings())


@lru_cache(maxsize=1)
def _publisher() -> ConfirmedPublisher:
    return ConfirmedPublisher(get_settings().amqp_url)


def pending_images(records: Iterable[dict]) -> dict[str, dict]:
    """The NewImage of each unpublished event among stream records (INSERT or MODIFY), by id."""
    found: dict[str, dict] = {}
    for record in records:
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        if record.get("eventName") not in ("INSERT", "MODIFY") or "unpublished" not in image:
            continue
        found[image["event_id"]["S"]] = image
    return found


def relay(
    records: Iterable[dict], outbox: DynamoOutbox | None = None, publisher: ConfirmedPublisher | None = None
) -> RelayReport:
    outbox = outbox or _outbox()
    publisher = publisher or _publisher()
    images = pending_images(records)
    if not images:
        return RelayReport(published=0, skipped=0)
    still = outbox.still_unpublished(list(images))
    todo = [Outgoing(event_id=e, body=images[e]["body"]["S"].encode()) for e in images if e in still]
    confirmed = publisher.publish(todo)
    outbox.mark_published([images[e] for e in confirmed])
    if len(confirmed) < len(todo):
        raise RelayIncomplete(f"{len(todo) - len(confirmed)} of {len(todo)} events not confirmed")
    return RelayReport(published=len(confirmed), skipped=len(images) - len(todo))


def on_stream(event: Iterable) -> RelayReport:
    """Entry point for Chalice's DynamoDB stream event (records as Lambda delivers them)."""
    return relay(record.to_dict() if hasattr(record, "to_dict") else record for record in event)


def close() -> None:
    """Close the broker connection, if one was opened (a local driver shutting down)."""
    if _publisher.cache_info().currsize:
        _publisher().close()
