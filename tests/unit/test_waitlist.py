"""Waitlist positions, leaving a waitlist and what instructors see of it."""

from __future__ import annotations

import pytest

from chalicelib.domain import events
from chalicelib.domain.errors import NotFound
from chalicelib.domain.model import WaitlistEntry
from tests.unit.conftest import World


def test_leaving_moves_everyone_behind_up_one(world: World) -> None:
    section, _, (first, leaver, third, fourth) = world.full_section(waiting=4)

    world.enrollment.leave_waitlist(leaver, leaver.user_id, section.class_id)

    assert world.waiting(section.class_id) == [first.user_id, third.user_id, fourth.user_id]
    positions = {
        s.user_id: world.enrollment.waitlist_position(s, s.user_id, section.class_id).position
        for s in (first, third, fourth)
    }
    assert positions == {first.user_id: 1, third.user_id: 2, fourth.user_id: 3}
    assert world.student_waitlists(leaver.user_id) == []
    with pytest.raises(NotFound):
        world.enrollment.waitlist_position(leaver, leaver.user_id, section.class_id)


def test_leaving_tells_subscribers_behind_their_new_position(world: World) -> None:
    section, _, (leaver, second, third) = world.full_section(waiting=3)
    world.subscribe(second.user_id, section.class_id, email="second@example.edu", wanted=(events.POSITION_CHANGED,))
    world.subscribe(third.user_id, section.class_id, email="third@example.edu")

    world.enrollment.leave_waitlist(leaver, leaver.user_id, section.class_id)

    # The third student subscribed to promotions only.
    (body,) = world.bodies()
    assert body["type"] == events.POSITION_CHANGED
    assert (body["student_id"], body["waitlist_position"]) == (second.user_id, 1)


def test_leaving_a_waitlist_one_is_not_on_is_not_found(world: World) -> None:
    section, _, _ = world.full_section(waiting=1)
    student = world.student()

    with pytest.raises(NotFound) as refused:
        world.enrollment.leave_waitlist(student, student.user_id, section.class_id)

    assert refused.value.code == "not_waitlisted"
    assert len(world.waiting(section.class_id)) == 1


def test_positions_of_a_student_in_the_order_joined(world: World) -> None:
    first, _, _ = world.full_section(waiting=2)
    second, _, _ = world.full_section()
    student = world.student()
    world.enrollment.enroll(student, student.user_id, first.class_id)
    world.enrollment.enroll(student, student.user_id, second.class_id)

    assert world.enrollment.waitlist_positions(student, student.user_id) == [
        WaitlistEntry(first.class_id, student.user_id, 3),
        WaitlistEntry(second.class_id, student.user_id, 1),
    ]


def test_instructor_sees_the_waitlist_in_order(world: World) -> None:
    instructor = world.instructor()
    section, _, queue = world.full_section(waiting=3, instructor=instructor)

    entries = world.enrollment.class_waitlist(instructor, instructor.user_id, section.class_id)

    assert entries == [WaitlistEntry(section.class_id, s.user_id, i + 1) for i, s in enumerate(queue)]
