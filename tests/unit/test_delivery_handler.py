"""The delivery handlers without the outside world: email composition, webhook payloads
and signatures, the Deliverer's exactly-once and retry rules over fakeredis and recording
fakes, the SMTP and HTTP adapters against servers started in-process, and RetryPolicy."""

from __future__ import annotations

import email.utils
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import fakeredis
import pika
import pytest
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.adapters import redis_keys
from chalicelib.adapters.redis_delivery import DONE, FINISHED, Claim, DeliveryClaims
from chalicelib.adapters.redis_subscriptions import RedisSubscriptions
from chalicelib.adapters.smtp import SmtpSender
from chalicelib.adapters.webhook_client import (
    PER_HOST_REQUESTS,
    TIMEOUT_SECONDS,
    WebhookClient,
    WebhookRequest,
    _retry_after,
)
from chalicelib.config import Settings
from chalicelib.domain import delivery
from chalicelib.domain.delivery import Outcome, Result, RetryPolicy, http_result
from chalicelib.domain.subscriptions import Subscription, new_secret
from chalicelib.handlers import rmq_event, wiring
from chalicelib.handlers.delivery import Deliverer, Job
from chalicelib.handlers.email import EmailChannel, compose, header_text
from chalicelib.handlers.webhook import WebhookChannel, payload, signed_headers
from tests.support.processes import free_port

CLASS_NAME = "Introduction to Computer Science"
MESSAGE = f"You have been enrolled in {CLASS_NAME}"
SENDER = "Titan Enrollment <notifications@titan-enrollment.example>"
HOOK = "https://hooks.example.edu/titan"
LEASE, DONE_TTL = 60, 7200
POLICY = RetryPolicy((0.2, 0.4), 3)


def promotion(event_id: str, student_id: int = 79, class_id: int = 4, **fields: Any) -> dict:
    body = {
        "type": "enrollment.promoted",
        "event_id": event_id,
        "occurred_at": "2026-12-03T18:00:00Z",
        "student_id": student_id,
        "class_id": class_id,
        "class_name": CLASS_NAME,
        "section": 1,
        "message": MESSAGE,
        "email": f"student{student_id}@example.edu",
        "webhook_url": HOOK,
    }
    body.update(fields)
    return body


