"""The DynamoDB tables: names, keys and indexes, declared once for the adapters,
the bootstrap and the deploy template check."""

from __future__ import annotations

from chalicelib.config import Settings

CATALOG_INDEX = "catalog"
CATALOG_PARTITION = "all"
BY_STUDENT_INDEX = "by-student"
UNPUBLISHED_INDEX = "unpublished"
FREEZE_KEY = "automatic_enrollment"


def _attrs(**types: str) -> list[dict]:
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


def _keys(partition: str, sort: str | None = None) -> list[dict]:
    keys = [{"AttributeName": partition, "KeyType": "HASH"}]
    if sort:
        keys.append({"AttributeName": sort, "KeyType": "RANGE"})
    return keys


def _index(name: str, partition: str, sort: str | None = None) -> dict:
    return {"IndexName": name, "KeySchema": _keys(partition, sort), "Projection": {"ProjectionType": "ALL"}}


def definitions(settings: Settings) -> list[dict]:
    """CreateTable arguments for every table, on-demand billing."""
    return [
        {
            "TableName": settings.classes_table,
            "AttributeDefinitions": _attrs(class_id="N", catalog="S"),
            "KeySchema": _keys("class_id"),
            "GlobalSecondaryIndexes": [_index(CATALOG_INDEX, "catalog", "class_id")],
        },
        {
            "TableName": settings.enrollments_table,
            "AttributeDefinitions": _attrs(class_id="N", student_id="N"),
            "KeySchema": _keys("class_id", "student_id"),
            "GlobalSecondaryIndexes": [_index(BY_STUDENT_INDEX, "student_id", "class_id")],
        },
        {
            "TableName": settings.users_table,
            "AttributeDefinitions": _attrs(pk="S"),
            "KeySchema": _keys("pk"),
        },
        {
            "TableName": settings.settings_table,
            "AttributeDefinitions": _attrs(name="S"),
            "KeySchema": _keys("name"),
        },
        {
            "TableName": settings.outbox_table,
            "AttributeDefinitions": _attrs(event_id="S", student_id="N", created_at="S", unpublished="S"),
            "KeySchema": _keys("event_id"),
            "GlobalSecondaryIndexes": [
                _index(BY_STUDENT_INDEX, "student_id", "created_at"),
                _index(UNPUBLISHED_INDEX, "unpublished", "created_at"),
            ],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        },
        {
            # One row per (event, channel): the outcome of its latest delivery attempt.
            "TableName": settings.deliveries_table,
            "AttributeDefinitions": _attrs(event_id="S", channel="S"),
            "KeySchema": _keys("event_id", "channel"),
        },
    ]
