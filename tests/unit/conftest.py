"""The real domain services on in-process backends: moto's DynamoDB and fakeredis (with Lua)."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import fakeredis
import pytest
from moto import mock_aws

from chalicelib.adapters import redis_keys, tables
from chalicelib.adapters.dynamodb import DynamoCatalog, DynamoUsers, deserialize
from chalicelib.adapters.passwords import Argon2Hasher
from chalicelib.adapters.redis_subscriptions import RedisSubscriptions
from chalicelib.adapters.redis_waitlist import RedisWaitlists
from chalicelib.adapters.tokens import JwtCodec
from chalicelib.config import Settings
from chalicelib.domain import events
from chalicelib.domain.auth import AuthService
from chalicelib.domain.enrollment import EnrollmentService
from chalicelib.domain.model import ClassSection, EnrollmentState, Identity, Role, User
from chalicelib.domain.registrar import RegistrarService
from chalicelib.domain.subscriptions import Subscription

_AWS_DYNAMODB = "https://dynamodb.us-east-1.amazonaws.com"


class World:
    """The services under test plus shortcuts that set up state without going through the rules."""

    def __init__(self, settings: Settings, client: Any, redis: fakeredis.FakeRedis) -> None:
        self.settings = settings
        self.client = client
        self.redis = redis
        self.catalog = DynamoCatalog(settings, client)
        self.users = DynamoUsers(settings, client)
        self.waitlists = RedisWaitlists(redis)
        self.subscriptions = RedisSubscriptions(redis)
        self.enrollment = EnrollmentService(self.catalog, self.users, self.waitlists, self.subscriptions)
        self.registrar_service = RegistrarService(self.enrollment)
        self.tokens = JwtCodec(settings.jwt_secret, settings.token_ttl_seconds)
        self.auth = AuthService(self.users, Argon2Hasher(), self.tokens)
        self._ids = itertools.count(1)
        self.registrar = self.user(Role.REGISTRAR)

    # -- users and classes ----------------------------------------------------------

    def user(self, role: Role) -> Identity:
        user_id = next(self._ids)
        user = User(user_id, f"{role.value}{user_id}", role, f"{role.value} {user_id}", f"u{user_id}@example.edu")
        # "!" is no Argon2 hash: these accounts cannot log in, which these tests do not need.
        self.client.transact_write_items(TransactItems=self.users.put_items(user, "!"))
        return Identity(user_id, role, user.username)

    def student(self) -> Identity:
        return self.user(Role.STUDENT)

    def students(self, count: int) -> list[Identity]:
        return [self.student() for _ in range(count)]

    def instructor(self) -> Identity:
        return self.user(Role.INSTRUCTOR)

    def section(self, max_enroll: int, instructor: Identity | None = None) -> ClassSection:
        class_id = next(self._ids)
        teacher = instructor or self.instructor()
        section = ClassSection(
            class_id=class_id,
            department="CPSC",
            course_code="120",
            section=1,
            name=f"Class {class_id}",
            instructor_id=teacher.user_id,
            max_enroll=max_enroll,
        )
        assert self.catalog.create_class(section)
        return section

    def full_section(
        self, max_enroll: int = 1, waiting: int = 0, instructor: Identity | None = None
    ) -> tuple[ClassSection, list[Identity], list[Identity]]:
        """A full class, its enrolled students and `waiting` students on its waitlist, in joining order."""
        section = self.section(max_enroll, instructor)
        enrolled = self.students(max_enroll)
        for student in enrolled:
            assert self.enrollment.enroll(student, student.user_id, section.class_id).enrolled
        queue = self.students(waiting)
        for student in queue:
            assert not self.enrollment.enroll(student, student.user_id, section.class_id).enrolled
        return self.get_class(section.class_id), enrolled, queue

    # -- observations ---------------------------------------------------------------

    def get_class(self, class_id: int) -> ClassSection | None:
        section, _, _, _ = self.catalog.load(class_id)
        return section

    def state(self, class_id: int, student_id: int) -> EnrollmentState | None:
        _, _, enrollment, _ = self.catalog.load(class_id, student_id)
        return enrollment.state if enrollment else None

    def waiting(self, class_id: int) -> list[int]:
        return [entry.student_id for entry in self.waitlists.entries(class_id)]

    def student_waitlists(self, student_id: int) -> list[int]:
        return [int(c) for c in self.redis.zrange(redis_keys.student_waitlists(student_id), 0, -1)]

    def outbox(self) -> list[dict]:
        """Every outbox item, in no particular order; a scan is fine in a test."""
        return [deserialize(i) for i in self.client.scan(TableName=self.settings.outbox_table)["Items"]]

    def bodies(self) -> list[dict]:
        return [json.loads(item["body"]) for item in self.outbox()]

    def subscribe(
        self,
        student_id: int,
        class_id: int,
        email: str | None = None,
        webhook_url: str | None = None,
        wanted: tuple[str, ...] = (events.PROMOTED,),
    ) -> None:
        subscription = Subscription(student_id, class_id, email, webhook_url, wanted, "2026-01-01T00:00:00Z")
        assert self.subscriptions.add(subscription)


@functools.cache
def _dynamodb_client() -> Any:
    """One client for the whole run, first built inside a mock_aws: building one costs more than a test.

    Each later mock_aws intercepts it as well. The explicit endpoint means an AWS_ENDPOINT_URL*
    left in the environment (the integration harness sets them) cannot steer it to a real server.
    """
    return boto3.session.Session().client("dynamodb", region_name="us-east-1", endpoint_url=_AWS_DYNAMODB)


@pytest.fixture
def world() -> Iterator[World]:
    settings = Settings.from_env()
    # Every mock_aws starts from empty backends: each test gets fresh tables.
    with mock_aws():
        client = _dynamodb_client()
        for definition in tables.definitions(settings):
            client.create_table(BillingMode="PAY_PER_REQUEST", **definition)
        redis = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        yield World(settings, client, redis)