def message(body: dict | bytes, attempt: int | None = None, redelivered: bool = False) -> tuple:
    """A pika delivery as the relay (attempt None) or a delay queue (attempt n) hands it over."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event_id = None if isinstance(body, bytes) else body["event_id"]
    headers: dict[str, Any] = {"x-message-id": event_id} if event_id else {}
    if attempt is not None:
        headers["x-attempt"] = attempt
    properties = pika.BasicProperties(content_type="application/json", message_id=event_id, headers=headers)
    return properties, raw, redelivered


def rmq(*messages: tuple, queue: str = "notifications.webhook") -> dict:
    return json.loads(json.dumps(rmq_event.build(queue, "titan-test", list(messages))))


# -- recording fakes -------------------------------------------------------------------


@dataclass
class FakeRequeue:
    retries: list[dict] = field(default_factory=list)
    dead: list[dict] = field(default_factory=list)

    def retry(self, channel, delay, expiration_ms, body, message_id, attempt, error) -> None:
        self.retries.append(
            {
                "channel": channel,
                "delay": delay,
                "expiration_ms": expiration_ms,
                "body": body,
                "message_id": message_id,
                "attempt": attempt,
                "error": error,
            }
        )

    def dead_letter(self, channel, body, message_id, attempts, error) -> None:
        self.dead.append(
            {"channel": channel, "body": body, "message_id": message_id, "attempts": attempts, "error": error}
        )


@dataclass
class FakeHistory:
    lines: list[tuple[str, str, str, int, str | None]] = field(default_factory=list)
    broken: bool = False

    def record(self, channel: str, outcomes: list[tuple[str, str, int, str | None]]) -> None:
        if self.broken:
            raise ConnectionError("DynamoDB unreachable")
        self.lines.extend((channel, *outcome) for outcome in outcomes)


class ScriptedChannel:
    """A webhook-like channel whose results are scripted per event id (default: delivered)."""

    name = "webhook"

    def __init__(self, script: dict[str, Result] | None = None, crash_after: int | None = None) -> None:
        self.script = script or {}
        self.crash_after = crash_after
        self.sent: list[str] = []
        self.gone: list[str] = []

    def wants(self, event: dict) -> bool:
        return bool(event.get("webhook_url"))

    def send(self, jobs: list[Job], delivered: Callable[[list[Job]], None]) -> list[Result]:
        results = []
        for job in jobs:
            if self.crash_after is not None and len(self.sent) >= self.crash_after:
                raise SystemExit("killed in the middle of a batch")
            self.sent.append(job.event_id)
            result = self.script.get(job.event_id, Result(Outcome.DELIVERED))
            if result.outcome is Outcome.DELIVERED:
                delivered([job])
            results.append(result)
        return results

    def on_gone(self, job: Job) -> None:
        self.gone.append(job.event_id)


@dataclass
class Rig:
    redis: fakeredis.FakeRedis
    channel: ScriptedChannel
    requeue: FakeRequeue
    history: FakeHistory
    deliverer: Deliverer

    def claim_state(self, event_id: str) -> str | None:
        return self.redis.get(redis_keys.delivery(event_id, self.channel.name))


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def rig(redis) -> Callable[..., Rig]:
    def build(script: dict[str, Result] | None = None, crash_after: int | None = None) -> Rig:
        channel = ScriptedChannel(script, crash_after)
        requeue, history = FakeRequeue(), FakeHistory()
        claims = DeliveryClaims(redis, LEASE, DONE_TTL)
        return Rig(redis, channel, requeue, history, Deliverer(channel, claims, requeue, history, POLICY))

    return build


# -- Deliverer -------------------------------------------------------------------------


def test_a_delivered_message_is_done_and_recorded(rig):
    r = rig()
    report = r.deliverer.handle(rmq(message(promotion("e1"))))

    assert r.channel.sent == ["e1"]
    assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
    assert r.claim_state("e1") == DONE
    assert 0 < r.redis.ttl(redis_keys.delivery("e1", "webhook")) <= DONE_TTL
    assert r.history.lines == [("webhook", "e1", delivery.DELIVERED, 1, None)]
    assert r.requeue.retries == r.requeue.dead == []


@pytest.mark.parametrize(("attempt", "delay"), [(None, 0.2), (1, 0.2), (2, 0.4)])
def test_a_retryable_failure_goes_to_the_next_delay_queue_and_frees_the_claim(rig, attempt, delay):
    r = rig({"e1": Result(Outcome.RETRY, "HTTP 503")})
    body = promotion("e1")
    report = r.deliverer.handle(rmq(message(body, attempt)))

    current = attempt or 1
    (retry,) = r.requeue.retries
    assert retry["channel"] == "webhook"
    assert retry["delay"] == delay
    assert delay * 1000 <= retry["expiration_ms"] <= delay * 1000 * (1 + POLICY.jitter)
    assert retry["attempt"] == current + 1
    assert retry["message_id"] == "e1"
    assert retry["body"] == json.dumps(body).encode()
    assert retry["error"] == "HTTP 503"
    assert r.requeue.dead == []
    # Released: the retried copy can claim it again.
    assert r.claim_state("e1") is None
    assert report.retried == 1
    assert r.history.lines == [("webhook", "e1", delivery.RETRYING, current, "HTTP 503")]


def test_a_retry_leaves_only_after_its_retrying_outcome_is_recorded(rig):
    """Else a quick retry, delivered and recorded by another poller, could be overwritten
    by this batch's late "retrying"."""
    r = rig({"e1": Result(Outcome.RETRY, "HTTP 503")})
    recorded_when_sent = []
    retry = r.requeue.retry

    def checking_retry(*args, **kwargs):
        recorded_when_sent.append(list(r.history.lines))
        retry(*args, **kwargs)

    r.requeue.retry = checking_retry
    r.deliverer.handle(rmq(message(promotion("e1")), message(promotion("e2"))))

    assert recorded_when_sent == [
        [("webhook", "e1", delivery.RETRYING, 1, "HTTP 503"), ("webhook", "e2", delivery.DELIVERED, 1, None)]
    ]


def test_the_retried_copy_is_delivered_and_counts_its_attempt(rig):
    r = rig({"e1": Result(Outcome.RETRY, "HTTP 500")})
    r.deliverer.handle(rmq(message(promotion("e1"))))
    r.channel.script.clear()

    r.deliverer.handle(rmq(message(promotion("e1"), attempt=r.requeue.retries[-1]["attempt"])))

    assert r.channel.sent == ["e1", "e1"]
    assert r.claim_state("e1") == DONE
    assert r.history.lines[-1] == ("webhook", "e1", delivery.DELIVERED, 2, None)


def test_the_last_attempt_goes_to_the_dead_letter_queue_as_failed(rig):
    r = rig({"e1": Result(Outcome.RETRY, "HTTP 500")})
    report = r.deliverer.handle(rmq(message(promotion("e1"), attempt=POLICY.max_attempts)))

    assert r.requeue.retries == []
    (dead,) = r.requeue.dead
    assert (dead["channel"], dead["message_id"], dead["attempts"], dead["error"]) == ("webhook", "e1", 3, "HTTP 500")
    assert r.claim_state("e1") == FINISHED
    assert report.failed == 1
    assert r.history.lines == [("webhook", "e1", delivery.FAILED, 3, "HTTP 500")]


def test_a_permanent_failure_is_dead_lettered_on_the_first_attempt(rig):
    r = rig({"e1": Result(Outcome.FAILED, "HTTP 404")})
    r.deliverer.handle(rmq(message(promotion("e1"))))

    assert r.requeue.retries == []
    assert [(d["message_id"], d["attempts"], d["error"]) for d in r.requeue.dead] == [("e1", 1, "HTTP 404")]
    assert r.history.lines == [("webhook", "e1", delivery.FAILED, 1, "HTTP 404")]


