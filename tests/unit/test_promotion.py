"""Seats that open are filled from the waitlist, first come first served, unless frozen."""

from __future__ import annotations

import re

import pytest

from chalicelib.domain import events
from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import EnrollmentState, Promotion
from tests.unit.conftest import World


def test_drop_promotes_the_first_waitlisted_student(world: World) -> None:
    section, (holder,), (first, second, third) = world.full_section(waiting=3)

    promoted = world.enrollment.drop(holder, holder.user_id, section.class_id)

    assert promoted == [Promotion(section.class_id, first.user_id)]
    assert world.state(section.class_id, holder.user_id) is EnrollmentState.DROPPED
    assert world.state(section.class_id, first.user_id) is EnrollmentState.ENROLLED
    assert world.get_class(section.class_id).enrolled_count == 1
    assert world.waiting(section.class_id) == [second.user_id, third.user_id]
    assert world.student_waitlists(first.user_id) == []
    assert world.enrollment.waitlist_position(second, second.user_id, section.class_id).position == 1


def test_promotion_writes_one_outbox_event_with_the_contract_body(world: World) -> None:
    section, (holder,), (first, _) = world.full_section(waiting=2)
    world.subscribe(first.user_id, section.class_id, email="first@example.edu", webhook_url="https://hooks.test/1")

    world.enrollment.drop(holder, holder.user_id, section.class_id)

    (item,) = world.outbox()
    body = world.bodies()[0]
    assert item["type"] == events.PROMOTED
    assert item["event_id"] == body["event_id"]
    assert (item["student_id"], item["class_id"]) == (first.user_id, section.class_id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["occurred_at"])
    assert {k: v for k, v in body.items() if k not in ("event_id", "occurred_at")} == {
        "type": "enrollment.promoted",
        "student_id": first.user_id,
        "class_id": section.class_id,
        "class_name": section.name,
        "section": section.section,
        "message": f"You have been enrolled in {section.name}",
        "email": "first@example.edu",
        "webhook_url": "https://hooks.test/1",
    }


def test_promotion_of_an_unsubscribed_student_has_no_contact(world: World) -> None:
    section, (holder,), (first,) = world.full_section(waiting=1)

    world.enrollment.drop(holder, holder.user_id, section.class_id)

    (body,) = world.bodies()
    assert (body["student_id"], body["email"], body["webhook_url"]) == (first.user_id, None, None)


def test_drop_without_waitlist_frees_the_seat_and_writes_no_event(world: World) -> None:
    section, (holder,), _ = world.full_section()

    assert world.enrollment.drop(holder, holder.user_id, section.class_id) == []
    assert world.get_class(section.class_id).enrolled_count == 0
    assert world.outbox() == []


def test_dropping_a_class_one_is_not_enrolled_in_is_a_conflict(world: World) -> None:
    section, _, (waiting,) = world.full_section(waiting=1)

    with pytest.raises(Conflict) as refused:
        world.enrollment.drop(waiting, waiting.user_id, section.class_id)

    assert refused.value.code == "not_enrolled"
    assert world.get_class(section.class_id).enrolled_count == 1
    assert world.waiting(section.class_id) == [waiting.user_id]


def test_dropping_twice_does_not_free_a_second_seat(world: World) -> None:
    section, (holder, other), (first, second) = world.full_section(max_enroll=2, waiting=2)
    world.enrollment.drop(holder, holder.user_id, section.class_id)

    with pytest.raises(Conflict):
        world.enrollment.drop(holder, holder.user_id, section.class_id)

    assert world.get_class(section.class_id).enrolled_count == 2
    assert world.state(section.class_id, other.user_id) is EnrollmentState.ENROLLED
    assert world.state(section.class_id, first.user_id) is EnrollmentState.ENROLLED
    assert world.state(section.class_id, second.user_id) is None
    assert world.waiting(section.class_id) == [second.user_id]
    assert len(world.outbox()) == 1


