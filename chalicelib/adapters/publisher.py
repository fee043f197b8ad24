"""Publishing outbox events to RabbitMQ with publisher confirms.

Confirms are pipelined (aio-pika): a batch is sent at once and each message is
counted published only when the broker has confirmed it and routed it (mandatory).
The connection lives across Lambda invocations on a private event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters import topology

CONFIRM_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Outgoing:
    event_id: str
    body: bytes


class ConfirmedPublisher:
    def __init__(self, amqp_url: str, exchange: str = topology.EXCHANGE) -> None:
        self.amqp_url = amqp_url
        self.exchange_name = exchange
        self._loop = asyncio.new_event_loop()
        self._connection: Any = None
        self._exchange: Any = None

    def publish(self, messages: list[Outgoing]) -> list[str]:
        """Ids of the messages confirmed; raises when the broker cannot be reached."""
        if not messages:
            return []
        try:
            confirmed = self._loop.run_until_complete(self._publish(messages))
        except Exception:
            self._loop.run_until_complete(self._forget())
            raise
        if len(confirmed) < len(messages):
            # A connection whose peer vanished still reports itself open and fails every
            # publish: start afresh on the next batch rather than reuse it forever.
            self._loop.run_until_complete(self._forget())
        return confirmed

    def close(self) -> None:
        self._loop.run_until_complete(self._forget())

    async def _connect(self) -> Any:
        import aio_pika

        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(self.amqp_url, timeout=5)
            # on_return_raises: an unroutable message (mandatory) fails instead of counting as sent.
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            # Passive: the bootstrap owns the topology; publishing before it exists fails.
            self._exchange = await channel.get_exchange(self.exchange_name, ensure=True)
        return self._exchange

    async def _publish(self, messages: list[Outgoing]) -> list[str]:
        import aio_pika

        exchange = await self._connect()
        results = await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        m.body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=m.event_id,
                        headers={"x-message-id": m.event_id},
                    ),
                    routing_key="",
                    mandatory=True,
                    timeout=CONFIRM_TIMEOUT_SECONDS,
                )
                for m in messages
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and self._connection is not None and self._connection.is_closed:
            raise ConnectionError("broker connection lost while publishing") from failures[0]
        return [m.event_id for m, r in zip(messages, results, strict=True) if not isinstance(r, BaseException)]

    async def _forget(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            # Closing a broken connection may fail in many ways; it is gone either way.
            with contextlib.suppress(Exception):
                await connection.close()
