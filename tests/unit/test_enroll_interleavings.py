"""Two requests interleaved at the worst moment, deterministically: another request runs
between an enroll's first read and its waitlist step."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import Identity, Role
from tests.unit.crash_support import Interleave, Rig, running_rig

CLASS = 41


@pytest.fixture
def rig() -> Iterator[Rig]:
    with running_rig() as rig:
        rig.add_class(CLASS, 1, rig.add_user(541, Role.INSTRUCTOR))
        yield rig


def student(rig: Rig, student_id: int) -> Identity:
    return rig.add_user(student_id)


def test_a_seat_freed_while_an_enroll_joins_the_waitlist_goes_to_that_student(rig: Rig) -> None:
    holder, newcomer = student(rig, 1), student(rig, 2)
    assert rig.enrollment.enroll(holder, 1, CLASS).enrolled
    # The newcomer read a full class; the holder drops (nobody waits yet) before it joins.
    Interleave(rig.waitlists, "join", lambda: rig.enrollment.drop(holder, 1, CLASS))

    result = rig.enrollment.enroll(newcomer, 2, CLASS)

    assert result.enrolled
    assert rig.enrolled(CLASS) == [2]
    assert rig.waiting(CLASS) == []
    assert rig.waitlists_of(2) == []
    assert rig.section(CLASS).enrolled_count == 1


def test_an_enroll_overtaken_by_the_same_students_enroll_leaves_no_waitlist_entry(rig: Rig) -> None:
    twice, other = student(rig, 1), student(rig, 2)

    def meanwhile() -> None:
        # The student's other request takes the seat, then someone else queues.
        assert rig.enrollment.enroll(twice, 1, CLASS).enrolled
        assert not rig.enrollment.enroll(other, 2, CLASS).enrolled

    Interleave(rig.waitlists, "length", meanwhile)

    with pytest.raises(Conflict) as raised:
        rig.enrollment.enroll(twice, 1, CLASS)

    assert raised.value.code == "already_enrolled"
    assert rig.enrolled(CLASS) == [1]
    assert rig.waiting(CLASS) == [2]
    assert rig.waitlists_of(1) == []
