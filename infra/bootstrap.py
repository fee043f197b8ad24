"""Create the tables and load the sample data; re-running resets to exactly that state.

python -m infra.bootstrap [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.adapters import aws, redis_keys, tables, topology
from chalicelib.adapters.dynamodb import DynamoCatalog, DynamoUsers, class_item, enrollment_item
from chalicelib.adapters.passwords import Argon2Hasher
from chalicelib.adapters.redis_client import connect
from chalicelib.adapters.redis_waitlist import RedisWaitlists
from chalicelib.config import Settings, get_settings
from chalicelib.domain.model import EnrollmentState
from infra import sample_data


def wait_for_dynamodb(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            aws.client("dynamodb").list_tables(Limit=1)
            return
        except (EndpointConnectionError, ConnectionError):
            if time.monotonic() > deadline:
                raise SystemExit(f"DynamoDB endpoint not reachable after {seconds:.0f} s") from None
            time.sleep(0.2)


def recreate_tables(settings: Settings) -> None:
    client = aws.client("dynamodb")
    definitions = tables.definitions(settings)
    for definition in definitions:
        try:
            client.delete_table(TableName=definition["TableName"])
            client.get_waiter("table_not_exists").wait(
                TableName=definition["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
    for definition in definitions:
        client.create_table(BillingMode="PAY_PER_REQUEST", **definition)
    for definition in definitions:
        client.get_waiter("table_exists").wait(
            TableName=definition["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )


@functools.cache
def _demo_hash() -> str:
    return Argon2Hasher().hash(sample_data.DEMO_PASSWORD)


def load_users(settings: Settings) -> None:
    users = DynamoUsers(settings)
    # One hash for every demo account keeps the bootstrap fast; demo logins exist
    # only in the local stage.
    demo_hash = _demo_hash() if settings.stage == "local" else None
    items = []
    for user in sample_data.users():
        profile, login = users.put_items(user, demo_hash or "!")
        items.append(profile["Put"]["Item"])
        if demo_hash:
            items.append(login["Put"]["Item"])
    write_raw(settings.users_table, items)


def write_raw(table: str, serialized_items: list[dict]) -> None:
    client = aws.client("dynamodb")
    for start in range(0, len(serialized_items), 25):
        pending = {table: [{"PutRequest": {"Item": i}} for i in serialized_items[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def load_classes(settings: Settings) -> None:
    catalog = DynamoCatalog(settings)
    catalog.batch_write(settings.classes_table, puts=[class_item(s) for s in sample_data.sections()])
    catalog.batch_write(
        settings.enrollments_table,
        puts=[
            enrollment_item(class_id, student_id, EnrollmentState.ENROLLED)
            for class_id in sample_data.CLASSES
            for student_id in sample_data.enrolled(class_id)
        ],
    )


def clear_redis() -> None:
    """Delete every key the application owns in the configured Redis database, nothing else."""
    redis = connect()
    for pattern in redis_keys.OWNED_PATTERNS:
        batch = list(redis.scan_iter(match=pattern, count=1000))
        if batch:
            redis.delete(*batch)


def reset_redis() -> None:
    clear_redis()
    redis = connect()
    waitlists = RedisWaitlists(redis)
    for class_id, students in sample_data.WAITLISTS:
        for student_id in students:
            waitlists.join(class_id, student_id, capacity=10**6, per_student=10**6)


def reset_broker(settings: Settings) -> None:
    """Declare the notification topology and empty its queues."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        topology.declare(channel, settings.retry_delays)
        topology.purge(channel, settings.retry_delays)
    finally:
        connection.close()


def bootstrap(settings: Settings) -> None:
    recreate_tables(settings)
    load_users(settings)
    load_classes(settings)
    reset_redis()
    reset_broker(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description="Create tables and load the sample data.")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the DynamoDB endpoint")
    args = parser.parse_args()
    settings = get_settings()
    started = time.monotonic()
    if args.wait:
        wait_for_dynamodb(args.wait)
    bootstrap(settings)
    print(
        f"bootstrap: stage {settings.stage}, tables {settings.table_prefix}-*, "
        f"sample data loaded in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
