"""Settings shared by every test: a separate table prefix, Redis database and JWT key."""

from __future__ import annotations

import os

TEST_ENV = {
    "STAGE": "local",
    "TABLE_PREFIX": "titan-test",
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "AMQP_URL": os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/titan-test"),
    "JWT_SECRET": "test-only-signing-key-0123456789abcdef-0123456789",
    "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "PYTHONUNBUFFERED": "1",
    "RETRY_DELAYS": "0.2,0.4",
    "MAX_ATTEMPTS": "3",
    # Many tests log in wrongly on purpose; throttling has tests of its own with low limits.
    "LOGIN_FAILURES_PER_USER": "100000",
    "LOGIN_FAILURES_PER_CLIENT": "100000",
}
for _name in (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "AWS_PROFILE",
):
    os.environ.pop(_name, None)
os.environ.update(TEST_ENV)
