"""The transactional outbox and its relay (issue 3, items 5, 6 and 8) on real RabbitMQ
(the test virtual host), real Redis and the moto server of the stack."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest

from chalicelib import services
from chalicelib.adapters import topology
from chalicelib.adapters.dynamodb import deserialize, serialize
from chalicelib.adapters.outbox import DynamoOutbox
from chalicelib.adapters.publisher import ConfirmedPublisher
from chalicelib.config import get_settings
from chalicelib.domain import events
from chalicelib.domain.model import Identity, Role
from chalicelib.domain.registrar import NewClass
from chalicelib.handlers import relay
from consumers.relay import Poller, stream_record
from tests.support.broker import drain
from tests.support.tcp_proxy import TcpProxy

SINK = "http://127.0.0.1:9000/webhook"
EMAIL_QUEUE, WEBHOOK_QUEUE = topology.queue("email"), topology.queue("webhook")
REGISTRAR = Identity(551, Role.REGISTRAR, "registrar551")
PROMOTIONS = 100
PER_CLASS = 10
# Students on no sample waitlist; each waits for one class here.
WAITING_STUDENTS = range(300, 300 + PROMOTIONS)
# What the relay raises while RabbitMQ cannot be reached: a refused or lost connection,
# or a batch left unconfirmed.
BROKER_DOWN = (ConnectionError, relay.RelayIncomplete)


def amqp_url() -> str:
    return get_settings().amqp_url


def all_queues() -> list[str]:
    return topology.queues(get_settings().retry_delays)


def drain_all() -> None:
    for queue in all_queues():
        drain(amqp_url(), queue)


@pytest.fixture
def relay_stack(fresh) -> Iterator:
    """Sample data, empty queues before and after."""
    drain_all()
    yield fresh
    drain_all()


def outbox_items() -> list[dict]:
    """Every outbox row; a scan is fine in a test."""
    settings = get_settings()
    client = DynamoOutbox(settings).client
    items, kwargs = [], {"TableName": settings.outbox_table, "ConsistentRead": True}
    while True:
        response = client.scan(**kwargs)
        items.extend(deserialize(i) for i in response["Items"])
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def outbox_item(event_id: str) -> dict:
    settings = get_settings()
    response = DynamoOutbox(settings).client.get_item(
        TableName=settings.outbox_table, Key=serialize({"event_id": event_id}), ConsistentRead=True
    )
    return deserialize(response["Item"])


def run_poller(poller: Poller, limit: int = 50) -> int:
    """run_once until the outbox has nothing left; how many events it handed over."""
    handed = 0
    for _ in range(limit):
        batch = poller.run_once()
        if batch == 0:
            return handed
        handed += batch
    raise AssertionError("the relay never emptied the outbox")


def relay_through(publisher: ConfirmedPublisher, outbox: DynamoOutbox, batch_size: int = 500) -> int:
    """The relay handler over every unpublished event, as the poller feeds it, with `publisher`."""
    settings = get_settings()
    region = outbox.client.meta.region_name
    published = 0
    for _ in range(50):
        items = outbox.unpublished(batch_size)
        if not items:
            return published
        records = [stream_record(i, region, settings.outbox_stream_arn) for i in items]
        published += relay.relay(records, outbox, publisher).published
    raise AssertionError("the relay never emptied the outbox")


def contract_message(properties, body: bytes) -> dict:
    """The message's body, after checking the properties every event carries."""
    data = json.loads(body)
    assert properties.message_id == data["event_id"]
    assert properties.headers == {"x-message-id": data["event_id"]}
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == 2
    return data


def drop(stack, student_id: int, class_id: int) -> None:
    with stack.client(f"student{student_id}") as http:
        response = http.put(f"/students/{student_id}/classes/{class_id}/drop")
    assert response.status_code == 200, response.text


# -- a drop that promotes a subscribed student ------------------------------------------


