"""The Lambda entry points fed events in the exact shapes AWS delivers, in-process.

- API Gateway REST proxy events (payload 1.0) through `app.app(event, context)`, with the
  `requestContext.authorizer` that API Gateway adds from the TOKEN authorizer's answer,
  and the authorizer itself fed a TOKEN authorizer event.
- DynamoDB stream records (INSERT/MODIFY/REMOVE, NewImage, multi-record batches) through
  `app.relay_outbox(event, context)`, with a fake broker, and once with records read from
  moto's stream of a real promotion.
- Amazon MQ for RabbitMQ (`aws:rmq`) batches, written out as Lambda passes them (byte-array
  headers, base64 bodies, a redelivered message), through `app.deliver_webhook` and
  `app.deliver_email`, to a real HTTP receiver and a real SMTP server in-process.

The DynamoDB calls each function makes are recorded and checked against the permissions
its role gets in the deploy templates (infra/deploy_templates.py).
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

import app as application
from chalicelib import services
from chalicelib.adapters import outbox, redis_client, requeue
from chalicelib.adapters.dynamodb import deserialize
from chalicelib.adapters.outbox import DeliveryHistory, DynamoOutbox
from chalicelib.api import security
from chalicelib.config import get_settings
from chalicelib.domain import delivery, events
from chalicelib.domain.model import Identity
from chalicelib.domain.notifications import NotificationHistory
from chalicelib.domain.subscriptions import Subscription, SubscriptionService, new_secret
from chalicelib.handlers import email as email_handler
from chalicelib.handlers import relay, wiring
from chalicelib.handlers import webhook as webhook_handler
from chalicelib.handlers.relay import RelayIncomplete
from infra import deploy_templates
from tests.e2e.conftest import Mailbox, WebhookReceiver
from tests.unit.conftest import World
from tests.unit.test_delivery_handler import FakeRequeue

ACCOUNT = "123456789012"
API_ID = "a1b2c3d4e5"
STAGE = "api"
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/titan-prod-outbox/stream/2026-12-03T18:00:00.000"
_STREAMS = "https://streams.dynamodb.us-east-1.amazonaws.com"


@dataclass
class LambdaContext:
    """The attributes of the context object Lambda passes to a Python handler."""

    function_name: str = "titan-enrollment-prod"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/titan-enrollment-prod"
    log_stream_name: str = "2026/12/03/[$LATEST]0123456789abcdef0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# -- API Gateway -------------------------------------------------------------------------


def rest_event(
    method: str,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    authorizer: dict | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    """An API Gateway REST API (v1) Lambda proxy integration event."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace(f"{{{name}}}", value)
    all_headers = {
        "Accept": "application/json",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Viewer-Country": "US",
        "Host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "titan-tests/1.0",
        "Via": "2.0 0a1b2c3d4e5f6a7b8c9d.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "k8m2C1Nx3vQ9rT0yZbV8sW7uE6dR5fG4hJ3kL2mN1oP0qR9sT8uV7w==",
        "X-Amzn-Trace-Id": "Root=1-675f4a00-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.10, 130.176.0.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    raw_body = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    if raw_body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    request_context: dict[str, Any] = {
        "resourceId": "x1y2z3",
        "resourcePath": resource,
        "httpMethod": method,
        "extendedRequestId": "Q2tVhE1ZoAMFb7g=",
        "requestTime": "03/Dec/2026:18:00:00 +0000",
        "path": f"/{STAGE}{path}",
        "accountId": ACCOUNT,
        "protocol": "HTTP/1.1",
        "stage": STAGE,
        "domainPrefix": API_ID,
        "requestTimeEpoch": 1796320800000,
        "requestId": str(uuid.uuid4()),
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": "203.0.113.10",
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": "titan-tests/1.0",
            "user": None,
        },
        "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        "apiId": API_ID,
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": request_context,
        "body": raw_body,
        "isBase64Encoded": False,
    }


def token_event(token: str, method: str, path: str) -> dict:
    """A TOKEN authorizer event, as API Gateway sends it to the authorizer function."""
    return {
        "type": "TOKEN",
        "authorizationToken": token,
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
    }


def authorizer_context(answer: dict) -> dict:
    """What API Gateway puts in requestContext.authorizer from the authorizer's answer."""
    return {**answer.get("context", {}), "principalId": answer["principalId"], "integrationLatency": 7}


def context_of(identity: Identity) -> dict:
    return authorizer_context(
        {
            "principalId": str(identity.user_id),
            "context": {"user_id": str(identity.user_id), "role": identity.role.value, "username": identity.username},
        }
    )


def call(event: dict) -> tuple[int, Any, dict]:
    response = application.app(event, LambdaContext())
    assert set(response) >= {"statusCode", "headers", "body"}
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body) if body else None, response["headers"]


# -- recording DynamoDB calls against the deploy templates' permissions --------------------


