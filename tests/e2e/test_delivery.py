"""Issue 4 end to end: promotions reach the student by email and by webhook, once each,
through real processes, whatever fails on the way."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib import services
from chalicelib.adapters import redis_keys, topology
from chalicelib.adapters.redis_client import connect
from chalicelib.adapters.webhook_client import PER_HOST_REQUESTS
from chalicelib.domain.model import Identity, Role
from infra import sample_data
from tests.conftest import TEST_ENV
from tests.e2e.conftest import E2E, Hit, wait_until

CLASS_NAME = "Introduction to Computer Science"
SUBJECT = f"Enrollment Notification for {CLASS_NAME}"
MESSAGE = f"You have been enrolled in {CLASS_NAME}"
# Full classes whose waitlists are filled up to PER_CLASS students for the many-promotion
# scenarios, then promoted all at once: 40 events.
BULK_CLASSES = (4, 8, 13, 16)
PER_CLASS = 10
BULK_STUDENTS = range(100, 200)  # on no sample waitlist, enrolled nowhere


def email_of(student_id: int) -> str:
    return f"student{student_id}@example.edu"


def drop(e2e: E2E, student_id: int, class_id: int) -> None:
    with e2e.client(f"student{student_id}") as http:
        response = http.put(f"/students/{student_id}/classes/{class_id}/drop")
    assert response.status_code == 200, response.text


def instructor_drop(e2e: E2E, instructor_id: int, class_id: int, student_id: int) -> None:
    with e2e.client(f"instructor{instructor_id}") as http:
        response = http.post(f"/instructors/{instructor_id}/classes/{class_id}/students/{student_id}/drop")
    assert response.status_code == 200, response.text


def assert_signed(hit: Hit, secret: str) -> dict:
    body = Webhook(secret).verify(hit.body, hit.headers)
    assert hit.headers["webhook-id"] == body["event_id"]
    return body


def assert_promotion_arrived(e2e: E2E, student_id: int, path: str, secret: str) -> None:
    """Exactly one email to the student and one signed POST, both saying the contract message."""
    (mail,) = e2e.mailbox.to(email_of(student_id))
    assert mail.recipients == (email_of(student_id),)
    assert mail.message["Subject"] == SUBJECT
    assert mail.body == MESSAGE
    (hit,) = e2e.receiver.hits(path)
    assert hit.status == 200
    body = assert_signed(hit, secret)
    assert body["message"] == MESSAGE
    assert (body["type"], body["student_id"], body["class_id"]) == ("enrollment.promoted", student_id, 4)
    assert mail.message["Message-ID"] == f"<{body['event_id']}@titan-enrollment>"


def promoted_channels(e2e: E2E, student_id: int) -> dict:
    """The channels of the student's promotion to class 4, as GET /notifications shows them."""
    for event in e2e.history(student_id):
        if event["type"] == "enrollment.promoted" and event["class_id"] == 4:
            return event["channels"]
    return {}


# -- the original demonstration --------------------------------------------------------


def test_the_original_demonstration(e2e: E2E):
    subscription = e2e.subscribe(79, 4, email=email_of(79), webhook_url=e2e.receiver.url("/demo/79"))

    drop(e2e, 55, 4)

    wait_until(
        lambda: e2e.mailbox.to(email_of(79)) and e2e.receiver.hits("/demo/79"), 5, "the email and the webhook of 79"
    )
    assert_promotion_arrived(e2e, 79, "/demo/79", subscription["secret"])

    second = e2e.subscribe(80, 4, email=email_of(80), webhook_url=e2e.receiver.url("/demo/80"))
    instructor_drop(e2e, 504, 4, 56)

    wait_until(
        lambda: e2e.mailbox.to(email_of(80)) and e2e.receiver.hits("/demo/80"), 5, "the email and the webhook of 80"
    )
    assert_promotion_arrived(e2e, 80, "/demo/80", second["secret"])

    for student in (79, 80):
        channels = wait_until(
            lambda s=student: (
                (c := promoted_channels(e2e, s))
                and all(c[n]["status"] == "delivered" for n in ("email", "webhook"))
                and c
            ),
            5,
            f"the history of {student} to show both deliveries",
        )
        assert {n: (c["status"], c["attempts"], c["last_error"]) for n, c in channels.items()} == {
            "email": ("delivered", 1, None),
            "webhook": ("delivered", 1, None),
        }
    wait_until(e2e.settled, 10, "the queues to empty")
    # Still one of each: nothing arrived twice while the rest was going on.
    assert len(e2e.mailbox.mails) == 2 and len(e2e.receiver.hits()) == 2