def test_a_promotion_reaches_each_channel_queue_once_with_the_contract_body(relay_stack):
    with relay_stack.client("student79") as http:
        response = http.post("/students/79/subscribe/4", json={"email": "student79@example.edu", "webhook_url": SINK})
    assert response.status_code == 201, response.text

    drop(relay_stack, 55, 4)
    (item,) = outbox_items()
    assert item["unpublished"] == "pending"

    assert run_poller(Poller(batch_size=500, idle_seconds=0.1)) == 1

    (email,) = drain(amqp_url(), EMAIL_QUEUE)
    (webhook,) = drain(amqp_url(), WEBHOOK_QUEUE)
    body = contract_message(*email)
    assert contract_message(*webhook) == body
    assert webhook[0].message_id == email[0].message_id
    assert body == {
        "type": events.PROMOTED,
        "event_id": item["event_id"],
        "occurred_at": item["occurred_at"],
        "student_id": 79,
        "class_id": 4,
        "class_name": "Introduction to Computer Science",
        "section": 1,
        "message": "You have been enrolled in Introduction to Computer Science",
        "email": "student79@example.edu",
        "webhook_url": SINK,
    }
    assert body["occurred_at"].endswith("Z")
    published = outbox_item(item["event_id"])
    assert "unpublished" not in published
    assert published["published_at"]
    assert run_poller(Poller(batch_size=500, idle_seconds=0.1)) == 0
    assert drain(amqp_url(), EMAIL_QUEUE) == []


def test_an_unsubscribed_student_is_promoted_with_an_event_that_names_no_contact(relay_stack):
    drop(relay_stack, 55, 4)

    assert run_poller(Poller(batch_size=500, idle_seconds=0.1)) == 1

    (message,) = drain(amqp_url(), EMAIL_QUEUE)
    body = contract_message(*message)
    assert (body["student_id"], body["email"], body["webhook_url"]) == (79, None, None)


# -- the broker unreachable ------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A way to RabbitMQ that the test cuts at will; it starts down."""
    parsed = urlsplit(amqp_url())
    proxy = TcpProxy((parsed.hostname or "127.0.0.1", parsed.port or 5672))
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def proxied_publisher(proxy: TcpProxy) -> Iterator[ConfirmedPublisher]:
    parsed = urlsplit(amqp_url())
    credentials = f"{parsed.username or 'guest'}:{parsed.password or 'guest'}"
    url = urlunsplit((parsed.scheme, f"{credentials}@127.0.0.1:{proxy.port}", parsed.path, "", ""))
    publisher = ConfirmedPublisher(url)
    try:
        yield publisher
    finally:
        publisher.close()


def waiting_classes(count: int) -> list[int]:
    """`count` new classes of capacity 0, each with a waitlist of PER_CLASS students."""
    registrar, enrollment = services.registrar(), services.enrollment()
    class_ids = []
    students = iter(WAITING_STUDENTS)
    for n in range(count):
        section = registrar.create_class(
            REGISTRAR,
            NewClass("CPSC", "499", n + 1, f"Relay Test {n + 1}", instructor_id=501, max_enroll=0, class_id=7000 + n),
        )
        for _ in range(PER_CLASS):
            student_id = next(students)
            result = enrollment.enroll(Identity(student_id, Role.STUDENT), student_id, section.class_id)
            assert result.waitlist_position is not None
        class_ids.append(section.class_id)
    return class_ids


def promote_all(class_ids: list[int]) -> int:
    """Raise each class to PER_CLASS seats: every waiting student is promoted."""
    promoted = 0
    for class_id in class_ids:
        _, promotions = services.registrar().update_class(REGISTRAR, class_id, PER_CLASS, None)
        promoted += len(promotions)
    return promoted


def promoted_ids_on(queue: str) -> list[str]:
    ids = []
    for properties, body in drain(amqp_url(), queue):
        data = contract_message(properties, body)
        assert data["type"] == events.PROMOTED
        ids.append(data["event_id"])
    return ids


def assert_each_published_once(expected: set[str]) -> None:
    for queue in (EMAIL_QUEUE, WEBHOOK_QUEUE):
        ids = promoted_ids_on(queue)
        assert [i for i, n in Counter(ids).items() if n > 1] == [], f"published twice on {queue}"
        assert set(ids) == expected
        assert len(ids) == PROMOTIONS


