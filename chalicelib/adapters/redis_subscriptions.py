"""Notification subscriptions: hash `subscriptions:{student}`, field class id, JSON value;
`class:{class}:subscribers` indexes them by class so a removed class can be cleaned."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import redis_keys as keys
from chalicelib.domain import events
from chalicelib.domain.events import Contact
from chalicelib.domain.subscriptions import Subscription

# KEYS: student's subscriptions, class subscribers. ARGV: class id, student id, JSON.
_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
return 1
"""

# KEYS: student's subscriptions, class subscribers. ARGV: class id, student id.
_REMOVE = """
redis.call('SREM', KEYS[2], ARGV[2])
return redis.call('HDEL', KEYS[1], ARGV[1])
"""


def _stored(subscription: Subscription) -> str:
    return json.dumps(
        {
            "email": subscription.email,
            "webhook_url": subscription.webhook_url,
            "events": list(subscription.events),
            "secret": subscription.secret,
            "created_at": subscription.created_at,
        },
        separators=(",", ":"),
    )


def _loaded(student_id: int, class_id: int, raw: str) -> Subscription:
    data = json.loads(raw)
    return Subscription(
        student_id=student_id,
        class_id=class_id,
        email=data.get("email"),
        webhook_url=data.get("webhook_url"),
        events=tuple(data.get("events") or (events.PROMOTED,)),
        created_at=data.get("created_at", ""),
        secret=data.get("secret"),
    )


class RedisSubscriptions:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._add = redis.register_script(_ADD)
        self._remove = redis.register_script(_REMOVE)

    def add(self, subscription: Subscription) -> bool:
        added = self._add(
            keys=[keys.subscriptions(subscription.student_id), keys.class_subscribers(subscription.class_id)],
            args=[subscription.class_id, subscription.student_id, _stored(subscription)],
        )
        return bool(added)

    def remove(self, student_id: int, class_id: int) -> bool:
        removed = self._remove(
            keys=[keys.subscriptions(student_id), keys.class_subscribers(class_id)], args=[class_id, student_id]
        )
        return bool(removed)

    def of_student(self, student_id: int) -> list[Subscription]:
        stored = self.redis.hgetall(keys.subscriptions(student_id))
        return sorted(
            (_loaded(student_id, int(class_id), raw) for class_id, raw in stored.items()),
            key=lambda s: s.class_id,
        )

    def get(self, student_id: int, class_id: int) -> Subscription | None:
        raw = self.redis.hget(keys.subscriptions(student_id), class_id)
        return _loaded(student_id, class_id, raw) if raw else None

    def get_many(self, pairs: list[tuple[int, int]]) -> list[Subscription | None]:
        """`get` for each (student id, class id), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for student_id, class_id in pairs:
            pipe.hget(keys.subscriptions(student_id), class_id)
        raws = pipe.execute() if pairs else []
        return [
            _loaded(student_id, class_id, raw) if raw else None
            for (student_id, class_id), raw in zip(pairs, raws, strict=True)
        ]

    def contact(self, student_id: int, class_id: int, event_type: str) -> Contact | None:
        subscription = self.get(student_id, class_id)
        if subscription is None or event_type not in subscription.events:
            return None
        return Contact(email=subscription.email, webhook_url=subscription.webhook_url)

    def drop_webhook(self, student_id: int, class_id: int) -> None:
        """Forget a subscription's webhook (the receiver answered 410 Gone)."""
        subscription = self.get(student_id, class_id)
        if subscription is None or subscription.webhook_url is None:
            return
        if subscription.email is None:
            self.remove(student_id, class_id)
            return
        kept = Subscription(
            student_id, class_id, subscription.email, None, subscription.events, subscription.created_at
        )
        self.redis.hset(keys.subscriptions(student_id), class_id, _stored(kept))

    def delete_class(self, class_id: int) -> None:
        subscribers = self.redis.smembers(keys.class_subscribers(class_id))
        pipe = self.redis.pipeline(transaction=True)
        for student_id in subscribers:
            pipe.hdel(keys.subscriptions(int(student_id)), class_id)
        pipe.delete(keys.class_subscribers(class_id))
        pipe.execute()