def test_gone_drops_the_webhook_and_is_never_retried(rig):
    r = rig({"e1": http_result(410)})
    r.deliverer.handle(rmq(message(promotion("e1"))))

    assert r.channel.gone == ["e1"]
    assert r.requeue.retries == []
    assert [d["message_id"] for d in r.requeue.dead] == ["e1"]
    assert r.claim_state("e1") == FINISHED
    (line,) = r.history.lines
    assert line[2] == delivery.FAILED
    assert "410" in line[4]


def test_a_copy_of_a_finished_event_is_not_sent_again(rig):
    r = rig()
    r.deliverer.handle(rmq(message(promotion("e1"))))

    # The same event again: broker redelivery, or the relay publishing it twice.
    report = r.deliverer.handle(rmq(message(promotion("e1"), redelivered=True), message(promotion("e1"))))

    assert r.channel.sent == ["e1"]
    assert report.duplicates == 2
    assert r.requeue.retries == r.requeue.dead == []
    # The redelivered copy may write the history again, never anything else.
    assert set(r.history.lines) == {("webhook", "e1", delivery.DELIVERED, 1, None)}


def test_an_event_claimed_elsewhere_waits_without_counting_an_attempt(rig):
    r = rig()
    key = redis_keys.delivery("e1", "webhook")
    r.redis.set(key, "pending:someone-else", ex=LEASE)

    report = r.deliverer.handle(rmq(message(promotion("e1"), attempt=2)))

    assert r.channel.sent == []
    assert report.busy == 1
    (retry,) = r.requeue.retries
    assert (retry["delay"], retry["attempt"], retry["message_id"]) == (POLICY.delays[0], 2, "e1")
    assert r.requeue.dead == []
    assert r.redis.get(key) == "pending:someone-else"
    assert r.history.lines == []


def test_a_claim_left_by_a_crash_before_sending_expires_and_the_event_is_sent(rig):
    r = rig()
    key = redis_keys.delivery("e1", "webhook")
    r.redis.set(key, "pending:crashed", ex=LEASE)
    assert 0 < r.redis.ttl(key) <= LEASE
    r.redis.delete(key)  # the lease ran out

    r.deliverer.handle(rmq(message(promotion("e1"), redelivered=True)))

    assert r.channel.sent == ["e1"]
    assert r.claim_state("e1") == DONE


def test_a_claim_in_progress_holds_a_lease_not_a_permanent_lock(rig, redis):
    claims = DeliveryClaims(redis, LEASE, DONE_TTL)
    ((state, token),) = claims.claim(["e1"], "email")
    assert state is Claim.CLAIMED
    key = redis_keys.delivery("e1", "email")
    assert redis.get(key) == token and token.startswith("pending:")
    assert 0 < redis.ttl(key) <= LEASE
    assert claims.claim(["e1"], "email")[0][0] is Claim.BUSY
    assert claims.claim(["e1"], "webhook")[0][0] is Claim.CLAIMED  # channels are independent

    claims.release("e1", "email", "pending:not-mine")
    assert redis.get(key) == token
    claims.release("e1", "email", token)
    assert redis.get(key) is None


def test_one_failing_message_does_not_touch_the_others_of_its_batch(rig):
    r = rig({"retry": Result(Outcome.RETRY, "HTTP 500"), "broken": Result(Outcome.FAILED, "HTTP 400")})
    no_webhook = promotion("no-webhook", webhook_url=None)
    batch = [
        message(promotion("ok-1", student_id=1)),
        message(promotion("retry", student_id=2)),
        message(b"{not json"),
        message(promotion("ok-2", student_id=3)),
        message(promotion("broken", student_id=4)),
        message(no_webhook),
        message(promotion("ok-3", student_id=5)),
    ]

    report = r.deliverer.handle(rmq(*batch))

    assert r.channel.sent == ["ok-1", "retry", "ok-2", "broken", "ok-3"]
    assert (report.delivered, report.retried, report.failed, report.skipped) == (3, 1, 2, 1)
    assert [x["message_id"] for x in r.requeue.retries] == ["retry"]
    assert [x["message_id"] for x in r.requeue.dead] == ["", "broken"]
    assert r.requeue.dead[0]["error"].startswith("unreadable")
    assert {e: r.claim_state(e) for e in ("ok-1", "ok-2", "ok-3", "broken", "retry", "no-webhook")} == {
        "ok-1": DONE,
        "ok-2": DONE,
        "ok-3": DONE,
        "broken": FINISHED,
        "retry": None,
        "no-webhook": None,
    }
    assert sorted((line[1], line[2]) for line in r.history.lines) == [
        ("broken", delivery.FAILED),
        ("ok-1", delivery.DELIVERED),
        ("ok-2", delivery.DELIVERED),
        ("ok-3", delivery.DELIVERED),
        ("retry", delivery.RETRYING),
    ]


