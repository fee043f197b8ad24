"""Sending a message back through the broker: to a delay queue for another attempt,
or to the channel's dead-letter queue. Confirmed before the handler returns, so the
original may be acknowledged safely."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import topology

MAX_ERROR_LENGTH = 500


class BrokerRequeue:
    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self._connection: Any = None
        self._channel: Any = None

    def _open(self) -> Any:
        import pika

        if self._connection is None or self._connection.is_closed or self._channel is None or self._channel.is_closed:
            params = pika.URLParameters(self.amqp_url)
            params.socket_timeout = 5
            params.blocked_connection_timeout = 10
            self._connection = pika.BlockingConnection(params)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def _publish(
        self, queue: str, body: bytes, message_id: str, headers: dict, expiration_ms: int | None = None
    ) -> None:
        import pika

        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id,
            headers=headers,
            expiration=str(expiration_ms) if expiration_ms is not None else None,
        )
        try:
            self._open().basic_publish("", queue, body, properties, mandatory=True)
        except Exception:
            self.close()
            raise

    def retry(
        self, channel: str, delay: float, expiration_ms: int, body: bytes, message_id: str, attempt: int, error: str
    ) -> None:
        """Publish attempt number `attempt` to the delay queue of `delay` seconds."""
        headers = {"x-message-id": message_id, "x-attempt": attempt, "x-last-error": error[:MAX_ERROR_LENGTH]}
        self._publish(topology.retry_queue(channel, delay), body, message_id, headers, expiration_ms)

    def dead_letter(self, channel: str, body: bytes, message_id: str, attempts: int, error: str) -> None:
        headers = {"x-message-id": message_id, "x-attempts": attempts, "x-last-error": error[:MAX_ERROR_LENGTH]}
        self._publish(topology.dead_letter_queue(channel), body, message_id, headers)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # a broken connection is gone either way
                return
