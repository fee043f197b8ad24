"""How domain objects are shown in responses."""

from __future__ import annotations

from chalicelib.domain.model import ClassSection, Promotion, User, WaitlistEntry


def section(s: ClassSection, waitlist_length: int | None = None) -> dict:
    shown = {
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
    if waitlist_length is not None:
        shown["waitlist_length"] = waitlist_length
    return shown


def position(entry: WaitlistEntry) -> dict:
    return {"class_id": entry.class_id, "waitlist_position": entry.position}


def promotions(promoted: list[Promotion]) -> list[dict]:
    return [{"class_id": p.class_id, "student_id": p.student_id} for p in promoted]


def user(u: User) -> dict:
    return {
        "user_id": u.user_id,
        "username": u.username,
        "role": u.role.value,
        "name": u.name,
        "email": u.email,
    }
