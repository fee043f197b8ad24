"""The RabbitMQ topology, in one place, declared idempotently by the bootstrap.

enrollment_notifications (fanout, durable)
  -> notifications.email     -> email handler
  -> notifications.webhook   -> webhook handler
per channel:
  notifications.{channel}.retry.{ms}  delay queues: a failed message waits there
                                      (per-message TTL) and dead-letters back to
                                      notifications.{channel} only
  notifications.{channel}.dead        messages that used up their attempts
"""

from __future__ import annotations

from typing import Any

EXCHANGE = "enrollment_notifications"
CHANNELS = ("email", "webhook")


def queue(channel: str) -> str:
    return f"notifications.{channel}"


def dead_letter_queue(channel: str) -> str:
    return f"notifications.{channel}.dead"


def retry_queue(channel: str, delay_seconds: float) -> str:
    return f"notifications.{channel}.retry.{round(delay_seconds * 1000)}"


def queues(delays: tuple[float, ...]) -> list[str]:
    return [
        name
        for channel in CHANNELS
        for name in (queue(channel), dead_letter_queue(channel), *(retry_queue(channel, d) for d in delays))
    ]


def declare(channel: Any, delays: tuple[float, ...]) -> None:
    """Declare everything on a pika channel; re-declaring is harmless."""
    channel.exchange_declare(EXCHANGE, exchange_type="fanout", durable=True)
    for name in CHANNELS:
        channel.queue_declare(dead_letter_queue(name), durable=True)
        # A message the handler cannot even read is rejected straight to the dead letters.
        channel.queue_declare(
            queue(name),
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_letter_queue(name)},
        )
        channel.queue_bind(queue(name), EXCHANGE)
        for delay in delays:
            channel.queue_declare(
                retry_queue(name, delay),
                durable=True,
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue(name)},
            )


def purge(channel: Any, delays: tuple[float, ...]) -> None:
    for name in queues(delays):
        channel.queue_purge(name)
