"""The lazily created Redis connection pool."""

from __future__ import annotations

from functools import cache

from chalicelib.config import get_settings


@cache
def connect(url: str | None = None):
    import redis

    return redis.Redis.from_url(
        url or get_settings().redis_url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