def test_promotions_while_the_broker_is_unreachable_are_all_published_once_it_is_back(
    relay_stack, proxy, proxied_publisher
):
    outbox = DynamoOutbox(get_settings())
    classes = waiting_classes(PROMOTIONS // PER_CLASS)

    assert promote_all(classes) == PROMOTIONS
    for _ in range(3):
        with pytest.raises(BROKER_DOWN):
            relay_through(proxied_publisher, outbox)
    items = outbox_items()
    assert len(items) == PROMOTIONS
    assert all(item["unpublished"] == "pending" for item in items)
    assert drain(amqp_url(), EMAIL_QUEUE) == []

    proxy.start()
    assert relay_through(proxied_publisher, outbox) == PROMOTIONS

    assert_each_published_once({item["event_id"] for item in items})
    assert all("unpublished" not in item for item in outbox_items())
    assert relay_through(proxied_publisher, outbox) == 0


def test_a_connection_cut_between_batches_loses_nothing_and_publishes_nothing_twice(
    relay_stack, proxy, proxied_publisher
):
    outbox = DynamoOutbox(get_settings())
    classes = waiting_classes(PROMOTIONS // PER_CLASS)
    proxy.start()
    half = len(classes) // 2
    assert promote_all(classes[:half]) == PROMOTIONS // 2
    assert relay_through(proxied_publisher, outbox, batch_size=PER_CLASS) == PROMOTIONS // 2

    # The broker goes away under the publisher's open connection.
    proxy.stop()
    assert promote_all(classes[half:]) == PROMOTIONS // 2
    with pytest.raises(BROKER_DOWN):
        relay_through(proxied_publisher, outbox, batch_size=PER_CLASS)
    assert len(outbox.unpublished(PROMOTIONS)) == PROMOTIONS // 2

    proxy.start()
    assert relay_through(proxied_publisher, outbox, batch_size=PER_CLASS) == PROMOTIONS // 2

    assert proxy.connections == 2
    assert_each_published_once({item["event_id"] for item in outbox_items()})
    assert outbox.unpublished(PROMOTIONS) == []


def test_an_event_the_broker_cannot_route_stays_unpublished(relay_stack):
    drop(relay_stack, 55, 4)
    (item,) = outbox_items()
    unbound = "titan-test-unbound"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    connection.channel().exchange_declare(unbound, exchange_type="fanout", durable=False)
    publisher = ConfirmedPublisher(amqp_url(), exchange=unbound)
    try:
        # Confirmed but returned (mandatory, no queue bound): not delivered, so not published.
        with pytest.raises(relay.RelayIncomplete):
            relay_through(publisher, DynamoOutbox(get_settings()))
    finally:
        publisher.close()
        connection.channel().exchange_delete(unbound)
        connection.close()
    assert outbox_item(item["event_id"])["unpublished"] == "pending"

    assert run_poller(Poller(batch_size=500, idle_seconds=0.1)) == 1
    assert [p.message_id for p, _ in drain(amqp_url(), EMAIL_QUEUE)] == [item["event_id"]]


# -- the relay dies between publish and mark ---------------------------------------------


class Killed(RuntimeError):
    pass


def test_a_relay_killed_between_publish_and_mark_publishes_again_with_the_same_id(relay_stack, monkeypatch):
    drop(relay_stack, 55, 4)
    (item,) = outbox_items()
    poller = Poller(batch_size=500, idle_seconds=0.1)
    real_mark = DynamoOutbox.mark_published
    calls = []

    def mark_once_killed(self, images):
        calls.append([image["event_id"]["S"] for image in images])
        if len(calls) == 1:
            raise Killed("relay killed after the confirm, before marking")
        return real_mark(self, images)

    monkeypatch.setattr(DynamoOutbox, "mark_published", mark_once_killed)

    with pytest.raises(Killed):
        poller.run_once()
    (first,) = drain(amqp_url(), EMAIL_QUEUE)
    assert outbox_item(item["event_id"])["unpublished"] == "pending"

    assert poller.run_once() == 1
    (second,) = drain(amqp_url(), EMAIL_QUEUE)

    assert first[0].message_id == second[0].message_id == item["event_id"]
    assert second[0].headers == {"x-message-id": item["event_id"]}
    assert contract_message(*first) == contract_message(*second)
    assert calls == [[item["event_id"]], [item["event_id"]]]
    assert "unpublished" not in outbox_item(item["event_id"])

    assert poller.run_once() == 0
    assert drain(amqp_url(), EMAIL_QUEUE) == []
    assert len(drain(amqp_url(), WEBHOOK_QUEUE)) == 2
