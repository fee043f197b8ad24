"""Promotion survives a crash between any two of its writes (ARCHITECTURE.md, "Business rules").

A promotion is the DynamoDB transaction (seat, enrollment, outbox event) followed by the
Redis removal from the waitlist. For each way a seat opens, the process dies before or
after each of the two writes; right then the student must be in at least one place, and
after a retry of the same request, or the next settle, in exactly one: enrolled once,
counted once, off the waitlist, with exactly one enrollment.promoted event."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import EnrollmentState, Identity, Role
from tests.unit.crash_support import Crash, Fault, Rig, running_rig

CLASS = 40
CAPACITY = 2
HOLDERS = (1, 2)
WAITING = (11, 12, 13)
FIRST = WAITING[0]
INSTRUCTOR = 540


@pytest.fixture
def rig() -> Iterator[Rig]:
    with running_rig() as rig:
        yield rig


def full_class(rig: Rig) -> None:
    """Class 40: two seats held by students 1 and 2; students 11, 12, 13 wait in that order."""
    rig.add_class(CLASS, CAPACITY, rig.add_user(INSTRUCTOR, Role.INSTRUCTOR))
    for student_id in (*HOLDERS, *WAITING):
        student = rig.add_user(student_id)
        rig.enrollment.enroll(student, student_id, CLASS)
    assert rig.enrolled(CLASS) == list(HOLDERS)
    assert rig.waiting(CLASS) == list(WAITING)


def _identity(user_id: int, role: Role = Role.STUDENT) -> Identity:
    return Identity(user_id, role, f"{role.value}{user_id}")


def _tolerating_not_enrolled(operation: Callable[[], object]) -> Callable[[], object]:
    """A drop retried after its own write went through answers 409 not_enrolled; the
    promotion it owed is completed all the same."""

    def run() -> object:
        try:
            return operation()
        except Conflict as error:
            assert error.code == "not_enrolled"
            return None

    return run


def seat_opening(rig: Rig, kind: str) -> Callable[[], object]:
    """Prepare the class and return the request that opens one seat (repeatable as a retry)."""
    full_class(rig)
    holder = _identity(HOLDERS[0])
    if kind == "student drop":
        return _tolerating_not_enrolled(lambda: rig.enrollment.drop(holder, holder.user_id, CLASS))
    if kind == "instructor drop":
        instructor = _identity(INSTRUCTOR, Role.INSTRUCTOR)
        return _tolerating_not_enrolled(
            lambda: rig.enrollment.instructor_drop(instructor, INSTRUCTOR, CLASS, holder.user_id)
        )
    if kind == "capacity raised":
        return lambda: rig.registrar_service.update_class(rig.registrar, CLASS, CAPACITY + 1, None)
    if kind == "unfreeze":
        rig.registrar_service.set_frozen(rig.registrar, True)
        rig.enrollment.drop(holder, holder.user_id, CLASS)
        assert rig.waiting(CLASS) == list(WAITING)
        return lambda: rig.registrar_service.set_frozen(rig.registrar, False)
    raise AssertionError(kind)


KINDS = ["student drop", "instructor drop", "capacity raised", "unfreeze"]
# Where the process dies, in the order of the promotion's steps.
POINTS = {
    "before the enrollment transaction": ("catalog", "promote", False),
    "after the enrollment transaction": ("catalog", "promote", True),
    "before the waitlist removal": ("waitlists", "remove", False),
    "after the waitlist removal": ("waitlists", "remove", True),
}


def inject(rig: Rig, point: str) -> Fault:
    adapter, method, after = POINTS[point]
    return Fault(getattr(rig, adapter), method, FIRST, after)


def assert_somewhere(rig: Rig) -> None:
    """The state right after a crash: the first student is enrolled or still waiting (maybe
    both, never neither), the seat count matches the records, and an event exists exactly
    when the enrollment does."""
    enrolled = FIRST in rig.enrolled(CLASS)
    waiting = FIRST in rig.waiting(CLASS)
    assert enrolled or waiting
    assert rig.section(CLASS).enrolled_count == len(rig.enrolled(CLASS))
    assert rig.promoted_events(FIRST, CLASS) == int(enrolled)
    if waiting:
        assert rig.waitlists_of(FIRST) == [CLASS]


def assert_promoted_once(rig: Rig) -> None:
    section = rig.section(CLASS)
    enrolled = rig.enrolled(CLASS)
    assert enrolled.count(FIRST) == 1
    assert section.enrolled_count == len(enrolled) == section.max_enroll
    assert FIRST not in rig.waiting(CLASS)
    assert rig.waitlists_of(FIRST) == []
    assert rig.promoted_events(FIRST, CLASS) == 1
    # Nobody else moved: one seat opened, one student took it.
    assert rig.waiting(CLASS) == list(WAITING[1:])
    assert all(rig.promoted_events(s, CLASS) == 0 for s in WAITING[1:])


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("kind", KINDS)
def test_retrying_the_request_completes_the_promotion_once(rig: Rig, kind: str, point: str) -> None:
    request = seat_opening(rig, kind)
    fault = inject(rig, point)

    with pytest.raises(Crash):
        request()
    assert fault.fired
    assert_somewhere(rig)

    request()
    assert_promoted_once(rig)
    request()
    assert_promoted_once(rig)


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("kind", KINDS)
def test_the_next_settle_completes_the_promotion_once(rig: Rig, kind: str, point: str) -> None:
    request = seat_opening(rig, kind)
    inject(rig, point)

    with pytest.raises(Crash):
        request()
    assert_somewhere(rig)

    rig.enrollment.settle(rig.section(CLASS), frozen=False)
    assert_promoted_once(rig)


@pytest.mark.parametrize("kind", KINDS)
def test_a_crash_at_every_step_in_turn_still_promotes_once(rig: Rig, kind: str) -> None:
    request = seat_opening(rig, kind)
    for point in POINTS:
        fault = inject(rig, point)
        try:
            request()
        except Crash:
            assert_somewhere(rig)
        finally:
            fault.remove()
    request()
    assert_promoted_once(rig)


@pytest.mark.parametrize("kind", ["capacity raised", "unfreeze"])
def test_a_student_left_listed_by_a_crash_who_then_drops_stays_dropped(rig: Rig, kind: str) -> None:
    request = seat_opening(rig, kind)
    inject(rig, "after the enrollment transaction")
    with pytest.raises(Crash):
        request()
    first = _identity(FIRST)

    rig.enrollment.drop(first, FIRST, CLASS)

    _, _, enrollment, _ = rig.catalog.load(CLASS, FIRST)
    assert enrollment is not None and enrollment.state is EnrollmentState.DROPPED
    assert FIRST not in rig.waiting(CLASS)
    assert rig.waitlists_of(FIRST) == []
    # The seat went to the next student in line.
    assert rig.enrolled(CLASS).count(WAITING[1]) == 1
    assert rig.section(CLASS).enrolled_count == len(rig.enrolled(CLASS))
    assert rig.promoted_events(FIRST, CLASS) == 1