# -- webhook failures ------------------------------------------------------------------


def test_an_endpoint_failing_twice_gets_the_event_once_on_the_third_attempt(e2e: E2E):
    url = e2e.receiver.script("/flaky", 500, 500, 200)
    secret = e2e.subscribe(79, 4, webhook_url=url)["secret"]

    drop(e2e, 55, 4)

    channels = wait_until(
        lambda: (c := promoted_channels(e2e, 79)) and c["webhook"]["status"] == "delivered" and c,
        15,
        "the webhook to be delivered",
    )
    assert channels["webhook"]["attempts"] == 3
    hits = e2e.receiver.hits("/flaky")
    assert [h.status for h in hits] == [500, 500, 200]
    assert len({h.event_id for h in hits}) == 1  # the same event, retried
    for hit in hits:
        assert_signed(hit, secret)
    wait_until(e2e.settled, 10, "the queues to empty")
    assert len(e2e.receiver.delivered("/flaky")) == 1
    assert e2e.ready(topology.dead_letter_queue("webhook")) == 0


def test_an_endpoint_that_always_fails_ends_in_the_dead_letter_queue(e2e: E2E):
    url = e2e.receiver.script("/down", 500)
    e2e.subscribe(79, 4, webhook_url=url)

    drop(e2e, 55, 4)

    dead_letter = topology.dead_letter_queue("webhook")
    wait_until(lambda: e2e.ready(dead_letter) == 1, 15, "the event in the dead-letter queue")
    channels = wait_until(
        lambda: (c := promoted_channels(e2e, 79)) and c["webhook"]["status"] == "failed" and c,
        5,
        "the history to show the failure",
    )
    assert channels["webhook"] == {"status": "failed", "attempts": 3, "last_error": "HTTP 500"}
    hits = e2e.receiver.hits("/down")
    assert [h.status for h in hits] == [500, 500, 500]
    ((properties, body),) = e2e.drain(dead_letter)
    assert properties.message_id == hits[0].event_id
    assert properties.headers["x-attempts"] == 3
    assert properties.headers["x-last-error"] == "HTTP 500"
    assert b'"webhook_url"' in body  # the original event, ready to be replayed
    wait_until(e2e.settled, 10, "the queues to empty")
    assert len(e2e.receiver.hits("/down")) == 3


def test_an_endpoint_answering_410_gets_nothing_more(e2e: E2E):
    """Student 80 wants promotions and position changes by email and webhook. 55 drops:
    80 moves to first place, the webhook answers 410 and is removed from the subscription.
    Then 80 is promoted: the email arrives, the endpoint hears nothing."""
    url = e2e.receiver.script("/gone", 410)
    e2e.subscribe(
        80, 4, email=email_of(80), webhook_url=url, events=["enrollment.promoted", "waitlist.position_changed"]
    )

    drop(e2e, 55, 4)

    wait_until(lambda: e2e.receiver.hits("/gone"), 5, "the position change to reach the endpoint")
    with e2e.client("student80") as http:
        (kept,) = wait_until(
            lambda: (
                (s := http.get("/students/80/subscriptions").json()["subscriptions"])
                and s[0]["webhook_url"] is None
                and s
            ),
            5,
            "the webhook to leave the subscription",
        )
    assert kept["email"] == email_of(80)

    instructor_drop(e2e, 504, 4, 56)

    wait_until(lambda: any(m.body == MESSAGE for m in e2e.mailbox.to(email_of(80))), 5, "80's promotion email")
    wait_until(e2e.settled, 10, "the queues to empty")
    assert [h.status for h in e2e.receiver.hits("/gone")] == [410]
    events = {e["type"]: e for e in e2e.history(80)}
    position = events["waitlist.position_changed"]["channels"]
    assert position["webhook"]["status"] == "failed" and "410" in position["webhook"]["last_error"]
    assert position["email"]["status"] == "delivered"
    assert set(events["enrollment.promoted"]["channels"]) == {"email"}
    assert e2e.ready(topology.queue("webhook")) == 0


# -- secrets and the logs ----------------------------------------------------------------

# The demo password right after a username or the word password, as a log line would show
# a login or its body ("student79:titan", 'password': 'titan', password=titan); not the
# stage's own names (titan-test-outbox).
DEMO_LOGIN = re.compile(
    rf"(?:(?:student|instructor|registrar)\d+|password)\W{{0,8}}{sample_data.DEMO_PASSWORD}(?![\w-])", re.IGNORECASE
)


