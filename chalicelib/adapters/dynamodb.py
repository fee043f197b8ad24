"""DynamoDB adapter: classes, enrollments, the freeze flag, users and the outbox.

Every write that must stay consistent with another is one TransactWriteItems whose
condition expressions make a retry harmless (moto and DynamoDB alike).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.tables import (
    BY_STUDENT_INDEX,
    CATALOG_INDEX,
    CATALOG_PARTITION,
    FREEZE_KEY,
)
from chalicelib.config import Settings
from chalicelib.domain.clock import now_iso
from chalicelib.domain.events import Event
from chalicelib.domain.model import (
    ClassSection,
    Enrollment,
    EnrollmentState,
    Role,
    User,
    WriteOutcome,
)


@functools.cache
def _codec() -> tuple[Any, Any]:
    # boto3 is imported on first use, not with the app: it is most of a cold start.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    serializer = _codec()[0]
    return {key: serializer.serialize(value) for key, value in item.items() if value is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _codec()[1]
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def _failed_conditions(error: ClientError) -> list[bool]:
    """Which items of a cancelled transaction failed their condition."""
    reasons = error.response.get("CancellationReasons") or []
    return [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons]


def _is_cancelled(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "TransactionCanceledException"


def _is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


def class_item(section: ClassSection) -> dict[str, Any]:
    return {
        "class_id": section.class_id,
        "catalog": CATALOG_PARTITION,
        "department": section.department,
        "course_code": section.course_code,
        "section": section.section,
        "name": section.name,
        "instructor_id": section.instructor_id,
        "max_enroll": section.max_enroll,
        "enrolled_count": section.enrolled_count,
    }


def section_from(item: dict[str, Any]) -> ClassSection:
    return ClassSection(
        class_id=int(item["class_id"]),
        department=item["department"],
        course_code=str(item["course_code"]),
        section=int(item["section"]),
        name=item["name"],
        instructor_id=int(item["instructor_id"]),
        max_enroll=int(item["max_enroll"]),
        enrolled_count=int(item.get("enrolled_count", 0)),
    )


def user_from(item: dict[str, Any]) -> User:
    return User(
        user_id=int(item["user_id"]),
        username=item["username"],
        role=Role(item["role"]),
        name=item.get("name", ""),
        email=item.get("email", ""),
    )


def user_key(user_id: int) -> str:
    return f"USER#{user_id}"


def login_key(username: str) -> str:
    return f"LOGIN#{username}"


def enrollment_item(
    class_id: int, student_id: int, state: EnrollmentState, from_waitlist: bool = False
) -> dict[str, Any]:
    item = {"class_id": class_id, "student_id": student_id, "state": state.value, "updated_at": now_iso(precise=True)}
    if from_waitlist:
        item["from_waitlist"] = True
    return item


def outbox_item(event: Event) -> dict[str, Any]:
    """An outbox row: the event body as published, plus keys for the relay and history."""
    return {
        "event_id": event.event_id,
        "type": event.type,
        "student_id": event.student_id,
        "class_id": event.class_id,
        "occurred_at": event.occurred_at,
        # Microsecond order of creation: sorts the relay's queue and the history.
        "created_at": now_iso(precise=True),
        "body": json.dumps(event.body(), separators=(",", ":")),
        "unpublished": "pending",
        # The channels it goes out on; their outcomes are rows of the deliveries table.
        "channels": [
            channel
            for channel, address in (("email", event.contact.email), ("webhook", event.contact.webhook_url))
            if address
        ],
    }


BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
_BATCH_ATTEMPTS = 8


class DynamoTables:
    """What every DynamoDB adapter shares: the client, created on first use, and batch
    calls that retry, with backoff, whatever DynamoDB leaves unprocessed."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def _batch_get_raw(self, requests: dict[str, dict]) -> dict[str, list[dict]]:
        """One BatchGetItem (at most 100 keys in all), as raw items by table."""
        found: dict[str, list[dict]] = {}
        pending = requests
        for attempt in range(_BATCH_ATTEMPTS):
            response = self.client.batch_get_item(RequestItems=pending)
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return found
            time.sleep(0.01 * 2**attempt)
        raise RuntimeError("DynamoDB kept keys unprocessed")

    def _batch_get(self, requests: dict[str, dict]) -> dict[str, list[dict]]:
        return {table: [deserialize(i) for i in items] for table, items in self._batch_get_raw(requests).items()}

    def _get_all_raw(self, table: str, keys: list[dict], **options: Any) -> list[dict]:
        """Raw items of one table for any number of (serialized) keys, 100 to a request."""
        found: list[dict] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request = {table: {"Keys": keys[start : start + BATCH_GET_LIMIT], **options}}
            found.extend(self._batch_get_raw(request).get(table, []))
        return found

    def _write_all_raw(self, table: str, requests: list[dict]) -> None:
        """BatchWriteItem of raw put/delete requests, 25 to a request."""
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = {table: requests[start : start + BATCH_WRITE_LIMIT]}
            for attempt in range(_BATCH_ATTEMPTS):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.01 * 2**attempt)
            else:
                raise RuntimeError("DynamoDB kept items unprocessed")

    def batch_write(self, table: str, puts: list[dict] = (), deletes: list[dict] = ()) -> None:
        requests = [{"PutRequest": {"Item": serialize(i)}} for i in puts]
        requests += [{"DeleteRequest": {"Key": serialize(k)}} for k in deletes]
        self._write_all_raw(table, requests)