def test_events_sent_before_a_crash_in_the_middle_of_a_batch_are_not_sent_again(rig):
    """Killed after two of four sends: those two are done already; the rest wait for their
    lease and then go out once."""
    r = rig(crash_after=2)
    batch = rmq(*(message(promotion(f"e{n}", student_id=n)) for n in range(4)))
    with pytest.raises(SystemExit):
        r.deliverer.handle(batch)
    assert [r.claim_state(f"e{n}") for n in range(2)] == [DONE, DONE]
    assert all(r.claim_state(f"e{n}").startswith("pending:") for n in (2, 3))

    for n in (2, 3):  # their leases run out
        r.redis.delete(redis_keys.delivery(f"e{n}", "webhook"))
    r.channel.crash_after = None
    report = r.deliverer.handle(rmq(*(message(promotion(f"e{n}", student_id=n), redelivered=True) for n in range(4))))

    assert r.channel.sent == ["e0", "e1", "e2", "e3"]
    assert (report.duplicates, report.delivered) == (2, 2)
    # The crash came before the history was written: the copies given back record it.
    assert sorted(line[1:] for line in r.history.lines) == [(f"e{n}", delivery.DELIVERED, 1, None) for n in range(4)]


def test_a_send_recorded_before_the_crash_is_recorded_again_the_same_way(rig):
    """Killed after recording, before acknowledging: the copy given back (redelivered)
    writes the same outcome again; a copy the relay published twice writes nothing."""
    r = rig()
    r.deliverer.handle(rmq(message(promotion("e1"), attempt=2)))

    again = r.deliverer.handle(rmq(message(promotion("e1"), attempt=2, redelivered=True)))
    twice = r.deliverer.handle(rmq(message(promotion("e1"))))

    assert r.channel.sent == ["e1"]
    assert (again.duplicates, twice.duplicates) == (1, 1)
    assert r.history.lines == [("webhook", "e1", delivery.DELIVERED, 2, None)] * 2


def test_a_copy_of_an_event_that_was_never_sent_records_nothing(rig):
    r = rig({"e1": Result(Outcome.FAILED, "HTTP 404")})
    r.deliverer.handle(rmq(message(promotion("e1"))))

    report = r.deliverer.handle(rmq(message(promotion("e1"), redelivered=True)))

    assert r.channel.sent == ["e1"]
    assert report.duplicates == 1
    assert r.history.lines == [("webhook", "e1", delivery.FAILED, 1, "HTTP 404")]
    assert len(r.requeue.dead) == 1


def test_a_history_outage_does_not_undo_or_repeat_deliveries(rig, caplog):
    r = rig()
    r.history.broken = True
    report = r.deliverer.handle(rmq(message(promotion("e1"))))

    assert report.delivered == 1
    assert r.claim_state("e1") == DONE
    assert "could not record" in caplog.text


def test_the_done_marker_outlives_the_whole_retry_window_and_the_lease_outlives_a_send():
    built = wiring.deliverer(ScriptedChannel())
    assert built.claims.done_ttl_seconds > built.policy.retry_window_seconds()
    assert built.claims.lease_seconds == wiring.CLAIM_LEASE_SECONDS > TIMEOUT_SECONDS
    default = RetryPolicy(Settings.from_env({}).retry_delays, Settings.from_env({}).max_attempts)
    assert math.ceil(default.retry_window_seconds()) > 24 * 3600  # hours of retries, as Standard Webhooks


# -- email -----------------------------------------------------------------------------


def parsed(event: dict, event_id: str = "e1") -> Any:
    raw = compose(event, SENDER, event_id).as_bytes()
    return message_from_bytes(raw, policy=policy.default), raw


def test_the_email_has_the_contract_subject_body_and_a_message_id_from_the_event():
    mail, _ = parsed(promotion("4f1c2d"), "4f1c2d")

    assert mail["From"] == SENDER
    assert mail["To"] == "student79@example.edu"
    assert mail["Subject"] == f"Enrollment Notification for {CLASS_NAME}"
    assert mail["Message-ID"] == "<4f1c2d@titan-enrollment>"
    assert mail.get_body(("plain",)).get_content().strip() == MESSAGE


def test_copies_of_one_event_share_a_message_id_and_events_differ():
    assert parsed(promotion("a"), "a")[0]["Message-ID"] == parsed(promotion("a"), "a")[0]["Message-ID"]
    assert parsed(promotion("a"), "a")[0]["Message-ID"] != parsed(promotion("b"), "b")[0]["Message-ID"]


INJECTIONS = [
    "\r\nBcc: evil@attacker.example",
    "\nBcc: evil@attacker.example",
    "\rBcc: evil@attacker.example",
    "\r\nX-Injected: yes\r\n\r\nforged body",
    "\x00\x0b\x0c\x1b\x7f\r\nX-Injected: yes",
    "\u2028X-Injected: yes",
]
EXPECTED_HEADERS = ["From", "To", "Subject", "Message-ID", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]