class CallRecorder:
    """(action, table, index) of each DynamoDB request made through a client."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls: set[tuple[str, str, str | None]] = set()

    def short(self, table: str) -> str:
        return table.removeprefix(f"{self.prefix}-")

    def __call__(self, model: Any, params: dict, **_: Any) -> None:
        operation = model.name
        if operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, spec), *_ = item.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(
                    kind, "ConditionCheckItem"
                )
                self.calls.add((f"dynamodb:{action}", self.short(spec["TableName"]), None))
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            for table in params["RequestItems"]:
                self.calls.add((f"dynamodb:{operation}", self.short(table), None))
        else:
            self.calls.add((f"dynamodb:{operation}", self.short(params["TableName"]), params.get("IndexName")))


@pytest.fixture
def recorder(world: World) -> Iterator[CallRecorder]:
    recording = CallRecorder(world.settings.table_prefix)
    events = world.client.meta.events
    events.register("before-parameter-build.dynamodb.*", recording, unique_id="titan-iam-recorder")
    yield recording
    events.unregister("before-parameter-build.dynamodb.*", unique_id="titan-iam-recorder")


def assert_allowed(function_name: str, calls: set[tuple[str, str, str | None]]) -> None:
    function = next(f for f in deploy_templates.FUNCTIONS if f.name == function_name)
    allowed = set()
    for access in function.tables:
        allowed |= {(action, access.table, None) for action in access.actions}
        allowed |= {(action, access.table, index) for action in access.index_actions for index in access.indexes}
    assert calls, "nothing recorded"
    assert calls <= allowed, f"{function_name} needs permissions its role lacks: {sorted(calls - allowed)}"


# -- the API --------------------------------------------------------------------------------


@pytest.fixture
def api(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The app's services replaced by the world's (moto DynamoDB, fakeredis)."""
    subscriptions = SubscriptionService(world.catalog, world.subscriptions, check_webhook=lambda url: None)
    monkeypatch.setattr(services, "enrollment", lambda: world.enrollment)
    monkeypatch.setattr(services, "registrar", lambda: world.registrar_service)
    monkeypatch.setattr(services, "auth", lambda: world.auth)
    monkeypatch.setattr(services, "subscriptions", lambda: subscriptions)
    monkeypatch.setattr(
        services, "notifications", lambda: NotificationHistory(DeliveryHistory(world.settings, world.client))
    )
    return world


def test_public_routes_answer_without_an_authorizer_context(api: World) -> None:
    status, body, headers = call(
        rest_event(
            "POST",
            "/auth/register",
            body={"username": "ada", "password": "correct horse battery", "email": "ada@example.edu"},
        )
    )
    assert status == 201, body
    assert body["username"] == "ada"
    assert headers["Content-Type"] == "application/json"

    status, body, _ = call(
        rest_event("POST", "/auth/login", body={"username": "ada", "password": "correct horse battery"})
    )
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["access_token"]