def test_dropped_students_are_on_the_dropped_list(world: World) -> None:
    instructor = world.instructor()
    section, (kept, leaver, removed), _ = world.full_section(max_enroll=3, instructor=instructor)
    world.enrollment.drop(leaver, leaver.user_id, section.class_id)
    world.enrollment.instructor_drop(instructor, instructor.user_id, section.class_id, removed.user_id)

    dropped = world.enrollment.class_students(instructor, instructor.user_id, section.class_id, EnrollmentState.DROPPED)
    enrolled = world.enrollment.class_students(
        instructor, instructor.user_id, section.class_id, EnrollmentState.ENROLLED
    )

    assert sorted(dropped) == sorted([leaver.user_id, removed.user_id])
    assert enrolled == [kept.user_id]


def test_instructor_drop_promotes(world: World) -> None:
    instructor = world.instructor()
    section, (holder,), (first, second) = world.full_section(waiting=2, instructor=instructor)

    promoted = world.enrollment.instructor_drop(instructor, instructor.user_id, section.class_id, holder.user_id)

    assert promoted == [Promotion(section.class_id, first.user_id)]
    assert world.state(section.class_id, holder.user_id) is EnrollmentState.DROPPED
    assert world.state(section.class_id, first.user_id) is EnrollmentState.ENROLLED
    assert world.waiting(section.class_id) == [second.user_id]
    assert [b["student_id"] for b in world.bodies()] == [first.user_id]


def test_raising_capacity_promotes_as_many_as_new_seats_in_order(world: World) -> None:
    section, _, queue = world.full_section(waiting=4)

    updated, promoted = world.registrar_service.update_class(world.registrar, section.class_id, 3, None)

    assert promoted == [Promotion(section.class_id, s.user_id) for s in queue[:2]]
    assert (updated.max_enroll, world.get_class(section.class_id).enrolled_count) == (3, 3)
    assert all(world.state(section.class_id, s.user_id) is EnrollmentState.ENROLLED for s in queue[:2])
    assert world.waiting(section.class_id) == [s.user_id for s in queue[2:]]
    assert sorted(b["student_id"] for b in world.bodies()) == sorted(s.user_id for s in queue[:2])


def test_raising_capacity_beyond_the_waitlist_promotes_everyone(world: World) -> None:
    section, _, queue = world.full_section(waiting=2)

    _, promoted = world.registrar_service.update_class(world.registrar, section.class_id, 10, None)

    assert [p.student_id for p in promoted] == [s.user_id for s in queue]
    assert world.get_class(section.class_id).enrolled_count == 3
    assert world.waiting(section.class_id) == []


def test_capacity_cannot_go_below_enrolled(world: World) -> None:
    section, _, _ = world.full_section(max_enroll=3)

    with pytest.raises(Conflict) as refused:
        world.registrar_service.update_class(world.registrar, section.class_id, 2, None)

    assert refused.value.code == "capacity_below_enrolled"
    assert world.get_class(section.class_id).max_enroll == 3


def test_capacity_may_go_down_to_enrolled(world: World) -> None:
    section = world.section(max_enroll=5)
    for student in world.students(2):
        world.enrollment.enroll(student, student.user_id, section.class_id)

    updated, promoted = world.registrar_service.update_class(world.registrar, section.class_id, 2, "Renamed")

    assert promoted == []
    assert (updated.max_enroll, updated.name) == (2, "Renamed")
    assert world.get_class(section.class_id).open_seats == 0


def test_no_promotion_while_frozen(world: World) -> None:
    section, (holder,), (first, second) = world.full_section(waiting=2)
    world.registrar_service.set_frozen(world.registrar, True)

    assert world.enrollment.drop(holder, holder.user_id, section.class_id) == []
    _, promoted = world.registrar_service.update_class(world.registrar, section.class_id, 3, None)

    assert promoted == []
    assert world.get_class(section.class_id).enrolled_count == 0
    assert world.waiting(section.class_id) == [first.user_id, second.user_id]
    assert world.state(section.class_id, first.user_id) is None
    assert world.outbox() == []


