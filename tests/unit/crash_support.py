"""A self-contained in-process stack for fault and interleaving tests: moto's DynamoDB,
fakeredis with Lua, the real adapters and services, and wrappers that make one adapter
call fail or run something else first."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import fakeredis
from moto import mock_aws

from chalicelib.adapters import redis_keys, tables
from chalicelib.adapters.dynamodb import DynamoCatalog, DynamoUsers, deserialize, serialize
from chalicelib.adapters.redis_subscriptions import RedisSubscriptions
from chalicelib.adapters.redis_waitlist import RedisWaitlists
from chalicelib.config import Settings
from chalicelib.domain import events
from chalicelib.domain.enrollment import EnrollmentService
from chalicelib.domain.model import ClassSection, EnrollmentState, Identity, Role, User
from chalicelib.domain.registrar import RegistrarService

# An explicit endpoint: an AWS_ENDPOINT_URL* set by the integration harness in the same
# session would otherwise steer the client past mock_aws.
_DYNAMODB_ENDPOINT = "https://dynamodb.us-east-1.amazonaws.com"


class Crash(Exception):
    """The injected failure: the process dies at this point."""


@dataclass
class Rig:
    settings: Settings
    client: Any
    redis: Any

    def __post_init__(self) -> None:
        self.catalog = DynamoCatalog(self.settings, self.client)
        self.users = DynamoUsers(self.settings, self.client)
        self.waitlists = RedisWaitlists(self.redis)
        self.subscriptions = RedisSubscriptions(self.redis)
        self.enrollment = EnrollmentService(self.catalog, self.users, self.waitlists, self.subscriptions)
        self.registrar_service = RegistrarService(self.enrollment)
        self.registrar = self.add_user(900, Role.REGISTRAR)

    # -- setup ------------------------------------------------------------------------

    def add_user(self, user_id: int, role: Role = Role.STUDENT) -> Identity:
        user = User(user_id, f"{role.value}{user_id}", role, f"{role.value} {user_id}", f"u{user_id}@example.edu")
        self.client.transact_write_items(TransactItems=self.users.put_items(user, "!"))
        return Identity(user_id, role, user.username)

    def add_class(self, class_id: int, max_enroll: int, instructor: Identity) -> ClassSection:
        section = ClassSection(class_id, "CPSC", "120", 1, f"Class {class_id}", instructor.user_id, max_enroll)
        assert self.catalog.create_class(section)
        return section

    # -- observations -----------------------------------------------------------------

    def section(self, class_id: int) -> ClassSection:
        found, _, _, _ = self.catalog.load(class_id)
        assert found is not None
        return found

    def enrolled(self, class_id: int) -> list[int]:
        return self.catalog.students(class_id, EnrollmentState.ENROLLED)

    def waiting(self, class_id: int) -> list[int]:
        return [entry.student_id for entry in self.waitlists.entries(class_id)]

    def waitlists_of(self, student_id: int) -> list[int]:
        return [int(c) for c in self.redis.zrange(redis_keys.student_waitlists(student_id), 0, -1)]

    def promoted_events(self, student_id: int, class_id: int) -> int:
        response = self.client.query(
            TableName=self.settings.outbox_table,
            IndexName=tables.BY_STUDENT_INDEX,
            KeyConditionExpression="student_id = :s",
            ExpressionAttributeValues=serialize({":s": student_id}),
        )
        items = [deserialize(item) for item in response["Items"]]
        return sum(1 for i in items if i["class_id"] == class_id and i["type"] == events.PROMOTED)


@contextlib.contextmanager
def running_rig() -> Iterator[Rig]:
    settings = replace(Settings.from_env(), table_prefix="titan-crash")
    with mock_aws():
        client = boto3.session.Session().client("dynamodb", region_name="us-east-1", endpoint_url=_DYNAMODB_ENDPOINT)
        for definition in tables.definitions(settings):
            client.create_table(BillingMode="PAY_PER_REQUEST", **definition)
        yield Rig(settings, client, fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True))


class Fault:
    """Replaces one adapter method: the first call about `student_id` raises Crash before or
    after the real call; every other call goes straight through."""

    def __init__(self, target: Any, method: str, student_id: int, after: bool) -> None:
        self.target = target
        self.method = method
        self.student_id = student_id
        self.after = after
        self.fired = False
        self._real: Callable = getattr(target, method)
        setattr(target, method, self._call)

    def _call(self, class_id: int, student_id: int, *args: Any) -> Any:
        if self.fired or student_id != self.student_id:
            return self._real(class_id, student_id, *args)
        self.fired = True
        if not self.after:
            raise Crash(f"before {self.method}")
        self._real(class_id, student_id, *args)
        raise Crash(f"after {self.method}")

    def remove(self) -> None:
        setattr(self.target, self.method, self._real)


class Interleave:
    """Replaces one adapter method: its first call runs `meanwhile` (another request that
    gets in between) and then the real call."""

    def __init__(self, target: Any, method: str, meanwhile: Callable[[], object]) -> None:
        self.target = target
        self.method = method
        self.meanwhile = meanwhile
        self.fired = False
        self._real: Callable = getattr(target, method)
        setattr(target, method, self._call)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        if not self.fired:
            self.fired = True
            self.meanwhile()
        return self._real(*args, **kwargs)