def test_a_token_goes_through_the_authorizer_function_then_the_api(api: World) -> None:
    section = api.section(max_enroll=2)
    student = api.student()
    token = api.tokens.issue(student)
    path = f"/students/{student.user_id}/classes/{section.class_id}/enroll"

    answer = security.jwt_auth(token_event(f"Bearer {token}", "POST", path), LambdaContext())

    assert answer["principalId"] == str(student.user_id)
    statement = answer["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert answer["context"] == {"user_id": str(student.user_id), "role": "student", "username": student.username}

    status, body, _ = call(
        rest_event(
            "POST",
            "/students/{sid}/classes/{cid}/enroll",
            {"sid": str(student.user_id), "cid": str(section.class_id)},
            authorizer=authorizer_context(answer),
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    assert status == 201, body
    assert api.state(section.class_id, student.user_id).value == "enrolled"


def test_a_bad_token_reaches_the_route_as_a_401_in_the_error_shape(api: World) -> None:
    answer = security.jwt_auth(token_event("Bearer not-a-jwt", "GET", "/students/5/classes"), LambdaContext())
    assert answer["principalId"] == "anonymous"

    status, body, headers = call(
        rest_event("GET", "/students/{sid}/classes", {"sid": "5"}, authorizer=authorizer_context(answer))
    )
    assert status == 401
    assert set(body) == {"message", "code", "details"}
    assert headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_role_and_bad_input_answer_in_the_error_shape(api: World) -> None:
    student = api.student()
    status, body, _ = call(
        rest_event(
            "POST",
            "/registrar/classes",
            body={
                "department": "CPSC",
                "course_code": "101",
                "section": 1,
                "name": "X",
                "instructor_id": 1,
                "max_enroll": 5,
            },
            authorizer=context_of(student),
        )
    )
    assert status == 403 and body["code"]
    status, body, _ = call(rest_event("POST", "/auth/login", body="{not json"))
    assert status == 400 and body["code"] == "malformed_json"
    status, body, _ = call(rest_event("GET", "/students/{sid}/classes", {"sid": "abc"}, authorizer=context_of(student)))
    assert status == 400 and body["code"] == "invalid_id"


def test_query_string_parameters_reach_the_route(api: World) -> None:
    section = api.section(max_enroll=1)
    student = api.student()
    status, body, _ = call(
        rest_event(
            "POST",
            "/students/{sid}/subscribe/{cid}",
            {"sid": str(student.user_id), "cid": str(section.class_id)},
            authorizer=context_of(student),
            query={"email": "student@example.edu"},
        )
    )
    assert status in (200, 201), body
    assert json.dumps(body).count("student@example.edu") == 1


# Routes that never reach DynamoDB, or only through services this test cannot stand in for
# (/health probes the real Redis and broker; its DescribeTable is granted all the same).
OUTSIDE_THE_TOUR = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/{asset}"),
    ("GET", "/health"),
}


def test_the_api_calls_only_what_its_role_allows(api: World, recorder: CallRecorder) -> None:
    """A tour of every route; each DynamoDB request the API makes must be permitted to its
    role. A new route fails this test until the tour takes it (and its permissions are
    checked)."""
    registrar = context_of(api.registrar)
    instructor, other_instructor = api.instructor(), api.instructor()
    first, second, third = api.student(), api.student(), api.student()
    recorder.calls.clear()  # only what the API does, not the setup above
    visited: set[tuple[str, str]] = set()

    def ok(method: str, resource: str, who: dict | None, expected: int = 200, **params: Any) -> Any:
        body = params.pop("body", None)
        query = params.pop("query", None)
        path = {name: str(value) for name, value in params.items()}
        status, answer, _ = call(rest_event(method, resource, path or None, body=body, authorizer=who, query=query))
        assert status == expected, (method, resource, answer)
        visited.add((method, resource))
        return answer

    ok("POST", "/auth/register", None, 201, body={"username": "grace", "password": "a long password"})
    ok("POST", "/auth/login", None, body={"username": "grace", "password": "a long password"})
    created = ok(
        "POST",
        "/registrar/users",
        registrar,
        201,
        body={"username": "turing", "password": "another long one", "role": "instructor"},
    )
    course = {"department": "CPSC", "course_code": "449", "section": 1, "name": "Web Back-End Engineering"}
    body = {**course, "instructor_id": instructor.user_id, "max_enroll": 1}
    cid = ok("POST", "/registrar/classes", registrar, 201, body=body)["class_id"]
    ok("PUT", "/registrar/classes/{cid}/instructors/{iid}", registrar, cid=cid, iid=other_instructor.user_id)
    teacher = context_of(other_instructor)

    for student, expected in ((first, 201), (second, 202), (third, 202)):
        ok("POST", "/students/{sid}/classes/{cid}/enroll", context_of(student), expected, sid=student.user_id, cid=cid)
    subscription = {"email": "third@example.edu", "events": ["enrollment.promoted", "waitlist.position_changed"]}
    ok("POST", "/students/{sid}/subscribe/{cid}", context_of(third), 201, sid=third.user_id, cid=cid, body=subscription)
    ok("GET", "/students/{sid}/subscriptions", context_of(third), sid=third.user_id)
    ok("GET", "/classes", context_of(first))
    ok("GET", "/students/{sid}/classes", context_of(first), sid=first.user_id)
    ok("GET", "/waitlist/students/{sid}", context_of(third), sid=third.user_id)
    ok("GET", "/waitlist/students/{sid}/classes/{cid}", context_of(third), sid=third.user_id, cid=cid)
    ok("GET", "/instructors/{iid}/classes/{cid}/enrollment", teacher, iid=other_instructor.user_id, cid=cid)
    ok("GET", "/instructors/{iid}/classes/{cid}/waitlist", teacher, iid=other_instructor.user_id, cid=cid)
    # The student ahead leaves: a position change for the subscriber (an outbox batch write).
    ok("DELETE", "/waitlist/students/{sid}/classes/{cid}", context_of(second), sid=second.user_id, cid=cid)
    ok("PUT", "/students/{sid}/classes/{cid}/drop", context_of(first), sid=first.user_id, cid=cid)
    ok(
        "POST",
        "/instructors/{iid}/classes/{cid}/students/{sid}/drop",
        teacher,
        iid=other_instructor.user_id,
        cid=cid,
        sid=third.user_id,
    )
    ok("GET", "/instructors/{iid}/classes/{cid}/dropped", teacher, iid=other_instructor.user_id, cid=cid)
    ok("GET", "/students/{sid}/notifications", context_of(third), sid=third.user_id)
    ok("DELETE", "/students/{sid}/unsubscribe/{cid}", context_of(third), sid=third.user_id, cid=cid)
    ok("PATCH", "/registrar/classes/{cid}", registrar, cid=cid, body={"max_enroll": 3})
    ok("PUT", "/registrar/automatic-enrollment/freeze", registrar, body={"frozen": True})
    ok("DELETE", "/registrar/classes/{cid}", registrar, cid=cid)
    if "/registrar/users/{uid}" in application.app.routes:
        ok("DELETE", "/registrar/users/{uid}", registrar, uid=created["user_id"])

    assert_allowed("api_handler", recorder.calls)
    kinds = {item["type"] for item in api.outbox()}
    assert kinds == {"enrollment.promoted", "waitlist.position_changed"}, "the tour wrote both kinds of events"
    routes = {(method, path) for path, methods in application.app.routes.items() for method in methods}
    assert routes - OUTSIDE_THE_TOUR <= visited, (
        f"routes outside the tour: {sorted(routes - OUTSIDE_THE_TOUR - visited)}"
    )


# -- DynamoDB stream records for the relay ----------------------------------------------------


def new_image(event_id: str, student_id: int = 79, class_id: int = 4, pending: bool = True) -> dict:
    """An outbox item in DynamoDB's typed JSON, as it appears in a stream record."""
    body = {
        "type": "enrollment.promoted",
        "event_id": event_id,
        "occurred_at": "2026-12-03T18:00:00Z",
        "student_id": student_id,
        "class_id": class_id,
        "class_name": "Introduction to Computer Science",
        "section": 1,
        "message": "You have been enrolled in Introduction to Computer Science",
        "email": "student@example.edu",
    }
    image = {
        "event_id": {"S": event_id},
        "type": {"S": "enrollment.promoted"},
        "student_id": {"N": str(student_id)},
        "class_id": {"N": str(class_id)},
        "occurred_at": {"S": "2026-12-03T18:00:00Z"},
        "created_at": {"S": "2026-12-03T18:00:00.000123Z"},
        "body": {"S": json.dumps(body, separators=(",", ":"))},
        "channels": {"L": [{"S": "email"}]},
    }
    if pending:
        image["unpublished"] = {"S": "pending"}
    return image


def stream_record(name: str, image: dict | None, sequence: int, old_image: dict | None = None) -> dict:
    """One record of a Lambda DynamoDB stream event (view type NEW_IMAGE)."""
    key = (image or old_image or {})["event_id"]
    data: dict[str, Any] = {
        "ApproximateCreationDateTime": 1796320800.0,
        "Keys": {"event_id": key},
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": len(json.dumps(image or {})),
        "StreamViewType": "NEW_IMAGE",
    }
    if image is not None:
        data["NewImage"] = image
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": data,
        "eventSourceARN": STREAM_ARN,
    }


class FakeOutbox:
    def __init__(self, published: set[str] = frozenset()) -> None:
        self.published = set(published)
        self.asked: list[list[str]] = []
        self.marked: list[str] = []

    def still_unpublished(self, event_ids: list[str]) -> set[str]:
        self.asked.append(list(event_ids))
        return set(event_ids) - self.published

    def mark_published(self, images: list[dict]) -> None:
        event_ids = [image["event_id"]["S"] for image in images]
        self.marked.extend(event_ids)
        self.published |= set(event_ids)


class FakePublisher:
    def __init__(self, refuse: set[str] = frozenset()) -> None:
        self.refuse = set(refuse)
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, messages: list) -> list[str]:
        self.sent.extend((m.event_id, m.body) for m in messages)
        return [m.event_id for m in messages if m.event_id not in self.refuse]


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeOutbox, FakePublisher]:
    outbox, publisher = FakeOutbox(), FakePublisher()
    monkeypatch.setattr(relay, "_outbox", lambda: outbox)
    monkeypatch.setattr(relay, "_publisher", lambda: publisher)
    return outbox, publisher


