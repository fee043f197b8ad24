"""Hostile values in every field that reaches an email header (issue 8, item 3).

class_name, email and the event id come from an event; From from configuration. With CR,
LF, other line breaks and control characters, encoded words, address lists and very long
values, a notification keeps exactly its own headers with the expected values, one
recipient, and lines SMTP accepts: checked on the composed message and again on what a
real SMTP server (aiosmtpd, in-process) receives.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from chalicelib.adapters.smtp import SmtpSender
from chalicelib.domain.delivery import Outcome, Result
from chalicelib.handlers.delivery import Job
from chalicelib.handlers.email import EmailChannel, compose
from tests.support.processes import free_port

SENDER = "Titan Enrollment <notifications@titan-enrollment.example>"
CLASS_NAME = "Introduction to Computer Science"
ADDRESS = "student79@example.edu"
SUBJECT_PREFIX = "Enrollment Notification for "
HEADERS = ["From", "To", "Subject", "Message-ID", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
MESSAGE_ID = re.compile(r"^<[A-Za-z0-9._-]{1,100}@titan-enrollment>$")
SMTP_LINE = 998

INJECTIONS = {
    "crlf": "\r\nBcc: evil@attacker.example",
    "lf": "\nBcc: evil@attacker.example",
    "cr": "\rBcc: evil@attacker.example",
    "header and body": "\r\nX-Injected: yes\r\n\r\nforged body",
    "folded continuation": "\r\n Bcc: evil@attacker.example",
    "controls": "\x00\x0b\x0c\x1b\x7f\r\nX-Injected: yes",
    "unicode line separators": "\u2028X-Injected: yes\u2029Bcc: evil@attacker.example\x85X-Other: 1",
    "encoded word": "=?utf-8?q?=0D=0ABcc:_evil@attacker.example?=",
    "smtp dot line": "\r\n.\r\nMAIL FROM:<evil@attacker.example>",
}


def event(**fields: Any) -> dict:
    return {
        "type": "enrollment.promoted",
        "event_id": "4f1c2d",
        "student_id": 79,
        "class_id": 4,
        "class_name": CLASS_NAME,
        "section": 1,
        "message": f"You have been enrolled in {CLASS_NAME}",
        "email": ADDRESS,
        **fields,
    }


def flattened(value: str) -> str:
    """What a header may show of a value: control characters and line breaks as single
    spaces, and encoded-word openers ("=?") broken up so that nothing decodes them."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", value).replace("=?", "= ?").split())


def unfolded(value: object) -> str:
    return " ".join(str(value).split())


def parse(raw: bytes) -> Any:
    return message_from_bytes(raw, policy=policy.default)


def recipients(mail: Any) -> list[str]:
    return [address for _, address in email.utils.getaddresses(mail.get_all("To") or [])]


def assert_only_its_own_headers(mail: Any, raw: bytes) -> None:
    assert mail.keys() == HEADERS
    assert mail["Bcc"] is None and mail["Cc"] is None and mail["X-Injected"] is None
    assert recipients(mail) == [ADDRESS]
    assert MESSAGE_ID.match(str(mail["Message-ID"])), mail["Message-ID"]
    assert max(len(line) for line in raw.split(b"\r\n") for line in line.split(b"\n")) <= SMTP_LINE


def composed(fields: dict, event_id: str = "4f1c2d", sender: str = SENDER) -> tuple[Any, bytes]:
    raw = compose(event(**fields), sender, event_id).as_bytes()
    return parse(raw), raw


# -- composing ---------------------------------------------------------------------------


