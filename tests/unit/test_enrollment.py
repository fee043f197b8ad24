"""Enrolling: open seats, the waitlist of a full class, its limits and duplicates."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.model import EnrollmentState
from tests.unit.conftest import World


def test_enroll_takes_an_open_seat(world: World) -> None:
    section = world.section(max_enroll=2)
    student = world.student()

    result = world.enrollment.enroll(student, student.user_id, section.class_id)

    assert result.enrolled
    assert result.waitlist_position is None
    assert world.get_class(section.class_id).enrolled_count == 1
    assert world.state(section.class_id, student.user_id) is EnrollmentState.ENROLLED
    assert world.waiting(section.class_id) == []
    assert [s.class_id for s in world.enrollment.enrolled_classes(student, student.user_id)] == [section.class_id]


def test_enroll_into_full_class_waitlists_with_position(world: World) -> None:
    section, _, _ = world.full_section(max_enroll=2)
    first, second = world.students(2)

    one = world.enrollment.enroll(first, first.user_id, section.class_id)
    two = world.enrollment.enroll(second, second.user_id, section.class_id)

    assert (one.enrolled, one.waitlist_position) == (False, 1)
    assert (two.enrolled, two.waitlist_position) == (False, 2)
    assert world.get_class(section.class_id).enrolled_count == 2
    assert world.state(section.class_id, first.user_id) is None
    assert world.waiting(section.class_id) == [first.user_id, second.user_id]
    assert world.student_waitlists(second.user_id) == [section.class_id]


def test_enrolled_count_stops_at_capacity(world: World) -> None:
    section = world.section(max_enroll=3)
    results = [world.enrollment.enroll(s, s.user_id, section.class_id) for s in world.students(5)]

    assert [r.enrolled for r in results] == [True, True, True, False, False]
    assert world.get_class(section.class_id).enrolled_count == 3


def test_waitlist_holds_at_most_fifteen(world: World) -> None:
    section, _, queue = world.full_section(waiting=15)
    sixteenth = world.student()

    with pytest.raises(Conflict) as refused:
        world.enrollment.enroll(sixteenth, sixteenth.user_id, section.class_id)

    assert refused.value.code == "waitlist_full"
    assert world.waiting(section.class_id) == [s.user_id for s in queue]
    assert world.student_waitlists(sixteenth.user_id) == []


def test_student_waits_on_at_most_three_waitlists(world: World) -> None:
    sections = [world.full_section()[0] for _ in range(4)]
    student = world.student()
    for section in sections[:3]:
        assert world.enrollment.enroll(student, student.user_id, section.class_id).waitlist_position == 1

    with pytest.raises(Conflict) as refused:
        world.enrollment.enroll(student, student.user_id, sections[3].class_id)

    assert refused.value.code == "waitlist_limit"
    assert world.waiting(sections[3].class_id) == []
    assert world.student_waitlists(student.user_id) == [s.class_id for s in sections[:3]]


def test_leaving_a_waitlist_frees_a_place_for_another(world: World) -> None:
    sections = [world.full_section()[0] for _ in range(4)]
    student = world.student()
    for section in sections[:3]:
        world.enrollment.enroll(student, student.user_id, section.class_id)

    world.enrollment.leave_waitlist(student, student.user_id, sections[0].class_id)
    result = world.enrollment.enroll(student, student.user_id, sections[3].class_id)

    assert result.waitlist_position == 1


def test_enrolling_twice_is_a_conflict(world: World) -> None:
    section = world.section(max_enroll=1)
    student = world.student()
    world.enrollment.enroll(student, student.user_id, section.class_id)

    # The class is now full too: the duplicate must not land on the waitlist.
    with pytest.raises(Conflict) as refused:
        world.enrollment.enroll(student, student.user_id, section.class_id)

    assert refused.value.code == "already_enrolled"
    assert world.get_class(section.class_id).enrolled_count == 1
    assert world.waiting(section.class_id) == []


def test_enrolling_twice_in_a_class_with_seats_is_a_conflict(world: World) -> None:
    section = world.section(max_enroll=5)
    student = world.student()
    world.enrollment.enroll(student, student.user_id, section.class_id)

    with pytest.raises(Conflict) as refused:
        world.enrollment.enroll(student, student.user_id, section.class_id)

    assert refused.value.code == "already_enrolled"
    assert world.get_class(section.class_id).enrolled_count == 1


def test_waitlisting_twice_is_a_conflict(world: World) -> None:
    section, _, (student,) = world.full_section(waiting=1)

    with pytest.raises(Conflict) as refused:
        world.enrollment.enroll(student, student.user_id, section.class_id)

    assert refused.value.code == "already_waitlisted"
    assert world.waiting(section.class_id) == [student.user_id]


def test_newcomer_joins_the_waitlist_when_people_wait_for_an_open_seat(world: World) -> None:
    section, (holder,), waiting = world.full_section(waiting=2)
    # A drop whose promotion never ran (a crash): one seat open, two people waiting.
    world.catalog.drop(section.class_id, holder.user_id)
    newcomer = world.student()

    result = world.enrollment.enroll(newcomer, newcomer.user_id, section.class_id)

    assert not result.enrolled
    assert result.waitlist_position == 2
    assert world.state(section.class_id, newcomer.user_id) is None
    # The seat went to the head of the line instead.
    assert world.state(section.class_id, waiting[0].user_id) is EnrollmentState.ENROLLED
    assert world.waiting(section.class_id) == [waiting[1].user_id, newcomer.user_id]
    assert world.get_class(section.class_id).enrolled_count == 1


def test_re_enrolling_after_a_drop(world: World) -> None:
    section = world.section(max_enroll=1)
    student = world.student()
    world.enrollment.enroll(student, student.user_id, section.class_id)
    world.enrollment.drop(student, student.user_id, section.class_id)

    result = world.enrollment.enroll(student, student.user_id, section.class_id)

    assert result.enrolled
    assert world.state(section.class_id, student.user_id) is EnrollmentState.ENROLLED
    assert world.get_class(section.class_id).enrolled_count == 1


def test_open_classes_leave_out_full_classes_with_full_waitlists(world: World) -> None:
    open_section = world.section(max_enroll=1)
    room_on_waitlist, _, _ = world.full_section(waiting=14)
    closed, _, _ = world.full_section(waiting=15)

    listed = {section.class_id: length for section, length in world.enrollment.open_classes()}

    assert listed == {open_section.class_id: 0, room_on_waitlist.class_id: 14}
    assert closed.class_id not in listed


def test_newcomer_gets_a_seat_left_over_after_those_waiting(world: World) -> None:
    section, holders, (waiting,) = world.full_section(max_enroll=2, waiting=1)
    # Two drops whose promotions never ran: two seats open, one person waiting.
    for holder in holders:
        world.catalog.drop(section.class_id, holder.user_id)
    newcomer = world.student()

    result = world.enrollment.enroll(newcomer, newcomer.user_id, section.class_id)

    assert result.enrolled
    assert world.state(section.class_id, waiting.user_id) is EnrollmentState.ENROLLED
    assert world.state(section.class_id, newcomer.user_id) is EnrollmentState.ENROLLED
    assert world.waiting(section.class_id) == []
    assert world.get_class(section.class_id).enrolled_count == 2


def test_a_class_removed_while_a_student_joins_its_waitlist_leaves_no_entry(world: World, monkeypatch) -> None:
    section, _, _ = world.full_section(max_enroll=2)
    student = world.student()
    join = world.waitlists.join

    def removed_meanwhile(*args, **kwargs):
        # The registrar removes the class (and cleans its waitlist) after the first read.
        world.registrar_service.delete_class(world.registrar, section.class_id)
        return join(*args, **kwargs)

    monkeypatch.setattr(world.waitlists, "join", removed_meanwhile)
    with pytest.raises(NotFound) as refused:
        world.enrollment.enroll(student, student.user_id, section.class_id)

    assert refused.value.code == "class_not_found"
    assert world.waiting(section.class_id) == []
    assert world.student_waitlists(student.user_id) == []


def test_a_newcomer_promoted_while_its_request_runs_is_told_it_is_enrolled(world: World, monkeypatch) -> None:
    section, (holder,), _ = world.full_section(max_enroll=1)
    newcomer = world.student()
    join = world.waitlists.join

    def seat_freed_meanwhile(*args, **kwargs):
        joined = join(*args, **kwargs)
        # Just after the newcomer joins the waitlist, the holder drops and the newcomer,
        # first in line, is promoted by the drop before its own request reads again.
        world.enrollment.drop(holder, holder.user_id, section.class_id)
        return joined

    monkeypatch.setattr(world.waitlists, "join", seat_freed_meanwhile)
    result = world.enrollment.enroll(newcomer, newcomer.user_id, section.class_id)

    assert result.enrolled
    assert world.state(section.class_id, newcomer.user_id) is EnrollmentState.ENROLLED
    assert world.waiting(section.class_id) == []
    assert world.get_class(section.class_id).enrolled_count == 1