def run_relay(records: list[dict]) -> None:
    application.relay_outbox({"Records": records}, LambdaContext(function_name="titan-enrollment-prod-relay_outbox"))


def test_an_insert_is_published_with_its_body_and_marked(broker: tuple[FakeOutbox, FakePublisher]) -> None:
    outbox, publisher = broker
    image = new_image("evt-1")
    run_relay([stream_record("INSERT", image, 1)])
    assert publisher.sent == [("evt-1", image["body"]["S"].encode())]
    assert json.loads(publisher.sent[0][1])["type"] == "enrollment.promoted"
    assert outbox.marked == ["evt-1"]


def test_a_modify_still_pending_is_published_and_one_already_marked_is_not(
    broker: tuple[FakeOutbox, FakePublisher],
) -> None:
    outbox, publisher = broker
    run_relay(
        [
            # A history update before the relay ran: still unpublished.
            stream_record("MODIFY", new_image("evt-2"), 2),
            # The relay's own mark: `unpublished` removed, nothing to do.
            stream_record("MODIFY", new_image("evt-3", pending=False), 3),
        ]
    )
    assert [event_id for event_id, _ in publisher.sent] == ["evt-2"]
    assert outbox.asked == [["evt-2"]]


def test_a_mixed_batch_publishes_each_pending_event_once_in_order(broker: tuple[FakeOutbox, FakePublisher]) -> None:
    outbox, publisher = broker
    records = [
        stream_record("INSERT", new_image("evt-a", student_id=1), 10),
        stream_record("INSERT", new_image("evt-b", student_id=2), 11),
        stream_record("MODIFY", new_image("evt-a", student_id=1), 12),  # same event again
        stream_record("MODIFY", new_image("evt-c", pending=False), 13),
        stream_record("REMOVE", None, 14, old_image=new_image("evt-d")),
        stream_record("INSERT", new_image("evt-e", student_id=3), 15),
    ]
    run_relay(records)
    assert [event_id for event_id, _ in publisher.sent] == ["evt-a", "evt-b", "evt-e"]
    assert outbox.marked == ["evt-a", "evt-b", "evt-e"]


def test_events_already_published_by_an_earlier_attempt_are_skipped(broker: tuple[FakeOutbox, FakePublisher]) -> None:
    outbox, publisher = broker
    outbox.published.add("evt-x")
    run_relay([stream_record("INSERT", new_image("evt-x"), 20), stream_record("INSERT", new_image("evt-y"), 21)])
    assert [event_id for event_id, _ in publisher.sent] == ["evt-y"]


def test_a_batch_without_pending_events_touches_nothing(broker: tuple[FakeOutbox, FakePublisher]) -> None:
    outbox, publisher = broker
    run_relay(
        [
            stream_record("MODIFY", new_image("evt-z", pending=False), 30),
            stream_record("REMOVE", None, 31, new_image("evt-z")),
        ]
    )
    assert publisher.sent == [] and outbox.asked == [] and outbox.marked == []


def test_unconfirmed_events_fail_the_batch_so_lambda_retries_it(
    broker: tuple[FakeOutbox, FakePublisher],
) -> None:
    outbox, publisher = broker
    publisher.refuse.add("evt-2")
    records = [stream_record("INSERT", new_image(f"evt-{i}"), 40 + i) for i in range(1, 4)]
    with pytest.raises(RelayIncomplete):
        run_relay(records)
    assert outbox.marked == ["evt-1", "evt-3"]

    publisher.refuse.clear()
    run_relay(copy.deepcopy(records))  # Lambda's retry of the same batch
    assert [event_id for event_id, _ in publisher.sent][-1:] == ["evt-2"]
    assert set(outbox.marked) == {"evt-1", "evt-2", "evt-3"}