def test_while_frozen_students_join_waitlists_and_keep_positions(world: World) -> None:
    section, (holder,), (first,) = world.full_section(waiting=1)
    world.registrar_service.set_frozen(world.registrar, True)
    world.enrollment.drop(holder, holder.user_id, section.class_id)
    newcomer = world.student()

    # A seat is open, but the line is frozen: the newcomer queues behind the first.
    result = world.enrollment.enroll(newcomer, newcomer.user_id, section.class_id)

    assert (result.enrolled, result.waitlist_position) == (False, 2)
    assert world.enrollment.waitlist_position(first, first.user_id, section.class_id).position == 1
    assert world.get_class(section.class_id).enrolled_count == 0


def test_unfreeze_promotes_every_class_with_open_seats_in_order(world: World) -> None:
    one, (one_holder,), one_queue = world.full_section(waiting=2)
    two, two_holders, two_queue = world.full_section(max_enroll=2, waiting=3)
    untouched, _, untouched_queue = world.full_section(waiting=1)
    world.registrar_service.set_frozen(world.registrar, True)
    world.enrollment.drop(one_holder, one_holder.user_id, one.class_id)
    for holder in two_holders:
        world.enrollment.drop(holder, holder.user_id, two.class_id)

    promoted = world.registrar_service.set_frozen(world.registrar, False)

    assert promoted == [
        Promotion(one.class_id, one_queue[0].user_id),
        Promotion(two.class_id, two_queue[0].user_id),
        Promotion(two.class_id, two_queue[1].user_id),
    ]
    assert world.waiting(one.class_id) == [one_queue[1].user_id]
    assert world.waiting(two.class_id) == [two_queue[2].user_id]
    assert world.waiting(untouched.class_id) == [untouched_queue[0].user_id]
    assert world.get_class(two.class_id).enrolled_count == 2
    assert len(world.outbox()) == 3


def test_unfreeze_lets_drops_promote_again(world: World) -> None:
    section, (holder,), (first,) = world.full_section(waiting=1)
    world.registrar_service.set_frozen(world.registrar, True)
    world.registrar_service.set_frozen(world.registrar, False)

    assert world.enrollment.drop(holder, holder.user_id, section.class_id) == [
        Promotion(section.class_id, first.user_id)
    ]


def test_retry_after_a_crash_mid_promotion_enrolls_once_and_loses_nobody(world: World) -> None:
    section, (holder,), (first, second) = world.full_section(waiting=2)
    # The process died after the DynamoDB transaction of a promotion, before the Redis removal.
    world.catalog.drop(section.class_id, holder.user_id)
    contact = events.Contact()
    event = events.promoted(first.user_id, section.class_id, section.name, section.section, contact)
    world.catalog.promote(section.class_id, first.user_id, event)

    # The client retries its drop: nothing to drop, but the half-done promotion is finished.
    with pytest.raises(Conflict):
        world.enrollment.drop(holder, holder.user_id, section.class_id)

    assert world.get_class(section.class_id).enrolled_count == 1
    assert world.state(section.class_id, first.user_id) is EnrollmentState.ENROLLED
    assert world.state(section.class_id, second.user_id) is None
    assert world.waiting(section.class_id) == [second.user_id]
    assert world.student_waitlists(first.user_id) == []
    assert [item["event_id"] for item in world.outbox()] == [event.event_id]


def test_promotion_tells_subscribers_behind_their_new_position(world: World) -> None:
    section, (holder,), (first, second, third) = world.full_section(waiting=3)
    world.subscribe(third.user_id, section.class_id, email="third@example.edu", wanted=(events.POSITION_CHANGED,))

    world.enrollment.drop(holder, holder.user_id, section.class_id)

    bodies = {body["type"]: body for body in world.bodies()}
    assert set(bodies) == {events.PROMOTED, events.POSITION_CHANGED}
    assert bodies[events.PROMOTED]["student_id"] == first.user_id
    moved = bodies[events.POSITION_CHANGED]
    assert (moved["student_id"], moved["waitlist_position"], moved["email"]) == (third.user_id, 2, "third@example.edu")
    assert world.waiting(section.class_id) == [second.user_id, third.user_id]
