"""Email handler: Amazon MQ (aws:rmq) batches from notifications.email, sent over SMTP."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr
from functools import lru_cache

from chalicelib.adapters.smtp import SmtpSender
from chalicelib.config import get_settings
from chalicelib.domain.delivery import Outcome, Result
from chalicelib.handlers import wiring
from chalicelib.handlers.delivery import BatchReport, Deliverer, Job

CHANNEL = "email"
MAX_HEADER_TEXT = 200
MAX_ADDRESS = 320
# One mailbox: no display name, list, group, quoting or comment; a plain domain if any.
_RECIPIENT = re.compile(r"[^\s,;:<>()\[\]\"\\@]+(@[\w.-]+)?")
# An event id that may stand in a Message-ID as it is; any other is replaced by its digest.
_ID_LEFT = re.compile(r"[A-Za-z0-9._-]{1,100}")


def header_text(value: object, limit: int = MAX_HEADER_TEXT) -> str:
    """Header-safe text: CR, LF and other control characters become spaces, so no
    field of an event can start a header of its own. "=?" is broken up too: the email
    package decodes RFC 2047 encoded words in the values it is given, and an encoded
    CR LF would start a header after all."""
    text = "".join(" " if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in str(value))
    return " ".join(text.replace("=?", "= ?").split())[:limit]


def recipient(value: object) -> str:
    """The one mailbox a notification goes to. A subscription's address has no spaces, so
    anything after the first is dropped; what is left must name exactly one mailbox."""
    address = header_text(value, MAX_ADDRESS).partition(" ")[0]
    if not _RECIPIENT.fullmatch(address):
        raise ValueError("email must name exactly one mailbox")
    return address


def message_id(event_id: object) -> str:
    """The same for every copy of an event and different for different events."""
    text = str(event_id)
    left = text if _ID_LEFT.fullmatch(text) else hashlib.sha256(text.encode()).hexdigest()
    return f"<{left}@titan-enrollment>"


def compose(event: dict, sender: str, event_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr(("", recipient(event["email"])))
    message["Subject"] = f"Enrollment Notification for {header_text(event.get('class_name', ''))}"
    message["Message-ID"] = message_id(event_id)
    message.set_content(str(event.get("message", "")))
    # The last word: whatever the email package made of the values, no header may span lines.
    for name, value in message.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"the {name} header would contain a line break")
    return message


class EmailChannel:
    name = CHANNEL

    def __init__(self, sender: SmtpSender, from_address: str) -> None:
        self.sender = sender
        self.from_address = from_address

    def wants(self, event: dict) -> bool:
        return bool(event.get("email"))

    def send(self, jobs: list[Job], delivered: Callable[[list[Job]], None]) -> list[Result]:
        composed: list[EmailMessage | None] = []
        for job in jobs:
            try:
                composed.append(compose(job.event, self.from_address, job.event_id))
            except (ValueError, TypeError, KeyError):
                composed.append(None)
        sendable = [(j, m) for j, m in zip(jobs, composed, strict=True) if m is not None]
        sent = iter(
            self.sender.send_batch([m for _, m in sendable], lambda done: delivered([sendable[i][0] for i in done]))
        )
        return [next(sent) if m is not None else Result(Outcome.FAILED, "invalid email message") for m in composed]

    def on_gone(self, job: Job) -> None:
        return None

    def close(self) -> None:
        return None  # one SMTP connection per batch, closed with it


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    settings = get_settings()
    channel = EmailChannel(SmtpSender(settings.smtp_host, settings.smtp_port), settings.smtp_from)
    return wiring.deliverer(channel)


def handle(event: dict) -> BatchReport:
    return deliverer().handle(event)


def close() -> None:
    if deliverer.cache_info().currsize:
        deliverer().close()
