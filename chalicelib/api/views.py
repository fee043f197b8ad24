"""How domain objects are shown in responses (the models of chalicelib.api.schemas)."""

from __future__ import annotations

from chalicelib.api import schemas
from chalicelib.domain.model import ClassSection, Promotion, User, WaitlistEntry
from chalicelib.domain.subscriptions import Subscription


def _section_fields(s: ClassSection) -> dict:
    return {
        "class_id": s.class_id,
        "department": s.department,
        "course_code": s.course_code,
        "section": s.section,
        "name": s.name,
        "instructor_id": s.instructor_id,
        "max_enroll": s.max_enroll,
        "enrolled": s.enrolled_count,
        "open_seats": s.open_seats,
    }


def section(s: ClassSection) -> schemas.ClassView:
    return schemas.ClassView(**_section_fields(s))


def listing(s: ClassSection, waitlist_length: int) -> schemas.ClassListing:
    return schemas.ClassListing(**_section_fields(s), waitlist_length=waitlist_length)


def updated(s: ClassSection, promoted: list[Promotion]) -> schemas.ClassUpdated:
    return schemas.ClassUpdated(**_section_fields(s), promoted=promotions(promoted))


def position(entry: WaitlistEntry) -> schemas.Position:
    return schemas.Position(class_id=entry.class_id, waitlist_position=entry.position)


def promotions(promoted: list[Promotion]) -> list[schemas.PromotionView]:
    return [schemas.PromotionView(class_id=p.class_id, student_id=p.student_id) for p in promoted]


def dropped(class_id: int, student_id: int, promoted: list[Promotion]) -> schemas.Dropped:
    return schemas.Dropped(class_id=class_id, student_id=student_id, status="dropped", promoted=promotions(promoted))


def user(u: User) -> schemas.UserView:
    return schemas.UserView(user_id=u.user_id, username=u.username, role=u.role.value, name=u.name, email=u.email)


def subscription(s: Subscription, with_secret: bool = False) -> schemas.NewSubscription:
    shown = schemas.NewSubscription(
        student_id=s.student_id,
        class_id=s.class_id,
        email=s.email,
        webhook_url=s.webhook_url,
        events=list(s.events),
        created_at=s.created_at,
    )
    if with_secret and s.secret:
        shown.secret = s.secret
    return shown


def listed_subscription(s: Subscription) -> schemas.SubscriptionView:
    return schemas.SubscriptionView(**subscription(s).model_dump())