@pytest.mark.parametrize("where", ["class_name", "email", "event_id"])
@pytest.mark.parametrize("injection", INJECTIONS)
def test_cr_lf_in_any_field_cannot_add_a_header_or_a_recipient(where, injection):
    event = promotion("e1")
    event_id = "e1"
    if where == "event_id":
        event_id += injection
    elif where == "email":
        event["email"] = "student79@example.edu" + injection
    else:
        event["class_name"] = CLASS_NAME + injection

    mail, _ = parsed(event, event_id)

    assert mail.keys() == EXPECTED_HEADERS
    assert mail["Bcc"] is None and mail["X-Injected"] is None
    for name in EXPECTED_HEADERS:
        assert "\r" not in str(mail[name]) and "\n" not in str(mail[name])
    assert [a for _, a in email.utils.getaddresses(mail.get_all("To"))] == ["student79@example.edu"]
    assert mail.get_body(("plain",)).get_content().strip() == MESSAGE


def test_very_long_values_stay_within_smtp_line_limits():
    event = promotion("e1", class_name="C" * 10_000, email=("a" * 5_000) + "@example.edu", message="m" * 20_000)
    mail, raw = parsed(event, "e" * 5_000)

    assert mail.keys() == EXPECTED_HEADERS
    assert max(len(line) for line in raw.splitlines()) <= 998
    assert mail["Subject"].startswith("Enrollment Notification for CCC")
    assert len(mail["Subject"]) <= len("Enrollment Notification for ") + 200
    assert len(mail["Message-ID"]) <= 100 + len("<@titan-enrollment>")
    assert mail.get_body(("plain",)).get_content().strip() == "m" * 20_000


def test_header_text_flattens_control_characters_and_whitespace_runs():
    assert header_text("a\r\nb\tc\x00d   e") == "a b c d e"
    assert header_text("x" * 500) == "x" * 200
    assert header_text(None) == "None"


class FakeSmtp:
    def __init__(self, results: list[Result]) -> None:
        self.results = results
        self.batches: list[list[Any]] = []

    def send_batch(self, messages, on_delivered=None) -> list[Result]:
        self.batches.append(messages)
        results = self.results[: len(messages)]
        for index, result in enumerate(results):
            if result.outcome is Outcome.DELIVERED and on_delivered:
                on_delivered([index])
        return results


def job(event: dict) -> Job:
    properties, raw, redelivered = message(event)
    (parsed_message,) = rmq_event.parse(rmq((properties, raw, redelivered), queue="notifications.email"))
    return Job(parsed_message, event, event["event_id"])


def test_email_is_wanted_only_for_events_with_an_address():
    channel = EmailChannel(FakeSmtp([]), SENDER)
    assert channel.wants(promotion("e1"))
    assert not channel.wants(promotion("e1", email=None))
    assert not channel.wants(promotion("e1", email=""))
    assert not channel.wants({k: v for k, v in promotion("e1").items() if k != "email"})


def test_an_email_that_cannot_be_composed_fails_alone():
    smtp = FakeSmtp([Result(Outcome.DELIVERED), Result(Outcome.DELIVERED)])
    channel = EmailChannel(smtp, SENDER)
    broken = {k: v for k, v in promotion("bad").items() if k != "email"}
    jobs = [job(promotion("a")), job(broken), job(promotion("b"))]
    delivered: list[str] = []

    results = channel.send(jobs, lambda done: delivered.extend(j.event_id for j in done))

    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.FAILED, Outcome.DELIVERED]
    assert len(smtp.batches) == 1 and len(smtp.batches[0]) == 2
    assert delivered == ["a", "b"]


class CollectingSmtp:
    """aiosmtpd handler: 550 for nobody@, 451 for later@, accepts everyone else."""

    def __init__(self) -> None:
        self.peers: set[tuple] = set()
        self.accepted: list[tuple[list[str], Any]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.peers.add(session.peer)
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.accepted.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[CollectingSmtp, int]]:
    handler = CollectingSmtp()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_one_smtp_connection_carries_a_whole_batch(smtp_server):
    handler, port = smtp_server
    addresses = ["a@example.edu", "nobody@example.edu", "b@example.edu", "later@example.edu", "c@example.edu"]
    mails = [compose(promotion(f"e{n}", email=a), SENDER, f"e{n}") for n, a in enumerate(addresses)]
    delivered: list[int] = []

    results = SmtpSender("127.0.0.1", port).send_batch(mails, delivered.extend)

    assert [r.outcome for r in results] == [
        Outcome.DELIVERED,
        Outcome.FAILED,
        Outcome.DELIVERED,
        Outcome.RETRY,
        Outcome.DELIVERED,
    ]
    assert "550" in results[1].error and "451" in results[3].error
    assert delivered == [0, 2, 4]
    assert len(handler.peers) == 1
    assert [rcpt for rcpt, _ in handler.accepted] == [["a@example.edu"], ["b@example.edu"], ["c@example.edu"]]
    assert handler.accepted[0][1]["Message-ID"] == "<e0@titan-enrollment>"


