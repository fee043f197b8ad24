"""Builds what the delivery handlers share, on first use."""

from __future__ import annotations

import math
from functools import lru_cache

from chalicelib.config import get_settings
from chalicelib.domain.delivery import RetryPolicy
from chalicelib.handlers.delivery import Channel, Deliverer

# How long an attempt may hold a message before another copy may try: longer than
# the slowest send (10 s timeout) with room to spare.
CLAIM_LEASE_SECONDS = 60


def policy() -> RetryPolicy:
    settings = get_settings()
    return RetryPolicy(settings.retry_delays, settings.max_attempts)


@lru_cache(maxsize=1)
def subscriptions():
    from chalicelib.adapters.redis_client import connect
    from chalicelib.adapters.redis_subscriptions import RedisSubscriptions

    return RedisSubscriptions(connect())


def deliverer(channel: Channel) -> Deliverer:
    from chalicelib.adapters.outbox import DeliveryHistory
    from chalicelib.adapters.redis_client import connect
    from chalicelib.adapters.redis_delivery import DeliveryClaims
    from chalicelib.adapters.requeue import BrokerRequeue

    settings = get_settings()
    retry = policy()
    done_ttl = math.ceil(retry.retry_window_seconds()) + 86_400
    return Deliverer(
        channel=channel,
        claims=DeliveryClaims(connect(), CLAIM_LEASE_SECONDS, done_ttl),
        requeue=BrokerRequeue(settings.amqp_url),
        history=DeliveryHistory(settings),
        policy=retry,
    )
