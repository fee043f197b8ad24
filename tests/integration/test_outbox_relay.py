"""The transactional outbox and its relay (issue 3, items 5, 6 and 8) on real RabbitMQ
(the test virtual host), real Redis and the moto server of the stack."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from tests.support.broker import depth, drain
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


# -- the local driver's stream path: the relay stopped or the broker away ----------------

# Several stream batches per 100 promotions, so checkpoints move between them.
STREAM_BATCH = 25


@dataclass
class Tally:
    """What a poller did, call by call: the events of the INSERT records its handler was
    handed, what each successful call published, the calls that failed, and what the
    sweep of the `unpublished` index published (nothing, when the stream does the work)."""

    handed: list[str] = field(default_factory=list)
    published: list[int] = field(default_factory=list)
    failures: int = 0
    swept: int = 0


def stream_poller(batch_size: int = STREAM_BATCH) -> tuple[Poller, Tally]:
    """The local driver, its sweep due once an hour and every call it makes counted.

    A new poller still sweeps once, the first time the stream has nothing new: the tally
    shows whether that sweep found anything the stream had not given."""
    poller = Poller(batch_size=batch_size, idle_seconds=0.05, sweep_seconds=3600)
    tally = Tally()
    handler, sweep = poller.handler, poller.sweep

    def counted_handler(event: dict, context: object) -> dict:
        inserts = [r["dynamodb"]["NewImage"]["event_id"]["S"] for r in event["Records"] if r["eventName"] == "INSERT"]
        tally.handed.extend(inserts)
        try:
            result = handler(event, context)
        except Exception:
            tally.failures += 1
            raise
        tally.published.append(result["published"])
        return result

    def counted_sweep() -> int:
        published = sweep()
        tally.swept += published
        return published

    poller.handler, poller.sweep = counted_handler, counted_sweep
    return poller, tally


def poll_to_the_end(poller: Poller, seconds: float = 30) -> int:
    """run_once until a call reads nothing (the stream read to its end, nothing to sweep);
    how many events it published."""
    published, deadline = 0, time.monotonic() + seconds
    while True:
        assert time.monotonic() < deadline, "the relay kept reading"
        published += poller.run_once()
        if not poller.read:
            return published


def wait_until(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@contextlib.contextmanager
def running(poller: Poller) -> Iterator[Poller]:
    """`poller.run()` on a thread of its own, as `python -m consumers.relay` runs it, once it
    is idle: its first sweep done, so that sweep cannot catch a promotion made afterwards."""
    thread = threading.Thread(target=poller.run, name="relay-poller", daemon=True)
    thread.start()
    try:
        wait_until(lambda: poller.swept_at > float("-inf"), 10, "the relay never went idle")
        yield poller
    finally:
        poller.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the relay did not stop"


def unpublished_left() -> int:
    return len(DynamoOutbox(get_settings()).unpublished(PROMOTIONS))


def assert_all_marked_published(expected: set[str]) -> None:
    items = outbox_items()
    assert {item["event_id"] for item in items} == expected
    assert [item["event_id"] for item in items if "unpublished" in item or not item.get("published_at")] == []


def test_promotions_made_while_no_relay_runs_are_published_once_from_the_stream(relay_stack):
    assert promote_all(waiting_classes(PROMOTIONS // PER_CLASS)) == PROMOTIONS
    items = outbox_items()
    expected = {item["event_id"] for item in items}
    assert len(expected) == PROMOTIONS
    assert all(item["unpublished"] == "pending" and item["type"] == events.PROMOTED for item in items)

    poller, tally = stream_poller()
    assert poll_to_the_end(poller) == PROMOTIONS

    # The stream handed every event once, in batches, and the sweep found nothing left.
    assert sorted(tally.handed) == sorted(expected)
    assert (sum(tally.published), tally.failures, tally.swept) == (PROMOTIONS, 0, 0)
    assert len(tally.published) >= PROMOTIONS // STREAM_BATCH
    assert_all_marked_published(expected)
    assert_each_published_once(expected)

    # A relay started again resumes from the checkpoints: nothing is handed or sent again.
    restarted, again = stream_poller()
    assert poll_to_the_end(restarted) == 0
    assert (again.handed, sum(again.published), again.swept) == ([], 0, 0)
    assert [depth(amqp_url(), queue) for queue in (EMAIL_QUEUE, WEBHOOK_QUEUE)] == [0, 0]


def test_promotions_made_while_the_relay_is_stopped_midway_are_published_once_after_it_restarts(relay_stack):
    classes = waiting_classes(PROMOTIONS // PER_CLASS)
    half = len(classes) // 2
    first, first_tally = stream_poller()
    with running(first):
        assert promote_all(classes[:half]) == PROMOTIONS // 2
        wait_until(lambda: unpublished_left() == 0, 30, "the running relay left events unpublished")
    first_half = {item["event_id"] for item in outbox_items()}

    assert promote_all(classes[half:]) == PROMOTIONS // 2
    assert unpublished_left() == PROMOTIONS // 2
    second, second_tally = stream_poller()
    with running(second):
        wait_until(lambda: unpublished_left() == 0, 30, "the restarted relay left events unpublished")
    assert poll_to_the_end(second) == 0

    expected = {item["event_id"] for item in outbox_items()}
    assert len(expected) == PROMOTIONS
    # The restarted relay resumed after its checkpoint: none of the first half again.
    assert set(first_tally.handed) == first_half
    assert set(second_tally.handed) == expected - first_half
    assert sum(first_tally.published) + sum(second_tally.published) == PROMOTIONS
    assert (first_tally.swept, second_tally.swept) == (0, 0)
    assert_all_marked_published(expected)
    assert_each_published_once(expected)


def test_promotions_while_the_broker_is_unreachable_are_published_once_by_the_running_relay(
    relay_stack, proxy, proxied_publisher, monkeypatch
):
    # The relay's handler reaches RabbitMQ only through the proxy, which starts down.
    monkeypatch.setattr(relay, "_publisher", lambda: proxied_publisher)
    poller, tally = stream_poller()
    classes = waiting_classes(PROMOTIONS // PER_CLASS)
    with running(poller):
        assert promote_all(classes) == PROMOTIONS
        tried = tally.failures
        wait_until(lambda: tally.failures > tried, 20, "the relay never tried the broker again")
        items = outbox_items()
        assert len(items) == PROMOTIONS
        assert all(item["unpublished"] == "pending" for item in items)
        assert tally.published == []
        assert [depth(amqp_url(), queue) for queue in (EMAIL_QUEUE, WEBHOOK_QUEUE)] == [0, 0]

        proxy.start()
        wait_until(lambda: unpublished_left() == 0, 30, "the relay left events unpublished")
    # Whatever the stream still holds (its own marks, batches re-read after the failures)
    # publishes nothing again.
    assert poll_to_the_end(poller) == 0

    expected = {item["event_id"] for item in items}
    assert set(tally.handed) == expected
    assert sum(tally.published) == PROMOTIONS
    assert tally.swept == 0
    assert proxy.connections >= 1
    assert_all_marked_published(expected)
    assert_each_published_once(expected)
