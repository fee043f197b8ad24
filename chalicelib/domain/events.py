"""Events raised by the domain; the outbox adapter stores them, the relay publishes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chalicelib.domain.clock import now_iso

PROMOTED = "enrollment.promoted"
POSITION_CHANGED = "waitlist.position_changed"
EVENT_TYPES = (PROMOTED, POSITION_CHANGED)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Contact:
    """Where a subscribed student wants to be told, as subscribed at the time."""

    email: str | None = None
    webhook_url: str | None = None


@dataclass(frozen=True)
class Event:
    type: str
    student_id: int
    class_id: int
    class_name: str
    section: int
    message: str
    contact: Contact = field(default_factory=Contact)
    waitlist_position: int | None = None
    event_id: str = field(default_factory=_new_id)
    occurred_at: str = field(default_factory=now_iso)

    def body(self) -> dict:
        """The message body of the contract (ARCHITECTURE.md, "Notification event")."""
        body = {
            "type": self.type,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at,
            "student_id": self.student_id,
            "class_id": self.class_id,
            "class_name": self.class_name,
            "section": self.section,
            "message": self.message,
            "email": self.contact.email,
            "webhook_url": self.contact.webhook_url,
        }
        if self.waitlist_position is not None:
            body["waitlist_position"] = self.waitlist_position
        return body


def promoted(student_id: int, class_id: int, class_name: str, section: int, contact: Contact) -> Event:
    return Event(
        type=PROMOTED,
        student_id=student_id,
        class_id=class_id,
        class_name=class_name,
        section=section,
        message=f"You have been enrolled in {class_name}",
        contact=contact,
    )


def position_changed(
    student_id: int, class_id: int, class_name: str, section: int, position: int, contact: Contact
) -> Event:
    return Event(
        type=POSITION_CHANGED,
        student_id=student_id,
        class_id=class_id,
        class_name=class_name,
        section=section,
        message=f"You are now number {position} on the waitlist for {class_name}",
        contact=contact,
        waitlist_position=position,
    )
