"""Amazon MQ for RabbitMQ events, exactly as Lambda passes them, both ways.

    {"eventSource": "aws:rmq", "eventSourceArn": "...",
     "rmqMessagesByQueue": {"notifications.email::/": [
        {"basicProperties": {..., "headers": {"x-attempt": 2, "x-message-id": {"bytes": [...]}}},
         "redelivered": false, "data": "<base64 body>"}]}}

String header values arrive as byte arrays; numbers arrive as numbers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

EVENT_SOURCE = "aws:rmq"


@dataclass(frozen=True)
class InboundMessage:
    queue: str
    body: bytes
    message_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def attempt(self) -> int:
        """Which delivery attempt this is (1 for the first)."""
        try:
            return max(int(self.headers.get("x-attempt", 1)), 1)
        except (TypeError, ValueError):
            return 1


def _header_value(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("bytes"), list):
        return bytes(value["bytes"]).decode("utf-8", errors="replace")
    return value


def parse(event: dict) -> list[InboundMessage]:
    if event.get("eventSource") != EVENT_SOURCE:
        raise ValueError(f"not an {EVENT_SOURCE} event")
    messages = []
    for queue_key, entries in (event.get("rmqMessagesByQueue") or {}).items():
        queue = queue_key.rsplit("::", 1)[0]
        for entry in entries:
            properties = entry.get("basicProperties") or {}
            headers = {k: _header_value(v) for k, v in (properties.get("headers") or {}).items()}
            messages.append(
                InboundMessage(
                    queue=queue,
                    body=base64.b64decode(entry.get("data") or ""),
                    message_id=properties.get("messageId") or headers.get("x-message-id"),
                    headers=headers,
                    redelivered=bool(entry.get("redelivered")),
                )
            )
    return messages


def _encoded_header(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": list(value)}
    if isinstance(value, str):
        return {"bytes": list(value.encode())}
    return value


def build(
    queue: str,
    vhost: str,
    deliveries: list[tuple[Any, bytes, bool]],
    source_arn: str = "arn:aws:mq:us-east-1:000000000000:broker:local:b-local",
) -> dict:
    """An aws:rmq event from (pika BasicProperties, body, redelivered) triples."""
    entries = []
    for properties, body, redelivered in deliveries:
        entries.append(
            {
                "basicProperties": {
                    "contentType": properties.content_type,
                    "contentEncoding": properties.content_encoding,
                    "headers": {k: _encoded_header(v) for k, v in (properties.headers or {}).items()},
                    "deliveryMode": properties.delivery_mode,
                    "priority": properties.priority,
                    "correlationId": properties.correlation_id,
                    "replyTo": properties.reply_to,
                    "expiration": properties.expiration,
                    "messageId": properties.message_id,
                    "timestamp": properties.timestamp,
                    "type": properties.type,
                    "userId": properties.user_id,
                    "appId": properties.app_id,
                    "clusterId": properties.cluster_id,
                    "bodySize": len(body),
                },
                "redelivered": redelivered,
                "data": base64.b64encode(body).decode(),
            }
        )
    return {
        "eventSource": EVENT_SOURCE,
        "eventSourceArn": source_arn,
        "rmqMessagesByQueue": {f"{queue}::{vhost}": entries},
    }
