"""Lazily created AWS clients; endpoints come from the environment (AWS_ENDPOINT_URL_*)."""

from __future__ import annotations

from functools import cache


@cache
def client(service: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50)
    )


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints)."""
    client.cache_clear()