def test_no_secret_reaches_the_relay_or_poller_logs(e2e: E2E):
    """A signed webhook delivered after one retry, and an email: afterwards neither the
    relay's log nor a poller's holds the JWT signing key, the subscription's signing
    secret (or its base64 body) or a login with the demo password."""
    url = e2e.receiver.script("/logged", 500, 200)
    secret = e2e.subscribe(79, 4, email=email_of(79), webhook_url=url)["secret"]

    drop(e2e, 55, 4)

    wait_until(
        lambda: e2e.receiver.delivered("/logged") and e2e.mailbox.to(email_of(79)), 10, "the webhook and the email"
    )
    (hit,) = e2e.receiver.delivered("/logged")
    assert assert_signed(hit, secret)["student_id"] == 79
    wait_until(e2e.settled, 10, "the queues to empty")
    relay, pollers = e2e.relay, list(e2e.pollers)
    e2e.stop_all()  # what they write on the way out counts too
    logs = {process.name: process.log_path.read_text(errors="replace") for process in (relay, *pollers)}

    # The right files: each holds its process's first line.
    assert " relay INFO " in logs[relay.name]
    channels = {process.name: process.args[process.args.index("--channel") + 1] for process in pollers}
    assert sorted(channels.values()) == ["email", "webhook"]
    for name, channel in channels.items():
        assert f"consuming {topology.queue(channel)}" in logs[name], name
    secrets = {
        "the JWT signing key": TEST_ENV["JWT_SECRET"],
        "the webhook signing secret": secret,
        "the webhook signing secret's body": secret.removeprefix("whsec_"),
    }
    for name, text in logs.items():
        for what, value in secrets.items():
            assert value not in text, f"{what} is in the log of {name}"
        assert not DEMO_LOGIN.search(text), f"a demo login is in the log of {name}: {DEMO_LOGIN.search(text)[0]}"


# -- SMTP outage -----------------------------------------------------------------------


def test_an_smtp_outage_delays_the_email_and_it_arrives_once(e2e: E2E):
    e2e.mailbox.stop()
    e2e.subscribe(79, 4, email=email_of(79))

    drop(e2e, 55, 4)

    # The first attempt found no server; bring it back before the attempts run out.
    state = wait_until(
        lambda: (s := e2e.channel_state(79, 4, "email")) and s["status"] == "retrying" and s,
        10,
        "a failed email attempt",
        interval=0.02,
    )
    e2e.mailbox.start()
    assert "SMTP connection failed" in state["last_error"]

    wait_until(lambda: e2e.mailbox.to(email_of(79)), 10, "the email once the server is back")
    channels = wait_until(
        lambda: (c := promoted_channels(e2e, 79)) and c["email"]["status"] == "delivered" and c,
        5,
        "the history to show the delivery",
    )
    assert channels["email"]["attempts"] in (2, 3)
    wait_until(e2e.settled, 10, "the queues to empty")
    (mail,) = e2e.mailbox.to(email_of(79))
    assert (mail.message["Subject"], mail.body) == (SUBJECT, MESSAGE)


# -- many promotions: crashes and competing pollers ------------------------------------


def prepare_bulk_promotions(e2e: E2E, email: bool, webhook_path: str | None) -> dict[tuple[int, int], str]:
    """Fill the waitlists of BULK_CLASSES to PER_CLASS and subscribe everyone on them; returns
    each subscription's webhook secret. Done in-process: the rules are the same, and
    hundreds of HTTP logins would only cost time."""
    enrollment = services.enrollment()
    subscriptions = services.subscriptions()
    students = iter(BULK_STUDENTS)
    secrets: dict[tuple[int, int], str] = {}
    for class_id in BULK_CLASSES:
        while len(enrollment.waitlists.entries(class_id)) < PER_CLASS:
            student = next(students)
            result = enrollment.enroll(Identity(student, Role.STUDENT, f"student{student}"), student, class_id)
            assert not result.enrolled
        for entry in enrollment.waitlists.entries(class_id):
            who = Identity(entry.student_id, Role.STUDENT, f"student{entry.student_id}")
            created = subscriptions.subscribe(
                who,
                entry.student_id,
                class_id,
                email_of(entry.student_id) if email else None,
                e2e.receiver.url(webhook_path) if webhook_path else None,
                None,
            )
            secrets[(entry.student_id, class_id)] = created.secret
    return secrets


def promote_everyone(e2e: E2E) -> int:
    """Raise each bulk class's capacity by PER_CLASS: its whole waitlist is enrolled."""
    with e2e.client("registrar551") as http:
        for class_id in BULK_CLASSES:
            capacity = sample_data.CLASSES[class_id].max_enroll + PER_CLASS
            response = http.patch(f"/registrar/classes/{class_id}", json={"max_enroll": capacity})
            assert response.status_code == 200, response.text
    return len(BULK_CLASSES) * PER_CLASS