def lambda_records(streams: Any, table_arn_stream: str) -> list[dict]:
    """Every record of a moto stream, shaped as Lambda delivers them."""
    records = []
    for shard in streams.describe_stream(StreamArn=table_arn_stream)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=table_arn_stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            data = dict(record["dynamodb"])
            created = data.get("ApproximateCreationDateTime")
            if created is not None and hasattr(created, "timestamp"):
                data["ApproximateCreationDateTime"] = created.timestamp()
            records.append({**record, "dynamodb": data, "eventSourceARN": table_arn_stream})
    return records


def test_records_from_the_outbox_stream_of_a_real_promotion(
    world: World, recorder: CallRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    section, enrolled, waiting = world.full_section(max_enroll=1, waiting=2)
    world.subscribe(waiting[0].user_id, section.class_id, email="first@example.edu")
    world.enrollment.drop(enrolled[0], enrolled[0].user_id, section.class_id)
    assert world.state(section.class_id, waiting[0].user_id).value == "enrolled"

    stream_arn = world.client.describe_table(TableName=world.settings.outbox_table)["Table"]["LatestStreamArn"]
    streams = boto3.session.Session().client("dynamodbstreams", region_name="us-east-1", endpoint_url=_STREAMS)
    records = lambda_records(streams, stream_arn)
    inserts = [r for r in records if r["eventName"] == "INSERT"]
    assert inserts and all("unpublished" in r["dynamodb"]["NewImage"] for r in inserts)

    publisher = FakePublisher()
    monkeypatch.setattr(relay, "_outbox", lambda: DynamoOutbox(world.settings, world.client))
    monkeypatch.setattr(relay, "_publisher", lambda: publisher)
    recorder.calls.clear()
    run_relay(records)
    relay_calls = set(recorder.calls)

    published = {event_id for event_id, _ in publisher.sent}
    assert published == {item["event_id"] for item in world.outbox()}
    assert all("unpublished" not in item for item in world.outbox())
    assert any(json.loads(body)["student_id"] == waiting[0].user_id for _, body in publisher.sent)
    assert_allowed("relay_outbox", relay_calls)

    # The relay's marks come back on the stream as MODIFY records; they publish nothing.
    again = [r for r in lambda_records(streams, stream_arn) if r["eventName"] == "MODIFY"]
    assert again
    run_relay(again)
    assert len(publisher.sent) == len(published)


# -- Amazon MQ (aws:rmq) batches for the delivery functions ---------------------------------

MQ_BROKER_ARN = f"arn:aws:mq:us-east-1:{ACCOUNT}:broker:titan-prod:b-9bcfa592-423a-4942-879d-eb284b418fc8"
PROMOTED_TO_4 = "You have been enrolled in Introduction to Computer Science"
SECOND_FOR_4 = "You are now number 1 on the waitlist for Introduction to Computer Science"
PROMOTED_TO_8 = "You have been enrolled in Computer Organization and Assembly Language"

# Three events of the relay on notifications.email, as the event source mapping passes them:
# every property present (most null), string headers as byte arrays (x-message-id), numbers
# as numbers (x-attempt), each body base64. The second came back from a delay queue for its
# second attempt and was redelivered by the broker; its id is only in the header.
# fmt: off
EMAIL_EVENT = {
    "eventSource": "aws:rmq",
    "eventSourceArn": MQ_BROKER_ARN,
    "rmqMessagesByQueue": {
        "notifications.email::/": [
            {
                "basicProperties": {
                    "contentType": "application/json",
                    "contentEncoding": None,
                    "headers": {
                        # "73140e9b778a48c0b04ccb79e64dd31b"
                        "x-message-id": {"bytes": [
                            55, 51, 49, 52, 48, 101, 57, 98, 55, 55, 56, 97, 52, 56, 99, 48,
                            98, 48, 52, 99, 99, 98, 55, 57, 101, 54, 52, 100, 100, 51, 49, 98,
                        ]},
                    },
                    "deliveryMode": 2,
                    "priority": None,
                    "correlationId": None,
                    "replyTo": None,
                    "expiration": None,
                    "messageId": "73140e9b778a48c0b04ccb79e64dd31b",
                    "timestamp": None,
                    "type": None,
                    "userId": None,
                    "appId": None,
                    "clusterId": None,
                    "bodySize": 324,
                },
                "redelivered": False,
                # {"type":"enrollment.promoted","event_id":"73140e9b...","student_id":79,"class_id":4,
                #  ..., "email":"student79@example.edu","webhook_url":null}
                "data": (
                    "eyJ0eXBlIjoiZW5yb2xsbWVudC5wcm9tb3RlZCIsImV2ZW50X2lkIjoiNzMxNDBlOWI3NzhhNDhjMGIwNGNjYjc5ZTY0ZGQz"
                    "MWIiLCJvY2N1cnJlZF9hdCI6IjIwMjYtMTItMDNUMTg6MDA6MDBaIiwic3R1ZGVudF9pZCI6NzksImNsYXNzX2lkIjo0LCJj"
                    "bGFzc19uYW1lIjoiSW50cm9kdWN0aW9uIHRvIENvbXB1dGVyIFNjaWVuY2UiLCJzZWN0aW9uIjoxLCJtZXNzYWdlIjoiWW91"
                    "IGhhdmUgYmVlbiBlbnJvbGxlZCBpbiBJbnRyb2R1Y3Rpb24gdG8gQ29tcHV0ZXIgU2NpZW5jZSIsImVtYWlsIjoic3R1ZGVu"
                    "dDc5QGV4YW1wbGUuZWR1Iiwid2ViaG9va191cmwiOm51bGx9"
                ),
            },
            {
                "basicProperties": {
                    "contentType": "application/json",
                    "contentEncoding": None,
                    "headers": {
                        # "6fe3e84870d34886adb93329140ac9d2"
                        "x-message-id": {"bytes": [
                            54, 102, 101, 51, 101, 56, 52, 56, 55, 48, 100, 51, 52, 56, 56, 54,
                            97, 100, 98, 57, 51, 51, 50, 57, 49, 52, 48, 97, 99, 57, 100, 50,
                        ]},
                        "x-attempt": 2,
                        "x-last-error": {"bytes": [83, 77, 84, 80, 32, 52, 53, 49]},  # "SMTP 451"
                    },
                    "deliveryMode": 2,
                    "priority": None,
                    "correlationId": None,
                    "replyTo": None,
                    "expiration": None,
                    "messageId": None,
                    "timestamp": None,
                    "type": None,
                    "userId": None,
                    "appId": None,
                    "clusterId": None,
                    "bodySize": 367,
                },
                "redelivered": True,
                # {"type":"waitlist.position_changed","event_id":"6fe3e848...","student_id":80,"class_id":4,
                #  ..., "email":"student80@example.edu","webhook_url":null,"waitlist_position":1}
                "data": (
                    "eyJ0eXBlIjoid2FpdGxpc3QucG9zaXRpb25fY2hhbmdlZCIsImV2ZW50X2lkIjoiNmZlM2U4NDg3MGQzNDg4NmFkYjkzMzI5"
                    "MTQwYWM5ZDIiLCJvY2N1cnJlZF9hdCI6IjIwMjYtMTItMDNUMTg6MDA6MDBaIiwic3R1ZGVudF9pZCI6ODAsImNsYXNzX2lk"
                    "Ijo0LCJjbGFzc19uYW1lIjoiSW50cm9kdWN0aW9uIHRvIENvbXB1dGVyIFNjaWVuY2UiLCJzZWN0aW9uIjoxLCJtZXNzYWdl"
                    "IjoiWW91IGFyZSBub3cgbnVtYmVyIDEgb24gdGhlIHdhaXRsaXN0IGZvciBJbnRyb2R1Y3Rpb24gdG8gQ29tcHV0ZXIgU2Np"
                    "ZW5jZSIsImVtYWlsIjoic3R1ZGVudDgwQGV4YW1wbGUuZWR1Iiwid2ViaG9va191cmwiOm51bGwsIndhaXRsaXN0X3Bvc2l0"
                    "aW9uIjoxfQ=="
                ),
            },
            {
                "basicProperties": {
                    "contentType": "application/json",
                    "contentEncoding": None,
                    "headers": {
                        # "c3839b20411a40cf9603cd16292aadc5"
                        "x-message-id": {"bytes": [
                            99, 51, 56, 51, 57, 98, 50, 48, 52, 49, 49, 97, 52, 48, 99, 102,
                            57, 54, 48, 51, 99, 100, 49, 54, 50, 57, 50, 97, 97, 100, 99, 53,
                        ]},
                    },
                    "deliveryMode": 2,
                    "priority": None,
                    "correlationId": None,
                    "replyTo": None,
                    "expiration": None,
                    "messageId": "c3839b20411a40cf9603cd16292aadc5",
                    "timestamp": None,
                    "type": None,
                    "userId": None,
                    "appId": None,
                    "clusterId": None,
                    "bodySize": 344,
                },
                "redelivered": False,
                # {"type":"enrollment.promoted","event_id":"c3839b20...","student_id":1,"class_id":8,
                #  ..., "email":"student1@example.edu","webhook_url":null}
                "data": (
                    "eyJ0eXBlIjoiZW5yb2xsbWVudC5wcm9tb3RlZCIsImV2ZW50X2lkIjoiYzM4MzliMjA0MTFhNDBjZjk2MDNjZDE2MjkyYWFk"
                    "YzUiLCJvY2N1cnJlZF9hdCI6IjIwMjYtMTItMDNUMTg6MDA6MDBaIiwic3R1ZGVudF9pZCI6MSwiY2xhc3NfaWQiOjgsImNs"
                    "YXNzX25hbWUiOiJDb21wdXRlciBPcmdhbml6YXRpb24gYW5kIEFzc2VtYmx5IExhbmd1YWdlIiwic2VjdGlvbiI6MSwibWVz"
                    "c2FnZSI6IllvdSBoYXZlIGJlZW4gZW5yb2xsZWQgaW4gQ29tcHV0ZXIgT3JnYW5pemF0aW9uIGFuZCBBc3NlbWJseSBMYW5n"
                    "dWFnZSIsImVtYWlsIjoic3R1ZGVudDFAZXhhbXBsZS5lZHUiLCJ3ZWJob29rX3VybCI6bnVsbH0="
                ),
            },
        ],
    },
}


def _compact(body: dict) -> bytes:
    """An event body as the relay publishes it."""
    return json.dumps(body, separators=(",", ":")).encode()


def webhook_event(hook: Callable[[int], str]) -> dict:
    """The same kind of batch on notifications.webhook. Only `data` and `bodySize` are
    computed here: each body carries its subscriber's URL, and that holds the port of the
    receiver this test started."""
    promoted_79 = {
        "type": "enrollment.promoted", "event_id": "eacc52fd0a9f449bb3908047da1231c3",
        "occurred_at": "2026-12-03T18:00:00Z", "student_id": 79, "class_id": 4,
        "class_name": "Introduction to Computer Science", "section": 1, "message": PROMOTED_TO_4,
        "email": None, "webhook_url": hook(79),
    }
    second_80 = {
        "type": "waitlist.position_changed", "event_id": "0bfb2eb65b4e440e97267826f46eaae8",
        "occurred_at": "2026-12-03T18:00:00Z", "student_id": 80, "class_id": 4,
        "class_name": "Introduction to Computer Science", "section": 1, "message": SECOND_FOR_4,
        "email": None, "webhook_url": hook(80), "waitlist_position": 1,
    }
    promoted_1 = {
        "type": "enrollment.promoted", "event_id": "db9ebec60a224012b67ecfe834059873",
        "occurred_at": "2026-12-03T18:00:00Z", "student_id": 1, "class_id": 8,
        "class_name": "Computer Organization and Assembly Language", "section": 1, "message": PROMOTED_TO_8,
        "email": None, "webhook_url": hook(1),
    }
    return {
        "eventSource": "aws:rmq",
        "eventSourceArn": MQ_BROKER_ARN,
        "rmqMessagesByQueue": {
            "notifications.webhook::/": [
                {
                    "basicProperties": {
                        "contentType": "application/json",
                        "contentEncoding": None,
                        "headers": {
                            # "eacc52fd0a9f449bb3908047da1231c3"
                            "x-message-id": {"bytes": [
                                101, 97, 99, 99, 53, 50, 102, 100, 48, 97, 57, 102, 52, 52, 57, 98,
                                98, 51, 57, 48, 56, 48, 52, 55, 100, 97, 49, 50, 51, 49, 99, 51,
                            ]},
                        },
                        "deliveryMode": 2,
                        "priority": None,
                        "correlationId": None,
                        "replyTo": None,
                        "expiration": None,
                        "messageId": "eacc52fd0a9f449bb3908047da1231c3",
                        "timestamp": None,
                        "type": None,
                        "userId": None,
                        "appId": None,
                        "clusterId": None,
                        "bodySize": len(_compact(promoted_79)),
                    },
                    "redelivered": False,
                    "data": base64.b64encode(_compact(promoted_79)).decode(),
                },
                {
                    "basicProperties": {
                        "contentType": "application/json",
                        "contentEncoding": None,
                        "headers": {
                            # "0bfb2eb65b4e440e97267826f46eaae8"
                            "x-message-id": {"bytes": [
                                48, 98, 102, 98, 50, 101, 98, 54, 53, 98, 52, 101, 52, 52, 48, 101,
                                57, 55, 50, 54, 55, 56, 50, 54, 102, 52, 54, 101, 97, 97, 101, 56,
                            ]},
                            "x-attempt": 2,
                            "x-last-error": {"bytes": [72, 84, 84, 80, 32, 53, 48, 51]},  # "HTTP 503"
                        },
                        "deliveryMode": 2,
                        "priority": None,
                        "correlationId": None,
                        "replyTo": None,
                        "expiration": None,
                        "messageId": None,
                        "timestamp": None,
                        "type": None,
                        "userId": None,
                        "appId": None,
                        "clusterId": None,
                        "bodySize": len(_compact(second_80)),
                    },
                    "redelivered": True,
                    "data": base64.b64encode(_compact(second_80)).decode(),
                },
                {
                    "basicProperties": {
                        "contentType": "application/json",
                        "contentEncoding": None,
                        "headers": {
                            # "db9ebec60a224012b67ecfe834059873"
                            "x-message-id": {"bytes": [
                                100, 98, 57, 101, 98, 101, 99, 54, 48, 97, 50, 50, 52, 48, 49, 50,
                                98, 54, 55, 101, 99, 102, 101, 56, 51, 52, 48, 53, 57, 56, 55, 51,
                            ]},
                        },
                        "deliveryMode": 2,
                        "priority": None,
                        "correlationId": None,
                        "replyTo": None,
                        "expiration": None,
                        "messageId": "db9ebec60a224012b67ecfe834059873",
                        "timestamp": None,
                        "type": None,
                        "userId": None,
                        "appId": None,
                        "clusterId": None,
                        "bodySize": len(_compact(promoted_1)),
                    },
                    "redelivered": False,
                    "data": base64.b64encode(_compact(promoted_1)).decode(),
                },
            ],
        },
    }
# fmt: on


def sent_bodies(event: dict) -> list[dict]:
    """The event bodies a batch carries, in order (what the handler should act on)."""
    return [
        json.loads(base64.b64decode(entry["data"]))
        for entries in event["rmqMessagesByQueue"].values()
        for entry in entries
    ]


def redelivered(event: dict) -> dict:
    """The same batch given back by the broker, as after a handler that died before the ack."""
    again = copy.deepcopy(event)
    for entries in again["rmqMessagesByQueue"].values():
        for entry in entries:
            entry["redelivered"] = True
    return again


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.start()
    yield box
    box.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def delivery_functions(world: World, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRequeue]:
    """The delivery functions wired as deployed (chalicelib.handlers.wiring), on the world's
    fakeredis and moto tables, sending to the mailbox's SMTP port; what they would send
    back to the broker is recorded instead."""
    requeued = FakeRequeue()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(mailbox.port))
    monkeypatch.setattr(redis_client, "connect", lambda url=None: world.redis)
    monkeypatch.setattr(requeue, "BrokerRequeue", lambda amqp_url: requeued)
    monkeypatch.setattr(outbox, "DeliveryHistory", lambda settings: DeliveryHistory(settings, world.client))
    built = (get_settings, wiring.subscriptions, email_handler.deliverer, webhook_handler.deliverer)
    for cached in built:
        cached.cache_clear()
    yield requeued
    if webhook_handler.deliverer.cache_info().currsize:
        webhook_handler.deliverer().channel.client.close()
    for cached in built:
        cached.cache_clear()


