"""Notification subscriptions: hash `subscriptions:{student}`, field class id, JSON value;
`class:{class}:subscribers` indexes them by class so a removed class can be cleaned."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import redis_keys as keys
from chalicelib.domain import events
from chalicelib.domain.events import Contact


class RedisSubscriptions:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def get(self, student_id: int, class_id: int) -> dict | None:
        raw = self.redis.hget(keys.subscriptions(student_id), class_id)
        return json.loads(raw) if raw else None

    def contact(self, student_id: int, class_id: int, event_type: str) -> Contact | None:
        record = self.get(student_id, class_id)
        if not record or event_type not in record.get("events", [events.PROMOTED]):
            return None
        return Contact(email=record.get("email"), webhook_url=record.get("webhook_url"))

    def delete_class(self, class_id: int) -> None:
        subscribers = self.redis.smembers(keys.class_subscribers(class_id))
        pipe = self.redis.pipeline(transaction=True)
        for student_id in subscribers:
            pipe.hdel(keys.subscriptions(int(student_id)), class_id)
        pipe.delete(keys.class_subscribers(class_id))
        pipe.execute()