def test_an_unreachable_smtp_server_makes_every_message_a_retry():
    mails = [compose(promotion(f"e{n}"), SENDER, f"e{n}") for n in range(3)]
    results = SmtpSender("127.0.0.1", free_port(), timeout=2).send_batch(mails)
    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert all("SMTP connection failed" in r.error for r in results)


# -- webhook ---------------------------------------------------------------------------


def test_the_webhook_payload_carries_the_event_but_not_the_contact_details():
    body = json.loads(payload(promotion("e1")))
    assert body == {
        "type": "enrollment.promoted",
        "event_id": "e1",
        "occurred_at": "2026-12-03T18:00:00Z",
        "student_id": 79,
        "class_id": 4,
        "class_name": CLASS_NAME,
        "section": 1,
        "message": MESSAGE,
    }


def test_standard_webhooks_headers_verify_with_the_subscription_secret():
    secret = new_secret()
    body = payload(promotion("e1"))
    headers = signed_headers(secret, "e1", body)

    assert headers["webhook-id"] == "e1"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert re.fullmatch(r"v1,[A-Za-z0-9+/=]+", headers["webhook-signature"])
    assert Webhook(secret).verify(body, headers) == json.loads(body)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"79", b"80"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "e2"})
    stale = signed_headers(secret, "e1", body, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


class FakeWebhookClient:
    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.requests: list[WebhookRequest] = []

    def send_batch(self, requests, on_delivered=None) -> list[Result]:
        self.requests.extend(requests)
        results = [http_result(self.status) for _ in requests]
        for index, result in enumerate(results):
            if result.outcome is Outcome.DELIVERED and on_delivered:
                on_delivered([index])
        return results


def subscribe(store: RedisSubscriptions, student_id: int, webhook_url: str | None, email: str | None = None) -> str:
    secret = new_secret()
    store.add(Subscription(student_id, 4, email, webhook_url, ("enrollment.promoted",), "2026-12-01T00:00:00Z", secret))
    return secret


def test_the_webhook_channel_looks_up_a_whole_batch_in_one_round_trip(redis, monkeypatch):
    store = RedisSubscriptions(redis)
    for student in range(1, 51):
        subscribe(store, student, HOOK)
    trips = []
    execute = redis.execute_command
    monkeypatch.setattr(redis, "execute_command", lambda *a, **k: trips.append(a[0]) or execute(*a, **k))
    pipeline = redis.pipeline

    def counted_pipeline(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        run = pipe.execute
        pipe.execute = lambda *a, **k: trips.append("pipeline") or run(*a, **k)
        return pipe

    monkeypatch.setattr(redis, "pipeline", counted_pipeline)
    jobs = [job(promotion(f"e{s}", student_id=s)) for s in range(1, 52)]  # the last one unsubscribed

    results = WebhookChannel(FakeWebhookClient(), store).send(jobs, lambda done: None)

    assert trips == ["pipeline"]
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 50 + [Outcome.SKIPPED]
    assert store.get_many([(1, 4), (51, 4), (2, 4)]) == [store.get(1, 4), None, store.get(2, 4)]


def test_the_webhook_channel_signs_with_each_subscription_secret_and_skips_stale_events(redis):
    store = RedisSubscriptions(redis)
    secrets = {s: subscribe(store, s, HOOK) for s in (1, 2)}
    subscribe(store, 3, "https://hooks.example.edu/moved")
    client = FakeWebhookClient()
    channel = WebhookChannel(client, store)
    jobs = [
        job(promotion("e1", student_id=1)),
        job(promotion("e2", student_id=2)),
        job(promotion("e3", student_id=3)),  # the subscription now points elsewhere
        job(promotion("e4", student_id=4)),  # unsubscribed since
    ]
    delivered: list[str] = []

    results = channel.send(jobs, lambda done: delivered.extend(j.event_id for j in done))

    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.DELIVERED, Outcome.SKIPPED, Outcome.SKIPPED]
    assert delivered == ["e1", "e2"]
    assert [r.url for r in client.requests] == [HOOK, HOOK]
    for request, student in zip(client.requests, (1, 2), strict=True):
        assert Webhook(secrets[student]).verify(request.body, request.headers)["student_id"] == student
        with pytest.raises(WebhookVerificationError):
            Webhook(secrets[3 - student]).verify(request.body, request.headers)


def test_a_malformed_event_fails_alone_in_a_real_webhook_batch(redis):
    store = RedisSubscriptions(redis)
    subscribe(store, 1, HOOK)
    requeue, history = FakeRequeue(), FakeHistory()
    client = FakeWebhookClient()
    deliverer = Deliverer(
        WebhookChannel(client, store), DeliveryClaims(redis, LEASE, DONE_TTL), requeue, history, POLICY
    )
    no_student = {k: v for k, v in promotion("no-student").items() if k != "student_id"}
    not_an_object = (pika.BasicProperties(message_id="a-string", headers={}), b'"a string"', False)

    report = deliverer.handle(rmq(message(promotion("ok", student_id=1)), message(no_student), not_an_object))

    assert (report.delivered, report.failed) == (1, 2)
    assert len(client.requests) == 1
    assert sorted(d["message_id"] for d in requeue.dead) == ["a-string", "no-student"]
    assert redis.get(redis_keys.delivery("ok", "webhook")) == DONE


def test_gone_removes_only_the_webhook_of_that_subscription(redis):
    store = RedisSubscriptions(redis)
    subscribe(store, 1, HOOK, email="student1@example.edu")
    subscribe(store, 2, HOOK)
    channel = WebhookChannel(FakeWebhookClient(), store)

    channel.on_gone(job(promotion("e1", student_id=1)))
    channel.on_gone(job(promotion("e2", student_id=2)))

    kept = store.get(1, 4)
    assert (kept.email, kept.webhook_url) == ("student1@example.edu", None)
    assert store.get(2, 4) is None


# -- the HTTP client against a real local server ----------------------------------------


class ScriptedReceiver(BaseHTTPRequestHandler):
    """Answers by path: /status/<code>[?retry-after=<v>], /slow/<seconds>, /redirect."""

    hits: list[tuple[str, dict]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "slow":
            with self.server.lock:
                self.server.busy += 1
                self.server.most_busy = max(self.server.most_busy, self.server.busy)
            time.sleep(float(parts[1]))
            with self.server.lock:
                self.server.busy -= 1
            status, extra = 200, {}
        elif parts[0] == "redirect":
            status, extra = 302, {"Location": "/status/200"}
        else:
            status = int(parts[1])
            extra = {"Retry-After": self.path.split("retry-after=")[1]} if "retry-after=" in self.path else {}
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class Receiver(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a whole batch arrives at once.
    request_queue_size = 128
    daemon_threads = True


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    started: list[Receiver] = []

    def start() -> Receiver:
        server = Receiver(("127.0.0.1", 0), ScriptedReceiver)
        server.hits, server.lock, server.busy, server.most_busy = [], threading.Lock(), 0, 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receivers) -> Receiver:
    return receivers()


def test_the_client_classifies_real_responses_and_follows_no_redirect(receiver):
    base = f"http://localhost:{receiver.server_address[1]}"
    paths = ["/status/204", "/status/500", "/status/429?retry-after=7", "/redirect", "/status/410", "/status/404"]
    client = WebhookClient(allow_private=True)
    delivered: list[int] = []
    try:
        results = client.send_batch(
            [WebhookRequest(base + p, b"{}", {"webhook-id": "e1"}) for p in paths], delivered.extend
        )
    finally:
        client.close()

    assert [r.outcome for r in results] == [
        Outcome.DELIVERED,
        Outcome.RETRY,
        Outcome.RETRY,
        Outcome.FAILED,
        Outcome.GONE,
        Outcome.FAILED,
    ]
    assert results[2].retry_after == 7
    assert delivered == [0]
    assert sorted(path for path, _ in receiver.hits) == sorted(paths)  # the redirect was not followed
    for _, headers in receiver.hits:
        assert headers["host"] == f"localhost:{receiver.server_address[1]}"
        assert headers["content-type"] == "application/json"
        assert headers["webhook-id"] == "e1"


def test_an_address_lookup_that_hangs_is_retried_within_the_time_limit(receiver, monkeypatch):
    from chalicelib.adapters import webhook_client, webhook_target

    check = webhook_target.check

    def hanging(url: str, allow_private: bool):
        time.sleep(1.0)
        return check(url, allow_private)

    monkeypatch.setattr(webhook_client, "TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(webhook_target, "check", hanging)
    client = WebhookClient(allow_private=True)
    try:
        (result,) = client.send_batch(
            [WebhookRequest(f"http://127.0.0.1:{receiver.server_address[1]}/status/200", b"{}", {})]
        )
    finally:
        client.close()

    assert (result.outcome, result.error) == (Outcome.RETRY, "address lookup timed out")
    assert receiver.hits == []


def test_a_slow_endpoint_does_not_hold_back_the_rest_of_the_batch(receiver):
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    requests = [WebhookRequest(f"{base}/slow/1.0", b"{}", {})] + [
        WebhookRequest(f"{base}/status/200", b"{}", {}) for _ in range(20)
    ]
    client = WebhookClient(allow_private=True)
    done_at: dict[int, float] = {}
    started = time.monotonic()
    try:
        results = client.send_batch(
            requests, lambda done: [done_at.setdefault(i, time.monotonic() - started) for i in done]
        )
    finally:
        client.close()

    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert done_at[0] >= 1.0
    # The fast ones were done (and marked) long before the slow one answered.
    assert max(done_at[i] for i in range(1, 21)) < 0.8


def test_a_slow_receiver_gets_a_few_requests_at_a_time_and_the_others_do_not_wait(receivers):
    slow, fast = receivers(), receivers()
    requests = [WebhookRequest(f"http://127.0.0.1:{slow.server_address[1]}/slow/0.4", b"{}", {}) for _ in range(20)]
    requests += [WebhookRequest(f"http://127.0.0.1:{fast.server_address[1]}/status/200", b"{}", {}) for _ in range(20)]
    client = WebhookClient(allow_private=True)
    done_at: dict[int, float] = {}
    started = time.monotonic()
    try:
        results = client.send_batch(
            requests, lambda done: [done_at.setdefault(i, time.monotonic() - started) for i in done]
        )
    finally:
        client.close()

    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert slow.most_busy == PER_HOST_REQUESTS  # 20 requests, in two waves of 10
    assert max(done_at[i] for i in range(20)) >= 0.8
    assert max(done_at[i] for i in range(20, 40)) < 0.4


def test_connection_errors_and_refused_targets():
    closed = free_port()
    client = WebhookClient(allow_private=False)
    try:
        results = client.send_batch(
            [
                WebhookRequest(f"http://127.0.0.1:{closed}/hook", b"{}", {}),
                WebhookRequest("http://no-such-host.invalid/hook", b"{}", {}),
            ]
        )
    finally:
        client.close()
    assert results[0].outcome is Outcome.FAILED and "refused" in results[0].error  # private target
    assert results[1].outcome is Outcome.RETRY  # may resolve later

    client = WebhookClient(allow_private=True)
    try:
        (result,) = client.send_batch([WebhookRequest(f"http://127.0.0.1:{closed}/hook", b"{}", {})])
    finally:
        client.close()
    assert result.outcome is Outcome.RETRY and "connection error" in result.error


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("", None), ("120", 120.0), ("0", 0.0), ("-5", 0.0), ("1.5", 1.5), ("soon", None)],
)
def test_retry_after_in_seconds(value, seconds):
    assert _retry_after(value) == seconds


def test_retry_after_as_an_http_date():
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 80 <= _retry_after(later) <= 91
    earlier = email.utils.format_datetime(datetime.now(UTC) - timedelta(seconds=90), usegmt=True)
    assert _retry_after(earlier) == 0.0


# -- result classification and the retry policy ----------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (301, Outcome.FAILED),
        (302, Outcome.FAILED),
        (304, Outcome.FAILED),
        (307, Outcome.FAILED),
        (308, Outcome.FAILED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (403, Outcome.FAILED),
        (404, Outcome.FAILED),
        (405, Outcome.FAILED),
        (408, Outcome.RETRY),
        (409, Outcome.FAILED),
        (410, Outcome.GONE),
        (413, Outcome.FAILED),
        (422, Outcome.FAILED),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (501, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
    ],
)
def test_http_status_classification(status, outcome):
    result = http_result(status)
    assert result.outcome is outcome
    if outcome is not Outcome.DELIVERED:
        assert str(status) in result.error


def test_retry_after_travels_with_retryable_results():
    assert http_result(429, 30.0).retry_after == 30.0
    assert http_result(503, 12.0).retry_after == 12.0
    assert http_result(200, 30.0).retry_after is None


def test_queue_delay_follows_the_schedule_then_stops():
    policy = RetryPolicy((5, 300, 1800), max_attempts=6)
    assert [policy.queue_delay(a) for a in range(1, 7)] == [5, 300, 1800, 1800, 1800, None]
    assert RetryPolicy((0.2, 0.4), 3).queue_delay(3) is None
    assert RetryPolicy((), 3).queue_delay(1) is None
    assert RetryPolicy((5,), 1).queue_delay(1) is None


@pytest.mark.parametrize(
    ("attempt", "retry_after", "delay"),
    [(1, 3, 5), (1, 5, 5), (1, 6, 300), (1, 299.5, 300), (1, 301, 1800), (1, 10**6, 1800), (2, 10, 300), (3, 1, 1800)],
)
def test_retry_after_picks_the_shortest_delay_queue_that_waits_long_enough(attempt, retry_after, delay):
    assert RetryPolicy((5, 300, 1800), max_attempts=8).queue_delay(attempt, retry_after) == delay


def test_expiration_jitter_stretches_the_delay_and_never_shortens_it():
    policy = RetryPolicy((0.2, 5), 3, jitter=0.2)
    samples = [policy.expiration_ms(5) for _ in range(2_000)]
    assert min(samples) >= 5_000 and max(samples) <= 6_000
    assert len(set(samples)) > 100  # spread out, so retries of one outage do not return together
    assert RetryPolicy((1,), 2, jitter=0).expiration_ms(1) == 1_000
    assert policy.expiration_ms(0) == 1  # a TTL of zero would mean "expire at once" on some brokers


def test_the_retry_window_covers_every_delay_with_its_jitter():
    policy = RetryPolicy((0.2, 0.4), 3, jitter=0.2)
    assert policy.retry_window_seconds() == pytest.approx((0.2 + 0.4 + 0.4) * 1.2)
