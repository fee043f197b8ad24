"""The outbox table: events waiting for the relay, and marking them published."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.dynamodb import deserialize, serialize
from chalicelib.adapters.tables import BY_STUDENT_INDEX, UNPUBLISHED_INDEX
from chalicelib.config import Settings
from chalicelib.domain.clock import now_iso

TRANSACTION_LIMIT = 100
BATCH_GET_LIMIT = 100
MARK_CONCURRENCY = 16


class DynamoOutbox:
    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def unpublished(self, limit: int) -> list[dict]:
        """The oldest unpublished events, as raw DynamoDB items (stream NewImage form)."""
        response = self.client.query(
            TableName=self.settings.outbox_table,
            IndexName=UNPUBLISHED_INDEX,
            KeyConditionExpression="unpublished = :pending",
            ExpressionAttributeValues=serialize({":pending": "pending"}),
            ScanIndexForward=True,
            Limit=limit,
        )
        return response.get("Items", [])

    def still_unpublished(self, event_ids: list[str]) -> set[str]:
        """Which of these events are not yet marked published (a retried batch skips the rest)."""
        table = self.settings.outbox_table
        pending: set[str] = set()
        for start in range(0, len(event_ids), BATCH_GET_LIMIT):
            request = {
                table: {
                    "Keys": [serialize({"event_id": e}) for e in event_ids[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "event_id, unpublished",
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(table, []):
                    if "unpublished" in item:
                        pending.add(item["event_id"]["S"])
                request = response.get("UnprocessedKeys") or {}
        return pending

    def mark_published(self, event_ids: list[str]) -> None:
        """One conditional UpdateItem per event, several at a time.

        Marks are independent (one left undone only means that event is published again,
        with the same id), so they need no transaction: a transactional write costs twice
        the capacity, conflicts with the delivery history written to the same items, and
        on moto copies the whole table for every item it holds.
        """
        if len(event_ids) <= 1:
            for event_id in event_ids:
                self._mark_one(event_id)
            return
        with ThreadPoolExecutor(max_workers=min(MARK_CONCURRENCY, len(event_ids))) as pool:
            # list(): re-raise the first failure here, after every mark was tried.
            list(pool.map(self._mark_one, event_ids))

    def _mark(self, event_id: str) -> dict:
        return {
            "Update": {
                "TableName": self.settings.outbox_table,
                "Key": serialize({"event_id": event_id}),
                "UpdateExpression": "REMOVE unpublished SET published_at = :now",
                "ConditionExpression": "attribute_exists(event_id)",
                "ExpressionAttributeValues": serialize({":now": now_iso(precise=True)}),
            }
        }

    def _mark_one(self, event_id: str) -> None:
        try:
            self.client.update_item(**self._mark(event_id)["Update"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


class DeliveryHistory:
    """Per-channel delivery status, kept on each event's outbox item."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def record(self, channel: str, outcomes: list[tuple[str, str, int, str | None]]) -> None:
        """Store (event id, status, attempts, last error) for each event on `channel`."""
        updates = [self._update(channel, *outcome) for outcome in outcomes]
        for start in range(0, len(updates), TRANSACTION_LIMIT):
            chunk = updates[start : start + TRANSACTION_LIMIT]
            try:
                self.client.transact_write_items(TransactItems=[{"Update": u} for u in chunk])
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                for update in chunk:  # an event without an outbox row: record the others
                    try:
                        self.client.update_item(**update)
                    except ClientError as single:
                        if single.response["Error"]["Code"] != "ConditionalCheckFailedException":
                            raise

    def _update(self, channel: str, event_id: str, status: str, attempts: int, error: str | None) -> dict:
        return {
            "TableName": self.settings.outbox_table,
            "Key": serialize({"event_id": event_id}),
            "UpdateExpression": "SET deliveries.#c = :d",
            "ConditionExpression": "attribute_exists(event_id) AND attribute_exists(deliveries)",
            "ExpressionAttributeNames": {"#c": channel},
            "ExpressionAttributeValues": serialize(
                {":d": {"status": status, "attempts": attempts, "last_error": error, "updated_at": now_iso()}}
            ),
        }

    def of_student(self, student_id: int, limit: int = 100) -> list[dict]:
        """The student's events, newest first."""
        response = self.client.query(
            TableName=self.settings.outbox_table,
            IndexName=BY_STUDENT_INDEX,
            KeyConditionExpression="student_id = :s",
            ExpressionAttributeValues=serialize({":s": student_id}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [deserialize(item) for item in response.get("Items", [])]