def bulk_event_ids(e2e: E2E, secrets: dict[tuple[int, int], str]) -> set[str]:
    ids = set()
    for student in {s for s, _ in secrets}:
        ids.update(i["event_id"] for i in e2e.outbox(student) if i.get("type") == "enrollment.promoted")
    return ids


def assert_signed_once(hits: list[Hit], secrets: dict[tuple[int, int], str], expected: set[str]) -> None:
    counts = Counter(h.event_id for h in hits if h.delivered)
    assert set(counts) == expected
    assert [e for e, n in counts.items() if n != 1] == []
    for hit in hits:
        if hit.delivered:
            body = hit.json()
            assert_signed(hit, secrets[(body["student_id"], body["class_id"])])


@pytest.mark.slow
@pytest.mark.pollers(webhook=0)
def test_a_poller_killed_in_the_middle_of_a_batch_delivers_every_event_once(e2e: E2E):
    """40 promotions wait in the queue and the poller takes them as one batch. The
    receiver answers 15 POSTs and holds the next ones (as many as the poller sends one
    endpoint at a time); SIGKILL hits while it holds them, with the rest of the batch not
    sent yet. The restarted poller gets all 40 again: the 15 answered are not sent again,
    and the others, claimed by the dead poller, are sent once their claim's lease runs out."""
    secrets = prepare_bulk_promotions(e2e, email=False, webhook_path="/bulk")
    total = promote_everyone(e2e)
    wait_until(lambda: e2e.ready(topology.queue("webhook")) == total, 20, "every event in the webhook queue")
    expected = bulk_event_ids(e2e, secrets)
    assert len(expected) == total

    answered = 15
    e2e.receiver.hold(answered)
    (poller,) = e2e.start_pollers("webhook", 1, "--batch-size", "100", "--prefetch", "100")
    in_flight = min(PER_HOST_REQUESTS, total - answered)
    wait_until(lambda: e2e.receiver.held >= in_flight, 15, "the next POSTs held at the receiver")
    sent = {h.event_id for h in e2e.receiver.delivered()}
    assert len(sent) == answered
    redis = connect()
    # Each answered event is done as soon as its answer arrived, not at the end of the batch.
    wait_until(
        lambda: all(redis.get(redis_keys.delivery(e, "webhook")) == "done" for e in sent),
        5,
        "the answered events to be marked done",
    )

    poller.kill()
    e2e.receiver.open_gate()
    e2e.restart(poller, "webhook")

    wait_until(
        lambda: len({h.event_id for h in e2e.receiver.delivered()}) >= total,
        120,
        "every event delivered after the restart",
        interval=0.5,
    )
    wait_until(e2e.settled, 20, "the queues to empty")
    assert_signed_once(e2e.receiver.hits(), secrets, expected)
    assert sum(1 for h in e2e.receiver.hits() if h.status is None) == in_flight


@pytest.mark.slow
@pytest.mark.pollers(email=0, webhook=0)
def test_competing_pollers_deliver_every_event_once_even_when_it_was_published_twice(e2e: E2E):
    for channel in ("email", "webhook"):
        e2e.start_pollers(channel, 2, "--batch-size", "10", "--prefetch", "10")
    secrets = prepare_bulk_promotions(e2e, email=True, webhook_path="/competing")
    total = promote_everyone(e2e)
    expected = wait_until(
        lambda: (ids := bulk_event_ids(e2e, secrets)) and len(ids) == total and ids, 20, "every promotion"
    )
    # As a relay would after a crash between publishing and marking: every event once more.
    e2e.publish(
        [
            item["body"].encode()
            for student in {s for s, _ in secrets}
            for item in e2e.outbox(student)
            if item["event_id"] in expected
        ]
    )

    wait_until(
        lambda: (
            len({h.event_id for h in e2e.receiver.delivered()}) >= total
            and len({m.message["Message-ID"] for m in e2e.mailbox.mails}) >= total
        ),
        60,
        "every event by email and webhook",
        interval=0.2,
    )
    wait_until(e2e.settled, 30, "the queues to empty")
    assert_signed_once(e2e.receiver.hits(), secrets, expected)
    mails = Counter(m.message["Message-ID"] for m in e2e.mailbox.mails)
    assert set(mails) == {f"<{e}@titan-enrollment>" for e in expected}
    assert [m for m, n in mails.items() if n != 1] == []
    assert e2e.consumers("email") == 2 and e2e.consumers("webhook") == 2
