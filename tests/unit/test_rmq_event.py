"""Amazon MQ for RabbitMQ events (aws:rmq) as Lambda passes them: parsed into messages,
and built by the local poller in the same shape."""

from __future__ import annotations

import base64
import json

import pika
import pytest

from chalicelib.handlers import rmq_event


def _bytes(text: str) -> dict:
    return {"bytes": list(text.encode())}


def _data(body: dict | bytes) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return base64.b64encode(raw).decode()


def _entry(body: dict | bytes, headers: dict | None = None, message_id: str | None = None, redelivered=False) -> dict:
    """One message as the event source mapping writes it (every property present, most null)."""
    return {
        "basicProperties": {
            "contentType": "application/json",
            "contentEncoding": None,
            "headers": headers,
            "deliveryMode": 2,
            "priority": None,
            "correlationId": None,
            "replyTo": None,
            "expiration": None,
            "messageId": message_id,
            "timestamp": "Dec 3, 2026, 6:00:00 PM",
            "type": None,
            "userId": None,
            "appId": None,
            "clusterId": None,
            "bodySize": len(body) if isinstance(body, bytes) else len(json.dumps(body)),
        },
        "redelivered": redelivered,
        "data": _data(body),
    }


def _event(by_queue: dict[str, list[dict]]) -> dict:
    return {
        "eventSource": "aws:rmq",
        "eventSourceArn": "arn:aws:mq:us-east-1:111122223333:broker:titan:b-9bcfa592-423a-4942-879d-eb284b418fc8",
        "rmqMessagesByQueue": by_queue,
    }


def test_a_lambda_event_with_byte_array_headers_numbers_and_base64_data():
    body = {
        "event_id": "e-1",
        "student_id": 79,
        "message": "You have been enrolled in Introduction to Computer Science",
    }
    headers = {"x-message-id": _bytes("e-1"), "x-attempt": 2, "x-last-error": _bytes("HTTP 503"), "x-flag": True}
    event = _event({"notifications.webhook::/": [_entry(body, headers, redelivered=True)]})

    (message,) = rmq_event.parse(event)

    assert message.queue == "notifications.webhook"
    assert message.json() == body
    assert message.body == json.dumps(body).encode()
    assert message.headers == {"x-message-id": "e-1", "x-attempt": 2, "x-last-error": "HTTP 503", "x-flag": True}
    assert message.message_id == "e-1"  # messageId is null: taken from the x-message-id header
    assert message.attempt == 2
    assert message.redelivered is True


def test_messageid_property_wins_over_the_header():
    entry = _entry({"event_id": "body-id"}, {"x-message-id": _bytes("header-id")}, message_id="property-id")
    (message,) = rmq_event.parse(_event({"notifications.email::/": [entry]}))
    assert message.message_id == "property-id"


def test_several_queues_and_messages_in_one_event_keep_their_order():
    event = _event(
        {
            "notifications.email::titan-test": [
                _entry({"n": 1}, {"x-message-id": _bytes("a")}),
                _entry({"n": 2}, {"x-message-id": _bytes("b")}, redelivered=True),
            ],
            "notifications.email.retry::titan-test": [
                _entry({"n": 3}, {"x-message-id": _bytes("c"), "x-attempt": 3}),
            ],
        }
    )

    messages = rmq_event.parse(event)

    assert [(m.queue, m.message_id, m.json()["n"], m.redelivered, m.attempt) for m in messages] == [
        ("notifications.email", "a", 1, False, 1),
        ("notifications.email", "b", 2, True, 1),
        ("notifications.email.retry", "c", 3, False, 3),
    ]


def test_a_message_without_headers_or_id_is_still_a_message():
    entry = _entry({"event_id": "e-2"})
    entry["basicProperties"].pop("headers")
    (message,) = rmq_event.parse(_event({"q::/": [entry]}))
    assert message.headers == {}
    assert message.message_id is None
    assert message.attempt == 1
    assert message.redelivered is False


def test_header_bytes_that_are_not_utf8_do_not_break_parsing():
    entry = _entry({"x": 1}, {"x-message-id": {"bytes": [0xFF, 0xFE, 0x41]}})
    (message,) = rmq_event.parse(_event({"q::/": [entry]}))
    assert message.message_id.endswith("A")


@pytest.mark.parametrize(
    ("header", "attempt"),
    [(None, 1), (1, 1), (2, 2), (7, 7), (0, 1), (-3, 1), ("4", 4), (_bytes("5"), 5), ("many", 1), ([], 1)],
)
def test_attempt_comes_from_the_x_attempt_header_and_is_at_least_one(header, attempt):
    headers = {} if header is None else {"x-attempt": header}
    (message,) = rmq_event.parse(_event({"q::/": [_entry({"x": 1}, headers)]}))
    assert message.attempt == attempt


def test_an_empty_event_has_no_messages():
    assert rmq_event.parse(_event({})) == []
    assert rmq_event.parse({"eventSource": "aws:rmq"}) == []


@pytest.mark.parametrize("source", ["aws:sqs", "aws:mq", None])
def test_other_event_sources_are_refused(source):
    with pytest.raises(ValueError, match="aws:rmq"):
        rmq_event.parse({"eventSource": source, "rmqMessagesByQueue": {}})


def test_the_poller_builds_what_lambda_passes_and_parse_reads_it_back():
    """Both directions agree: a pika delivery becomes the same message a deployed handler sees."""
    first = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        message_id="e-1",
        headers={"x-message-id": "e-1", "x-attempt": 2, "x-raw": b"\x00\x01", "x-last-error": "HTTP 500"},
    )
    second = pika.BasicProperties(content_type="application/json", headers={"x-message-id": "e-2"})
    event = rmq_event.build(
        "notifications.email", "titan-test", [(first, b'{"event_id":"e-1"}', False), (second, b"{}", True)]
    )

    # Lambda hands the handler JSON: the event must survive a round trip.
    event = json.loads(json.dumps(event))
    assert event["eventSource"] == "aws:rmq"
    assert list(event["rmqMessagesByQueue"]) == ["notifications.email::titan-test"]
    entries = event["rmqMessagesByQueue"]["notifications.email::titan-test"]
    assert entries[0]["basicProperties"]["headers"]["x-message-id"] == _bytes("e-1")
    assert entries[0]["basicProperties"]["headers"]["x-attempt"] == 2
    assert entries[0]["basicProperties"]["bodySize"] == len(b'{"event_id":"e-1"}')
    assert base64.b64decode(entries[0]["data"]) == b'{"event_id":"e-1"}'

    one, two = rmq_event.parse(event)
    assert (one.queue, one.message_id, one.attempt, one.redelivered) == ("notifications.email", "e-1", 2, False)
    assert one.headers["x-last-error"] == "HTTP 500"
    assert one.headers["x-raw"] == "\x00\x01"
    assert one.json() == {"event_id": "e-1"}
    assert (two.message_id, two.attempt, two.redelivered, two.body) == ("e-2", 1, True, b"{}")