def recorded(world: World, channel: str) -> dict[str, tuple[str, int, str | None]]:
    """The deliveries table: (status, attempts, last error) by event id, for one channel."""
    rows = [deserialize(i) for i in world.client.scan(TableName=world.settings.deliveries_table)["Items"]]
    return {
        r["event_id"]: (r["status"], int(r["attempts"]), r.get("last_error")) for r in rows if r["channel"] == channel
    }


def test_a_lambda_rmq_batch_reaches_the_webhook_receivers_once_and_signed(
    world: World, delivery_functions: FakeRequeue, webhook_receiver: WebhookReceiver
) -> None:
    def hook(student_id: int) -> str:
        return webhook_receiver.url(f"/titan/{student_id}")

    secrets = {}
    for student_id, class_id in ((79, 4), (80, 4), (1, 8)):
        secrets[student_id] = new_secret()
        subscription = Subscription(
            student_id,
            class_id,
            None,
            hook(student_id),
            events.EVENT_TYPES,
            "2026-12-01T00:00:00Z",
            secrets[student_id],
        )
        assert world.subscriptions.add(subscription)
    event = webhook_event(hook)
    sent = {body["student_id"]: body for body in sent_bodies(event)}
    context = LambdaContext(function_name="titan-enrollment-prod-deliver_webhook")

    application.deliver_webhook(copy.deepcopy(event), context)

    hits = webhook_receiver.hits()
    assert sorted(hit.path for hit in hits) == ["/titan/1", "/titan/79", "/titan/80"]
    for hit in hits:
        student_id = int(hit.path.rsplit("/", 1)[1])
        assert hit.status == 200
        assert hit.headers["content-type"] == "application/json"
        assert Webhook(secrets[student_id]).verify(hit.body, hit.headers) == {
            k: v for k, v in sent[student_id].items() if k not in ("email", "webhook_url")
        }
        assert hit.headers["webhook-id"] == sent[student_id]["event_id"]
    expected = {
        "eacc52fd0a9f449bb3908047da1231c3": (delivery.DELIVERED, 1, None),
        "0bfb2eb65b4e440e97267826f46eaae8": (delivery.DELIVERED, 2, None),  # its x-attempt header
        "db9ebec60a224012b67ecfe834059873": (delivery.DELIVERED, 1, None),
    }
    assert recorded(world, "webhook") == expected
    assert delivery_functions.retries == delivery_functions.dead == []

    # Lambda invoked again with the same batch, then with the broker's redelivery of it.
    application.deliver_webhook(copy.deepcopy(event), context)
    application.deliver_webhook(redelivered(event), context)

    assert len(webhook_receiver.hits()) == 3
    assert recorded(world, "webhook") == expected
    assert delivery_functions.retries == delivery_functions.dead == []