class DynamoCatalog(DynamoTables):
    # -- reads ----------------------------------------------------------------------

    def load(
        self, class_id: int, student_id: int | None = None
    ) -> tuple[ClassSection | None, User | None, Enrollment | None, bool]:
        """The class, the student, their enrollment and the freeze flag in one request."""
        s = self.settings
        requests: dict[str, dict] = {
            s.classes_table: {"Keys": [serialize({"class_id": class_id})], "ConsistentRead": True},
            s.settings_table: {"Keys": [serialize({"name": FREEZE_KEY})], "ConsistentRead": True},
        }
        if student_id is not None:
            requests[s.users_table] = {
                "Keys": [serialize({"pk": user_key(student_id)})],
                "ConsistentRead": True,
            }
            requests[s.enrollments_table] = {
                "Keys": [serialize({"class_id": class_id, "student_id": student_id})],
                "ConsistentRead": True,
            }
        found = self._batch_get(requests)
        section = next((section_from(i) for i in found.get(s.classes_table, [])), None)
        user = next((user_from(i) for i in found.get(s.users_table, [])), None)
        enrollment = next(
            (
                Enrollment(
                    int(i["class_id"]), int(i["student_id"]), EnrollmentState(i["state"]), bool(i.get("from_waitlist"))
                )
                for i in found.get(s.enrollments_table, [])
            ),
            None,
        )
        frozen = any(bool(i.get("frozen")) for i in found.get(s.settings_table, []))
        return section, user, enrollment, frozen

    def list_classes(self) -> list[ClassSection]:
        return [
            section_from(item)
            for item in self._query(
                TableName=self.settings.classes_table,
                IndexName=CATALOG_INDEX,
                KeyConditionExpression="catalog = :all",
                ExpressionAttributeValues=serialize({":all": CATALOG_PARTITION}),
            )
        ]

    def get_classes(self, class_ids: list[int]) -> list[ClassSection]:
        table = self.settings.classes_table
        sections: list[ClassSection] = []
        for start in range(0, len(class_ids), BATCH_GET_LIMIT):
            chunk = class_ids[start : start + BATCH_GET_LIMIT]
            found = self._batch_get({table: {"Keys": [serialize({"class_id": c}) for c in chunk]}})
            sections.extend(section_from(i) for i in found.get(table, []))
        return sorted(sections, key=lambda s: s.class_id)

    def students(self, class_id: int, state: EnrollmentState) -> list[int]:
        items = self._query(
            TableName=self.settings.enrollments_table,
            KeyConditionExpression="class_id = :c",
            FilterExpression="#s = :state",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=serialize({":c": class_id, ":state": state.value}),
            ConsistentRead=True,
        )
        return [int(item["student_id"]) for item in items]

    def enrolled_class_ids(self, student_id: int) -> list[int]:
        items = self._query(
            TableName=self.settings.enrollments_table,
            IndexName=BY_STUDENT_INDEX,
            KeyConditionExpression="student_id = :s",
            FilterExpression="#s = :enrolled",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=serialize({":s": student_id, ":enrolled": EnrollmentState.ENROLLED.value}),
        )
        return [int(item["class_id"]) for item in items]

    # -- enrollment writes ----------------------------------------------------------

    def _take_seat(self, class_id: int) -> dict:
        return {
            "Update": {
                "TableName": self.settings.classes_table,
                "Key": serialize({"class_id": class_id}),
                "UpdateExpression": "SET enrolled_count = enrolled_count + :one",
                "ConditionExpression": "attribute_exists(class_id) AND enrolled_count < max_enroll",
                "ExpressionAttributeValues": serialize({":one": 1}),
            }
        }

    def _put_enrollment(self, class_id: int, student_id: int, from_waitlist: bool = False) -> dict:
        return {
            "Put": {
                "TableName": self.settings.enrollments_table,
                "Item": serialize(enrollment_item(class_id, student_id, EnrollmentState.ENROLLED, from_waitlist)),
                "ConditionExpression": "attribute_not_exists(student_id) OR #s <> :enrolled",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": serialize({":enrolled": EnrollmentState.ENROLLED.value}),
            }
        }

    def _put_event(self, event: Event) -> dict:
        return {
            "Put": {
                "TableName": self.settings.outbox_table,
                "Item": serialize(outbox_item(event)),
                "ConditionExpression": "attribute_not_exists(event_id)",
            }
        }

    def enroll(self, class_id: int, student_id: int) -> WriteOutcome:
        return self._seat_transaction([self._take_seat(class_id), self._put_enrollment(class_id, student_id)])

    def promote(self, class_id: int, student_id: int, event: Event) -> WriteOutcome:
        """Seat, enrollment and its outbox event: all three or none."""
        return self._seat_transaction(
            [self._take_seat(class_id), self._put_enrollment(class_id, student_id, True), self._put_event(event)]
        )

    def _seat_transaction(self, items: list[dict]) -> WriteOutcome:
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if not _is_cancelled(error):
                raise
            failed = [*_failed_conditions(error), False, False]
            if failed[1]:
                return WriteOutcome.ALREADY_ENROLLED
            if failed[0]:
                return WriteOutcome.CLASS_FULL
            raise
        return WriteOutcome.DONE

    def drop(self, class_id: int, student_id: int) -> WriteOutcome:
        s = self.settings
        items = [
            {
                "Update": {
                    "TableName": s.enrollments_table,
                    "Key": serialize({"class_id": class_id, "student_id": student_id}),
                    "UpdateExpression": "SET #s = :dropped, updated_at = :now",
                    "ConditionExpression": "#s = :enrolled",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": serialize(
                        {
                            ":dropped": EnrollmentState.DROPPED.value,
                            ":enrolled": EnrollmentState.ENROLLED.value,
                            ":now": now_iso(precise=True),
                        }
                    ),
                }
            },
            {
                "Update": {
                    "TableName": s.classes_table,
                    "Key": serialize({"class_id": class_id}),
                    "UpdateExpression": "SET enrolled_count = enrolled_count - :one",
                    "ConditionExpression": "attribute_exists(class_id) AND enrolled_count > :zero",
                    "ExpressionAttributeValues": serialize({":one": 1, ":zero": 0}),
                }
            },
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if not _is_cancelled(error):
                raise
            failed = [*_failed_conditions(error), False, False]
            if failed[0]:
                return WriteOutcome.NOT_ENROLLED
            if failed[1]:
                return WriteOutcome.CLASS_GONE
            raise
        return WriteOutcome.DONE

    # -- class administration -------------------------------------------------------

    def create_class(self, section: ClassSection) -> bool:
        try:
            self.client.put_item(
                TableName=self.settings.classes_table,
                Item=serialize(class_item(section)),
                ConditionExpression="attribute_not_exists(class_id)",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def update_class(
        self, class_id: int, max_enroll: int | None, name: str | None
    ) -> tuple[WriteOutcome, ClassSection | None]:
        sets, values = [], {}
        condition = "attribute_exists(class_id)"
        if max_enroll is not None:
            sets.append("max_enroll = :max")
            values[":max"] = max_enroll
            condition += " AND enrolled_count <= :max"
        if name is not None:
            sets.append("#n = :name")
            values[":name"] = name
        try:
            response = (
                self.client.update_item(
                    TableName=self.settings.classes_table,
                    Key=serialize({"class_id": class_id}),
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#n": "name"} if name is not None else {},
                    ExpressionAttributeValues=serialize(values),
                    ReturnValues="ALL_NEW",
                )
                if sets
                else None
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            current = self._get_class(class_id)
            return (WriteOutcome.CLASS_FULL if current else WriteOutcome.CLASS_GONE), current
        if response is None:
            current = self._get_class(class_id)
            return (WriteOutcome.DONE if current else WriteOutcome.CLASS_GONE), current
        return WriteOutcome.DONE, section_from(deserialize(response["Attributes"]))

    def set_instructor(self, class_id: int, instructor_id: int) -> ClassSection | None:
        try:
            response = self.client.update_item(
                TableName=self.settings.classes_table,
                Key=serialize({"class_id": class_id}),
                UpdateExpression="SET instructor_id = :i",
                ConditionExpression="attribute_exists(class_id)",
                ExpressionAttributeValues=serialize({":i": instructor_id}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        return section_from(deserialize(response["Attributes"]))

    def delete_class(self, class_id: int) -> bool:
        try:
            self.client.delete_item(
                TableName=self.settings.classes_table,
                Key=serialize({"class_id": class_id}),
                ConditionExpression="attribute_exists(class_id)",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        keys = [
            {"class_id": class_id, "student_id": int(item["student_id"])}
            for item in self._query(
                TableName=self.settings.enrollments_table,
                KeyConditionExpression="class_id = :c",
                ExpressionAttributeValues=serialize({":c": class_id}),
                ProjectionExpression="class_id, student_id",
            )
        ]
        self.batch_write(self.settings.enrollments_table, deletes=keys)
        return True

    def set_frozen(self, frozen: bool) -> None:
        self.client.put_item(
            TableName=self.settings.settings_table,
            Item=serialize({"name": FREEZE_KEY, "frozen": frozen, "updated_at": now_iso(precise=True)}),
        )

    def next_id(self, counter: str, floor: int) -> int:
        return next_counter(self.client, self.settings.settings_table, "name", f"counter#{counter}", floor)

    def add_events(self, events: list[Event]) -> None:
        self.batch_write(self.settings.outbox_table, puts=[outbox_item(e) for e in events])

    # -- plumbing -------------------------------------------------------------------

    def _get_class(self, class_id: int) -> ClassSection | None:
        response = self.client.get_item(
            TableName=self.settings.classes_table, Key=serialize({"class_id": class_id}), ConsistentRead=True
        )
        item = response.get("Item")
        return section_from(deserialize(item)) if item else None

    def _query(self, **kwargs: Any) -> Iterator[dict]:
        while True:
            response = self.client.query(**kwargs)
            yield from (deserialize(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def next_counter(client: Any, table: str, key_name: str, key: str, floor: int) -> int:
    """Atomically allocate the next number of a counter that starts above `floor`."""
    response = client.update_item(
        TableName=table,
        Key=serialize({key_name: key}),
        UpdateExpression="SET #v = if_not_exists(#v, :floor) + :one",
        ExpressionAttributeNames={"#v": "value"},
        ExpressionAttributeValues=serialize({":floor": floor, ":one": 1}),
        ReturnValues="UPDATED_NEW",
    )
    return int(deserialize(response["Attributes"])["value"])


class DynamoUsers(DynamoTables):
    def get(self, user_id: int) -> User | None:
        response = self.client.get_item(
            TableName=self.settings.users_table, Key=serialize({"pk": user_key(user_id)}), ConsistentRead=True
        )
        item = response.get("Item")
        return user_from(deserialize(item)) if item else None

    def credentials(self, username: str) -> tuple[User, str] | None:
        response = self.client.get_item(
            TableName=self.settings.users_table,
            Key=serialize({"pk": login_key(username)}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        data = deserialize(item)
        return user_from(data), data["password_hash"]

    def create(self, username: str, password_hash: str, role: Role, name: str, email: str) -> User | None:
        user_id = next_counter(self.client, self.settings.users_table, "pk", "COUNTER#user", floor=1000)
        user = User(user_id=user_id, username=username, role=role, name=name, email=email)
        try:
            self.client.transact_write_items(TransactItems=self.put_items(user, password_hash, conditional=True))
        except ClientError as error:
            if _is_cancelled(error):
                return None
            raise
        return user

    def delete(self, user_id: int) -> bool:
        """Remove both items of an account; False when there is none."""
        user = self.get(user_id)
        if user is None:
            return False
        table = self.settings.users_table
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": table,
                            "Key": serialize({"pk": user_key(user_id)}),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"TableName": table, "Key": serialize({"pk": login_key(user.username)})}},
                ]
            )
        except ClientError as error:
            if _is_cancelled(error):
                return False
            raise
        return True

    def put_items(self, user: User, password_hash: str, conditional: bool = False) -> list[dict]:
        """The two items of an account: by id, and by username with the password hash."""
        profile = {
            "user_id": user.user_id,
            "username": user.username,
            "role": user.role.value,
            "name": user.name,
            "email": user.email,
        }
        condition = {"ConditionExpression": "attribute_not_exists(pk)"} if conditional else {}
        return [
            {
                "Put": {
                    "TableName": self.settings.users_table,
                    "Item": serialize({"pk": user_key(user.user_id), **profile}),
                    **condition,
                }
            },
            {
                "Put": {
                    "TableName": self.settings.users_table,
                    "Item": serialize({"pk": login_key(user.username), **profile, "password_hash": password_hash}),
                    **condition,
                }
            },
        ]
