"""Everything a request could change, to compare before and after: every item of every
table and every key of the test's Redis database, with its value."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.redis_client import connect
from chalicelib.config import get_settings


def snapshot() -> dict:
    settings = get_settings()
    client = aws.client("dynamodb")
    tables = {}
    for table in (
        settings.classes_table,
        settings.enrollments_table,
        settings.users_table,
        settings.settings_table,
        settings.outbox_table,
        settings.deliveries_table,
    ):
        items = [
            json.dumps(item, sort_keys=True)
            for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            for item in page["Items"]
        ]
        tables[table] = sorted(items)
    redis = connect()
    readers: dict[str, Callable[[str], Any]] = {
        "string": redis.get,
        "hash": redis.hgetall,
        "zset": lambda key: redis.zrange(key, 0, -1, withscores=True),
        "set": lambda key: sorted(redis.smembers(key)),
        "list": lambda key: redis.lrange(key, 0, -1),
    }
    keys = {key: readers[redis.type(key)](key) for key in redis.scan_iter(count=1000)}
    return {"dynamodb": tables, "redis": keys}


def changes(before: dict, after: dict) -> list[str]:
    found = []
    for name in before["dynamodb"]:
        added = set(after["dynamodb"][name]) - set(before["dynamodb"][name])
        removed = set(before["dynamodb"][name]) - set(after["dynamodb"][name])
        found += [f"{name}: added {item}" for item in sorted(added)]
        found += [f"{name}: removed {item}" for item in sorted(removed)]
    for key in sorted(set(before["redis"]) | set(after["redis"])):
        if before["redis"].get(key) != after["redis"].get(key):
            found.append(f"redis {key}: {before['redis'].get(key)!r} -> {after['redis'].get(key)!r}")
    return found