def test_a_lambda_rmq_batch_reaches_the_smtp_server_once(
    world: World, delivery_functions: FakeRequeue, mailbox: Mailbox
) -> None:
    context = LambdaContext(function_name="titan-enrollment-prod-deliver_email")

    application.deliver_email(copy.deepcopy(EMAIL_EVENT), context)

    mails = {mail.recipients: mail for mail in mailbox.mails}
    assert len(mailbox.mails) == len(mails) == 3
    # A Subject longer than a line is folded right after "Subject:", and the email package
    # reads it back with the fold's space in front: compared unfolded, as a mail client shows it.
    assert {
        recipients: (" ".join(str(mail.message["Subject"]).split()), str(mail.message["Message-ID"]), mail.body)
        for recipients, mail in mails.items()
    } == {
        ("student79@example.edu",): (
            "Enrollment Notification for Introduction to Computer Science",
            "<73140e9b778a48c0b04ccb79e64dd31b@titan-enrollment>",
            PROMOTED_TO_4,
        ),
        ("student80@example.edu",): (
            "Enrollment Notification for Introduction to Computer Science",
            "<6fe3e84870d34886adb93329140ac9d2@titan-enrollment>",
            SECOND_FOR_4,
        ),
        ("student1@example.edu",): (
            "Enrollment Notification for Computer Organization and Assembly Language",
            "<c3839b20411a40cf9603cd16292aadc5@titan-enrollment>",
            PROMOTED_TO_8,
        ),
    }
    expected = {
        "73140e9b778a48c0b04ccb79e64dd31b": (delivery.DELIVERED, 1, None),
        "6fe3e84870d34886adb93329140ac9d2": (delivery.DELIVERED, 2, None),  # its x-attempt header
        "c3839b20411a40cf9603cd16292aadc5": (delivery.DELIVERED, 1, None),
    }
    assert recorded(world, "email") == expected
    assert delivery_functions.retries == delivery_functions.dead == []

    application.deliver_email(copy.deepcopy(EMAIL_EVENT), context)
    application.deliver_email(redelivered(EMAIL_EVENT), context)

    assert len(mailbox.mails) == 3
    assert recorded(world, "email") == expected
    assert delivery_functions.retries == delivery_functions.dead == []
