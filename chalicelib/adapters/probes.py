"""Reachability checks of the backing services, for /health."""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib.adapters import aws
from chalicelib.config import Settings


def _timed(check: Callable[[], None]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # any failure means "unreachable"; the type is reported
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def dynamodb(settings: Settings) -> dict:
    return _timed(lambda: aws.client("dynamodb").describe_table(TableName=settings.classes_table))


def redis(settings: Settings) -> dict:
    from chalicelib.adapters.redis_client import connect

    return _timed(lambda: connect().ping())


def rabbitmq(settings: Settings) -> dict:
    def check() -> None:
        import pika

        params = pika.URLParameters(settings.amqp_url)
        params.socket_timeout = 2
        params.blocked_connection_timeout = 2
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()

    return _timed(check)
