"""Email handler: Amazon MQ (aws:rmq) batches from notifications.email, sent over SMTP."""

from __future__ import annotations

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


def header_text(value: object, limit: int = MAX_HEADER_TEXT) -> str:
    """Header-safe text: CR, LF and other control characters become spaces, so no
    field of an event can start a header of its own."""
    text = "".join(" " if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in str(value))
    return " ".join(text.split())[:limit]


def compose(event: dict, sender: str, event_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr(("", header_text(event["email"], 320)))
    message["Subject"] = f"Enrollment Notification for {header_text(event.get('class_name', ''))}"
    message["Message-ID"] = f"<{header_text(event_id, 100).replace(' ', '')}@titan-enrollment>"
    message.set_content(str(event.get("message", "")))
    return message


class EmailChannel:
    name = CHANNEL

    def __init__(self, sender: SmtpSender, from_address: str) -> None:
        self.sender = sender
        self.from_address = from_address

    def wants(self, event: dict) -> bool:
        return bool(event.get("email"))

    def send(self, jobs: list[Job], delivered: Callable[[Job], None]) -> list[Result]:
        composed: list[EmailMessage | None] = []
        for job in jobs:
            try:
                composed.append(compose(job.event, self.from_address, job.event_id))
            except (ValueError, TypeError, KeyError):
                composed.append(None)
        sendable = [(j, m) for j, m in zip(jobs, composed, strict=True) if m is not None]
        sent = iter(self.sender.send_batch([m for _, m in sendable], lambda i: delivered(sendable[i][0])))
        return [next(sent) if m is not None else Result(Outcome.FAILED, "invalid email message") for m in composed]

    def on_gone(self, job: Job) -> None:
        return None


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    settings = get_settings()
    channel = EmailChannel(SmtpSender(settings.smtp_host, settings.smtp_port), settings.smtp_from)
    return wiring.deliverer(channel)


def handle(event: dict) -> BatchReport:
    return deliverer().handle(event)