@pytest.mark.parametrize("injection", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_a_hostile_class_name_stays_inside_the_subject(injection):
    mail, raw = composed({"class_name": CLASS_NAME + injection})

    assert_only_its_own_headers(mail, raw)
    assert unfolded(mail["Subject"]) == SUBJECT_PREFIX + flattened(CLASS_NAME + injection)


@pytest.mark.parametrize("injection", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_a_hostile_address_reaches_one_recipient_or_none(injection):
    try:
        mail, raw = composed({"email": ADDRESS + injection})
    except ValueError:
        return  # refused: the channel fails that message alone (see below)
    assert_only_its_own_headers(mail, raw)
    assert mail["Subject"] == SUBJECT_PREFIX + CLASS_NAME


@pytest.mark.parametrize(
    "value",
    [
        f"{ADDRESS}, evil@attacker.example",
        f"{ADDRESS},evil@attacker.example",
        f"{ADDRESS}; evil@attacker.example",
        f"Student <{ADDRESS}>, Evil <evil@attacker.example>",
        "undisclosed-recipients:;",
        "",
    ],
)
def test_an_address_list_is_refused_not_sent_to_each(value):
    try:
        mail, _ = composed({"email": value})
    except ValueError:
        return
    assert len(recipients(mail)) == 1
    assert "evil@attacker.example" not in recipients(mail)


@pytest.mark.parametrize("injection", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_a_hostile_event_id_gives_a_well_formed_message_id(injection):
    mail, raw = composed({}, event_id="4f1c2d" + injection)

    assert_only_its_own_headers(mail, raw)
    again, _ = composed({}, event_id="4f1c2d" + injection)
    plain, _ = composed({}, event_id="4f1c2d")
    assert again["Message-ID"] == mail["Message-ID"], "copies of one event share their Message-ID"
    assert plain["Message-ID"] != mail["Message-ID"], "different events do not"


def test_event_ids_that_differ_only_in_unsafe_characters_keep_distinct_message_ids():
    ids = ["a:b", "a:c", "a b", "a<b>", "a@b", "ab"]
    message_ids = {str(composed({}, event_id=event_id)[0]["Message-ID"]) for event_id in ids}
    assert len(message_ids) == len(ids)
    assert all(MESSAGE_ID.match(m) for m in message_ids), message_ids


@pytest.mark.parametrize("injection", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_a_hostile_sender_is_refused_or_stays_inside_from(injection):
    sender = "Titan" + injection + " <notifications@titan-enrollment.example>"
    if re.search(r"[\r\n\x85\u2028\u2029]", injection):
        # Configuration with a line break in it: refused, so the channel fails the message.
        with pytest.raises(ValueError):
            compose(event(), sender, "4f1c2d")
        return
    mail, raw = composed({}, sender=sender)
    assert_only_its_own_headers(mail, raw)


def test_very_long_values_are_bounded_and_fold_within_smtp_limits():
    long_sender = "Titan Enrollment " + "Office " * 300 + "<notifications@titan-enrollment.example>"
    mail, raw = composed(
        {"class_name": "C" * 10_000, "email": "a" * 5_000 + "@example.edu", "message": "m" * 20_000},
        event_id="e" * 5_000,
        sender=long_sender,
    )

    assert mail.keys() == HEADERS
    assert len(mail["Subject"]) <= len(SUBJECT_PREFIX) + 200
    assert len(str(mail["To"])) <= 320
    assert MESSAGE_ID.match(str(mail["Message-ID"]))
    assert email.utils.parseaddr(str(mail["From"]))[1] == "notifications@titan-enrollment.example"
    assert max(len(line) for line in raw.splitlines()) <= SMTP_LINE


def test_long_words_in_every_header_field_at_once_still_give_only_its_own_headers():
    words = " ".join(["word"] * 2_000)
    mail, raw = composed({"class_name": words + INJECTIONS["crlf"]}, event_id=words)

    assert mail.keys() == HEADERS
    assert unfolded(mail["Subject"]) == SUBJECT_PREFIX + words[:200].strip()
    assert MESSAGE_ID.match(str(mail["Message-ID"]))
    assert max(len(line) for line in raw.splitlines()) <= SMTP_LINE


# -- sending to a real SMTP server -----------------------------------------------------------


class Recorder:
    """aiosmtpd handler: keeps each envelope as the server saw it."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def test_a_real_smtp_server_receives_one_recipient_and_only_the_expected_headers(smtp):
    recorder, port = smtp
    cases = []
    for name, injection in INJECTIONS.items():
        cases.append((f"class_name {name}", event(class_name=CLASS_NAME + injection), "4f1c2d"))
        cases.append((f"event id {name}", event(), "4f1c2d" + injection))
        try:
            compose(event(email=ADDRESS + injection), SENDER, "4f1c2d")
            cases.append((f"email {name}", event(email=ADDRESS + injection), "4f1c2d"))
        except ValueError:
            pass
    cases.append(("long values", event(class_name="C" * 10_000, email=ADDRESS), "e" * 5_000))
    messages = [compose(e, SENDER, event_id) for _, e, event_id in cases]

    results = SmtpSender("127.0.0.1", port).send_batch(messages)

    assert [r.outcome for r in results] == [Outcome.DELIVERED] * len(cases)
    assert len(recorder.envelopes) == len(cases)
    for (label, sent, _), (mail_from, rcpt_tos, content) in zip(cases, recorder.envelopes, strict=True):
        assert mail_from == "notifications@titan-enrollment.example", label
        assert rcpt_tos == [ADDRESS], label
        received = parse(content)
        assert received.keys() == HEADERS, label
        assert unfolded(received["Subject"]) == SUBJECT_PREFIX + flattened(sent["class_name"])[:200].strip(), label
        assert MESSAGE_ID.match(str(received["Message-ID"])), label
        assert b"evil@attacker.example" not in content.split(b"\r\n\r\n", 1)[0] or "class_name" in label, label
        assert received.get_body(("plain",)).get_content().strip() == sent["message"], label


class FakeSender:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def send_batch(self, messages, on_delivered=None) -> list[Result]:
        self.batches.append(messages)
        return [Result(Outcome.DELIVERED)] * len(messages)


def test_a_message_that_cannot_be_composed_safely_fails_alone_and_is_never_sent():
    sender = FakeSender()
    channel = EmailChannel(sender, SENDER)
    listed = event(email=f"{ADDRESS}, evil@attacker.example", event_id="list")
    jobs = [Job(None, event(event_id="ok"), "ok"), Job(None, listed, "list")]

    results = channel.send(jobs, lambda done: None)

    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.FAILED]
    assert [recipients(m) for batch in sender.batches for m in batch] == [[ADDRESS]]
    broken = EmailChannel(FakeSender(), "Titan\r\nBcc: evil@attacker.example <n@titan-enrollment.example>")
    assert [r.outcome for r in broken.send(jobs, lambda done: None)] == [Outcome.FAILED, Outcome.FAILED]
    assert broken.sender.batches in ([], [[]])
