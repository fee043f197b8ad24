"""Notification subscriptions: who wants to be told, how, and about which events."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.domain import access, events
from chalicelib.domain.clock import now_iso
from chalicelib.domain.errors import Conflict, InvalidInput, MissingInput, NotFound
from chalicelib.domain.model import Identity, Role
from chalicelib.domain.ports import Catalog, Subscriptions

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


@dataclass(frozen=True)
class Subscription:
    student_id: int
    class_id: int
    email: str | None
    webhook_url: str | None
    events: tuple[str, ...]
    created_at: str
    secret: str | None = field(default=None, repr=False)


def new_secret() -> str:
    """A Standard Webhooks signing secret: whsec_ + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SubscriptionService:
    def __init__(
        self,
        catalog: Catalog,
        subscriptions: Subscriptions,
        check_webhook: Callable[[str], object],
    ) -> None:
        self.catalog = catalog
        self.subscriptions = subscriptions
        self.check_webhook = check_webhook

    def subscribe(
        self,
        identity: Identity,
        student_id: int,
        class_id: int,
        email: str | None,
        webhook_url: str | None,
        wanted: list[str] | None,
    ) -> Subscription:
        access.require_student_self(identity, student_id)
        if not email and not webhook_url:
            raise MissingInput("Give an email and/or a webhook_url", "contact_required")
        chosen = _events(wanted)
        address = _email(email) if email else None
        if webhook_url:
            self._check_webhook(webhook_url)
        section, student, _, _ = self.catalog.load(class_id, student_id)
        if student is None or student.role is not Role.STUDENT:
            raise NotFound(f"Student {student_id} not found", "student_not_found")
        if section is None:
            raise NotFound(f"Class {class_id} not found", "class_not_found")
        subscription = Subscription(
            student_id=student_id,
            class_id=class_id,
            email=address,
            webhook_url=webhook_url or None,
            events=chosen,
            created_at=now_iso(),
            secret=new_secret() if webhook_url else None,
        )
        if not self.subscriptions.add(subscription):
            raise Conflict("Already subscribed to this class", "already_subscribed")
        return subscription

    def list(self, identity: Identity, student_id: int) -> list[Subscription]:
        access.require_student_self(identity, student_id)
        return self.subscriptions.of_student(student_id)

    def unsubscribe(self, identity: Identity, student_id: int, class_id: int) -> None:
        access.require_student_self(identity, student_id)
        if not self.subscriptions.remove(student_id, class_id):
            raise NotFound("Not subscribed to this class", "not_subscribed")

    def _check_webhook(self, url: str) -> None:
        try:
            self.check_webhook(url)
        except ValueError as error:
            raise InvalidInput(
                str(error), "invalid_webhook_url", [{"field": "webhook_url", "message": str(error)}]
            ) from None


def _email(value: str) -> str:
    # Imported here: compiling its patterns is a noticeable part of the app's import time.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput(
            f"Invalid email: {error}", "invalid_email", [{"field": "email", "message": str(error)}]
        ) from None


def _events(wanted: list[str] | None) -> tuple[str, ...]:
    if not wanted:
        return (events.PROMOTED,)
    unknown = [name for name in wanted if name not in events.EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"Unknown event type(s): {', '.join(map(str, unknown))}; choose from {', '.join(events.EVENT_TYPES)}",
            "invalid_events",
            [{"field": "events", "message": "unknown event type"}],
        )
    return tuple(dict.fromkeys(wanted))
