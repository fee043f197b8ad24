"""Subscription routes over HTTP against `chalice local` (issue 3, items 1 to 4), and the
webhook address table through the API with private targets not allowed, in-process."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
from chalice.test import Client

from app import app
from chalicelib import services
from chalicelib.adapters import redis_keys
from chalicelib.adapters.redis_client import connect
from chalicelib.config import get_settings
from tests.support.webhook_urls import MALFORMED, PRIVATE, PUBLIC

SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]{32,}$")
SINK = "http://127.0.0.1:9000/webhook"
STUDENT, OTHER, CLASS = 79, 80, 4


@pytest.fixture
def clean(stack):
    """No subscriptions at all: they live in Redis only, so the tables need no reset."""
    redis = connect()
    for pattern in ("subscriptions:*", "class:*:subscribers"):
        stale = list(redis.scan_iter(match=pattern, count=1000))
        if stale:
            redis.delete(*stale)
    return stack


def stored(student_id: int) -> dict[str, dict]:
    return {
        field: json.loads(value) for field, value in connect().hgetall(redis_keys.subscriptions(student_id)).items()
    }


def subscribe(stack, student_id: int, class_id: int, as_user: str | None = None, **kwargs):
    with stack.client(as_user or f"student{student_id}") as http:
        return http.post(f"/students/{student_id}/subscribe/{class_id}", **kwargs)


def listing(stack, student_id: int, as_user: str | None = None):
    with stack.client(as_user or f"student{student_id}") as http:
        return http.get(f"/students/{student_id}/subscriptions")


def assert_secret(secret: str) -> None:
    assert SECRET.match(secret), secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code", "details"}
    if code:
        assert body["code"] == code
    return body


# -- subscribing ------------------------------------------------------------------------


def test_subscribe_by_query_parameters_as_the_original_api(clean):
    response = subscribe(clean, STUDENT, CLASS, params={"email": "student79@example.edu", "webhook_url": SINK})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Subscription successful"
    subscription = body["subscription"]
    assert {k: subscription[k] for k in ("student_id", "class_id", "email", "webhook_url", "events")} == {
        "student_id": STUDENT,
        "class_id": CLASS,
        "email": "student79@example.edu",
        "webhook_url": SINK,
        "events": ["enrollment.promoted"],
    }
    assert_secret(subscription["secret"])
    assert stored(STUDENT)[str(CLASS)]["secret"] == subscription["secret"]
    assert connect().smembers(redis_keys.class_subscribers(CLASS)) == {str(STUDENT)}


def test_subscribe_by_json_body(clean):
    response = subscribe(clean, STUDENT, CLASS, json={"email": "Student79@Example.EDU", "webhook_url": SINK})

    assert response.status_code == 201, response.text
    subscription = response.json()["subscription"]
    assert subscription["email"] == "Student79@example.edu"
    assert subscription["webhook_url"] == SINK
    assert_secret(subscription["secret"])


def test_each_webhook_subscription_gets_its_own_secret(clean):
    first = subscribe(clean, STUDENT, CLASS, json={"webhook_url": SINK}).json()["subscription"]["secret"]
    second = subscribe(clean, STUDENT, 8, json={"webhook_url": SINK}).json()["subscription"]["secret"]

    assert_secret(first)
    assert_secret(second)
    assert first != second


def test_an_email_only_subscription_has_no_secret(clean):
    response = subscribe(clean, STUDENT, CLASS, params={"email": "student79@example.edu"})

    assert response.status_code == 201, response.text
    subscription = response.json()["subscription"]
    assert "secret" not in subscription
    assert subscription["webhook_url"] is None
    assert stored(STUDENT)[str(CLASS)]["secret"] is None


def test_the_listing_never_shows_the_secret(clean):
    secret = subscribe(clean, STUDENT, CLASS, json={"email": "student79@example.edu", "webhook_url": SINK}).json()[
        "subscription"
    ]["secret"]
    subscribe(clean, STUDENT, 8, params={"email": "student79@example.edu"})

    response = listing(clean, STUDENT)

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Current subscriptions"
    assert [(s["class_id"], s["email"], s["webhook_url"]) for s in body["subscriptions"]] == [
        (CLASS, "student79@example.edu", SINK),
        (8, "student79@example.edu", None),
    ]
    assert all("secret" not in s for s in body["subscriptions"])
    assert secret not in response.text
    with clean.client("registrar551") as registrar:
        assert secret not in registrar.get(f"/students/{STUDENT}/subscriptions").text


def test_listing_with_no_subscription_is_an_empty_list(clean):
    response = listing(clean, STUDENT)

    assert response.status_code == 200
    assert response.json() == {"message": "Current subscriptions", "subscriptions": []}


def test_subscribing_twice_is_a_conflict_and_keeps_the_first(clean):
    first = subscribe(clean, STUDENT, CLASS, json={"webhook_url": SINK}).json()["subscription"]

    again = subscribe(clean, STUDENT, CLASS, json={"email": "student79@example.edu"})

    assert_error(again, 409, "already_subscribed")
    kept = stored(STUDENT)[str(CLASS)]
    assert (kept["email"], kept["webhook_url"], kept["secret"]) == (None, SINK, first["secret"])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"json": {}}, {"params": {"email": ""}}, {"json": {"email": None, "webhook_url": None}}],
    ids=["no body", "empty object", "empty email", "nulls"],
)
def test_neither_email_nor_webhook_is_a_bad_request(clean, kwargs):
    assert_error(subscribe(clean, STUDENT, CLASS, **kwargs), 400, "contact_required")
    assert stored(STUDENT) == {}


@pytest.mark.parametrize("email", ["not-an-email", "student79@", "@example.edu", "a b@example.edu"])
def test_an_invalid_email_is_unprocessable(clean, email):
    body = assert_error(subscribe(clean, STUDENT, CLASS, params={"email": email}), 422, "invalid_email")

    assert body["details"][0]["field"] == "email"
    assert stored(STUDENT) == {}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "http://user:secret@127.0.0.1:9000/webhook",
        "https://admin@example.com/hook",
        "127.0.0.1:9000/webhook",
        "https://" + "a" * 2050 + ".example.com/",
        "http://127.0.0.1:99999/webhook",
    ],
)
def test_an_unacceptable_webhook_url_is_unprocessable_even_where_private_targets_are_allowed(clean, url):
    by_query = subscribe(clean, STUDENT, CLASS, params={"webhook_url": url})
    by_body = subscribe(clean, STUDENT, CLASS, json={"email": "student79@example.edu", "webhook_url": url})

    for response in (by_query, by_body):
        body = assert_error(response, 422, "invalid_webhook_url")
        assert body["details"][0]["field"] == "webhook_url"
    assert stored(STUDENT) == {}


def test_an_unknown_class_is_not_found(clean):
    assert_error(subscribe(clean, STUDENT, 99999, params={"email": "student79@example.edu"}), 404, "class_not_found")
    assert stored(STUDENT) == {}


def test_an_unknown_student_is_not_found(clean):
    response = subscribe(clean, 99999, CLASS, as_user="registrar551", params={"email": "ghost@example.edu"})

    assert_error(response, 404, "student_not_found")
    assert stored(99999) == {}


def test_an_instructor_is_no_student_to_subscribe(clean):
    response = subscribe(clean, 504, CLASS, as_user="registrar551", params={"email": "instructor504@example.edu"})

    assert_error(response, 404, "student_not_found")


def test_the_registrar_may_subscribe_a_student(clean):
    response = subscribe(clean, STUDENT, CLASS, as_user="registrar551", params={"email": "student79@example.edu"})

    assert response.status_code == 201, response.text
    assert listing(clean, STUDENT).json()["subscriptions"][0]["class_id"] == CLASS


# -- events -----------------------------------------------------------------------------


def test_events_default_to_enrollment_promoted(clean):
    response = subscribe(clean, STUDENT, CLASS, json={"email": "student79@example.edu"})

    assert response.json()["subscription"]["events"] == ["enrollment.promoted"]
    assert listing(clean, STUDENT).json()["subscriptions"][0]["events"] == ["enrollment.promoted"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"json": {"events": ["waitlist.position_changed"]}}, ["waitlist.position_changed"]),
        (
            {"json": {"events": ["enrollment.promoted", "waitlist.position_changed", "enrollment.promoted"]}},
            ["enrollment.promoted", "waitlist.position_changed"],
        ),
        (
            {"params": {"events": "waitlist.position_changed, enrollment.promoted"}},
            ["waitlist.position_changed", "enrollment.promoted"],
        ),
    ],
    ids=["position only", "both, deduplicated", "query, comma separated"],
)
def test_a_subscription_names_the_events_it_wants(clean, kwargs, expected):
    key = "json" if "json" in kwargs else "params"
    kwargs[key] = {**kwargs[key], "email": "student79@example.edu"}

    response = subscribe(clean, STUDENT, CLASS, **kwargs)

    assert response.status_code == 201, response.text
    assert response.json()["subscription"]["events"] == expected
    assert listing(clean, STUDENT).json()["subscriptions"][0]["events"] == expected
    assert stored(STUDENT)[str(CLASS)]["events"] == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"events": ["enrollment.dropped"]}},
        {"json": {"events": ["enrollment.promoted", "everything"]}},
        {"params": {"events": "enrollment.promoted,bogus"}},
        {"json": {"events": "enrollment.promoted"}},
    ],
    ids=["unknown", "one unknown among known", "query", "not a list"],
)
def test_an_unknown_event_is_unprocessable(clean, kwargs):
    key = "json" if "json" in kwargs else "params"
    kwargs[key] = {**kwargs[key], "email": "student79@example.edu"}

    assert_error(subscribe(clean, STUDENT, CLASS, **kwargs), 422)
    assert stored(STUDENT) == {}


# -- unsubscribing ----------------------------------------------------------------------


def test_unsubscribe_removes_the_subscription(clean):
    subscribe(clean, STUDENT, CLASS, json={"email": "student79@example.edu"})

    with clean.client(f"student{STUDENT}") as http:
        response = http.delete(f"/students/{STUDENT}/unsubscribe/{CLASS}")

    assert response.status_code == 200, response.text
    assert listing(clean, STUDENT).json()["subscriptions"] == []
    assert stored(STUDENT) == {}
    assert connect().smembers(redis_keys.class_subscribers(CLASS)) == set()


def test_unsubscribe_when_not_subscribed_is_not_found(clean):
    with clean.client(f"student{STUDENT}") as http:
        assert_error(http.delete(f"/students/{STUDENT}/unsubscribe/{CLASS}"), 404, "not_subscribed")
        assert_error(http.delete(f"/students/{STUDENT}/unsubscribe/99999"), 404, "not_subscribed")


# -- only one's own ---------------------------------------------------------------------


@pytest.mark.parametrize("intruder", [f"student{STUDENT}", "instructor504"])
def test_nobody_else_reads_creates_or_deletes_a_students_subscriptions(clean, intruder):
    subscribe(clean, OTHER, CLASS, json={"email": "student80@example.edu", "webhook_url": SINK})
    before = stored(OTHER)

    with clean.client(intruder) as http:
        read = http.get(f"/students/{OTHER}/subscriptions")
        created = http.post(f"/students/{OTHER}/subscribe/8", json={"webhook_url": "http://127.0.0.1:9/steal"})
        created_by_query = http.post(f"/students/{OTHER}/subscribe/8", params={"email": "thief@example.edu"})
        deleted = http.delete(f"/students/{OTHER}/unsubscribe/{CLASS}")

    for response in (read, created, created_by_query, deleted):
        assert_error(response, 403, "forbidden")
    assert before[str(CLASS)]["secret"] not in read.text
    assert stored(OTHER) == before
    assert [s["class_id"] for s in listing(clean, OTHER).json()["subscriptions"]] == [CLASS]
    if intruder.startswith("student"):
        assert stored(STUDENT) == {}


def test_without_a_token_nothing_is_shown_or_changed(clean):
    subscribe(clean, OTHER, CLASS, json={"email": "student80@example.edu"})

    # Without any Authorization header `chalice local` (like API Gateway) answers 401 itself.
    with clean.client() as anonymous:
        assert anonymous.get(f"/students/{OTHER}/subscriptions").status_code == 401
        assert anonymous.post(f"/students/{OTHER}/subscribe/8", params={"email": "x@example.edu"}).status_code == 401
        assert anonymous.delete(f"/students/{OTHER}/unsubscribe/{CLASS}").status_code == 401
    assert list(stored(OTHER)) == [str(CLASS)]


# -- removing a class -------------------------------------------------------------------


def test_removing_a_class_removes_subscriptions_to_it(clean):
    new_class = {
        "department": "CPSC",
        "course_code": "491",
        "section": 1,
        "name": "Senior Capstone",
        "instructor_id": 501,
        "max_enroll": 10,
    }
    with clean.client("registrar551") as registrar:
        created = registrar.post("/registrar/classes", json=new_class)
        assert created.status_code == 201, created.text
        class_id = created.json()["class_id"]
        for student_id in (STUDENT, OTHER):
            response = subscribe(clean, student_id, class_id, json={"email": f"student{student_id}@example.edu"})
            assert response.status_code == 201, response.text
        subscribe(clean, STUDENT, CLASS, json={"webhook_url": SINK})

        assert registrar.delete(f"/registrar/classes/{class_id}").status_code == 200

    assert [s["class_id"] for s in listing(clean, STUDENT).json()["subscriptions"]] == [CLASS]
    assert listing(clean, OTHER).json()["subscriptions"] == []
    assert not connect().exists(redis_keys.class_subscribers(class_id))
    response = subscribe(clean, STUDENT, class_id, json={"email": "student79@example.edu"})
    assert_error(response, 404, "class_not_found")


# -- the address table through the API, private targets not allowed -------------------


@pytest.fixture
def strict_api(clean, monkeypatch) -> Iterator[Client]:
    """The app in-process, on the stack's moto server and Redis, configured as a deployed
    stage: webhooks must point at public addresses."""
    monkeypatch.setenv("ALLOW_PRIVATE_WEBHOOK_TARGETS", "false")
    services.reset()
    services.subscriptions()
    assert get_settings().allow_private_webhook_targets is False
    try:
        with Client(app) as client:
            yield client
    finally:
        monkeypatch.undo()
        services.reset()


def post_json(client: Client, stack, path: str, body: dict, as_user: str = f"student{STUDENT}"):
    return client.http.post(
        path,
        headers={"Authorization": f"Bearer {stack.token(as_user)}", "Content-Type": "application/json"},
        body=json.dumps(body).encode(),
    )


_REFUSED = [(label, url) for label, url in PRIVATE + MALFORMED if url]


@pytest.mark.parametrize(("label", "url"), _REFUSED, ids=[label for label, _ in _REFUSED])
def test_every_unsafe_address_is_refused_by_the_api(strict_api, stack, label, url):
    response = post_json(strict_api, stack, f"/students/{STUDENT}/subscribe/{CLASS}", {"webhook_url": url})

    assert response.status_code == 422, response.body
    body = json.loads(response.body)
    assert (body["code"], body["details"][0]["field"]) == ("invalid_webhook_url", "webhook_url")
    assert stored(STUDENT) == {}


@pytest.mark.parametrize("url", PUBLIC[:3])
def test_a_public_address_is_accepted_by_the_api(strict_api, stack, url):
    response = post_json(strict_api, stack, f"/students/{STUDENT}/subscribe/{CLASS}", {"webhook_url": url})

    assert response.status_code == 201, response.body
    assert_secret(json.loads(response.body)["subscription"]["secret"])
    assert stored(STUDENT)[str(CLASS)]["webhook_url"] == url


def test_the_local_sink_is_refused_when_private_targets_are_not_allowed(strict_api, stack):
    response = post_json(strict_api, stack, f"/students/{STUDENT}/subscribe/{CLASS}", {"webhook_url": SINK})

    assert response.status_code == 422, response.body
    assert "non-public" in json.loads(response.body)["message"]
