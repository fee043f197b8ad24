"""Plain data: the things the business rules talk about."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    STUDENT = "student"
    INSTRUCTOR = "instructor"
    REGISTRAR = "registrar"


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    role: Role
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class Identity:
    """Who is calling, as proven by a verified token."""

    user_id: int
    role: Role
    username: str = ""


@dataclass(frozen=True)
class ClassSection:
    class_id: int
    department: str
    course_code: str
    section: int
    name: str
    instructor_id: int
    max_enroll: int
    enrolled_count: int = 0

    @property
    def open_seats(self) -> int:
        return max(self.max_enroll - self.enrolled_count, 0)


class EnrollmentState(enum.StrEnum):
    ENROLLED = "enrolled"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Enrollment:
    class_id: int
    student_id: int
    state: EnrollmentState
    from_waitlist: bool = False  # enrolled by a promotion, not by taking an open seat


class WriteOutcome(enum.StrEnum):
    """What a conditional enrollment write found."""

    DONE = "done"
    ALREADY_ENROLLED = "already_enrolled"
    CLASS_FULL = "class_full"
    CLASS_GONE = "class_gone"
    NOT_ENROLLED = "not_enrolled"


class JoinOutcome(enum.StrEnum):
    """What an atomic attempt to join a waitlist found."""

    JOINED = "joined"
    DUPLICATE = "duplicate"
    WAITLIST_FULL = "waitlist_full"
    TOO_MANY_WAITLISTS = "too_many_waitlists"


@dataclass(frozen=True)
class WaitlistEntry:
    class_id: int
    student_id: int
    position: int


@dataclass(frozen=True)
class Promotion:
    class_id: int
    student_id: int


@dataclass
class SettleResult:
    promoted: list[Promotion] = field(default_factory=list)
