"""The outbox table (events waiting for the relay, marked published once confirmed) and
the deliveries table (each channel's latest outcome per event)."""

from __future__ import annotations

from chalicelib.adapters.dynamodb import DynamoTables, deserialize, serialize
from chalicelib.adapters.tables import BY_STUDENT_INDEX, UNPUBLISHED_INDEX
from chalicelib.domain.clock import now_iso


class DynamoOutbox(DynamoTables):
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
        items = self._get_all_raw(
            self.settings.outbox_table,
            [serialize({"event_id": e}) for e in event_ids],
            ConsistentRead=True,
            ProjectionExpression="event_id, unpublished",
        )
        return {item["event_id"]["S"] for item in items if "unpublished" in item}

    def mark_published(self, images: list[dict]) -> None:
        """Write each event back without its `unpublished` marker, 25 to a request.

        The relay holds each event's whole item (the stream's NewImage), and nothing else
        writes an outbox item after it is created (delivery outcomes have a table of their
        own), so a put of the image is the cheapest exact mark.
        """
        published_at = serialize({"published_at": now_iso(precise=True)})
        marked = [{**{k: v for k, v in image.items() if k != "unpublished"}, **published_at} for image in images]
        self._write_all_raw(self.settings.outbox_table, [{"PutRequest": {"Item": i}} for i in marked])


class DeliveryHistory(DynamoTables):
    """Per-channel delivery outcomes, one row per (event, channel)."""

    def record(self, channel: str, outcomes: list[tuple[str, str, int, str | None]]) -> None:
        """Store (event id, status, attempts, last error) for each event on `channel`."""
        now = now_iso()
        rows = [
            {
                "event_id": event_id,
                "channel": channel,
                "status": status,
                "attempts": attempts,
                "last_error": error,
                "updated_at": now,
            }
            for event_id, status, attempts, error in outcomes
        ]
        self.batch_write(self.settings.deliveries_table, puts=rows)

    def of_student(self, student_id: int, limit: int = 100) -> list[dict]:
        """The student's events, newest first, each with `deliveries` by channel."""
        response = self.client.query(
            TableName=self.settings.outbox_table,
            IndexName=BY_STUDENT_INDEX,
            KeyConditionExpression="student_id = :s",
            ExpressionAttributeValues=serialize({":s": student_id}),
            ScanIndexForward=False,
            Limit=limit,
        )
        events = [deserialize(item) for item in response.get("Items", [])]
        keys = [serialize({"event_id": e["event_id"], "channel": c}) for e in events for c in e.get("channels") or []]
        rows = [deserialize(row) for row in self._get_all_raw(self.settings.deliveries_table, keys)] if keys else []
        outcomes = {(row["event_id"], row["channel"]): row for row in rows}
        for event in events:
            event["deliveries"] = {
                channel: outcomes.get((event["event_id"], channel), {"status": "pending", "attempts": 0})
                for channel in event.get("channels") or []
            }
        return events
