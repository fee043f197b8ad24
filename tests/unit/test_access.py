"""Who may act on what, and what happens with ids that do not exist."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.model import ClassSection, EnrollmentState, Identity, Role
from chalicelib.domain.registrar import NewClass
from tests.unit.conftest import World

UNKNOWN = 999_999


def _student_actions(world: World, actor: Identity, student_id: int, class_id: int) -> list[Callable[[], object]]:
    e = world.enrollment
    return [
        lambda: e.enroll(actor, student_id, class_id),
        lambda: e.drop(actor, student_id, class_id),
        lambda: e.enrolled_classes(actor, student_id),
        lambda: e.waitlist_positions(actor, student_id),
        lambda: e.waitlist_position(actor, student_id, class_id),
        lambda: e.leave_waitlist(actor, student_id, class_id),
    ]


def _instructor_actions(
    world: World, actor: Identity, instructor_id: int, class_id: int, student_id: int
) -> list[Callable[[], object]]:
    e = world.enrollment
    return [
        lambda: e.class_students(actor, instructor_id, class_id, EnrollmentState.ENROLLED),
        lambda: e.class_students(actor, instructor_id, class_id, EnrollmentState.DROPPED),
        lambda: e.class_waitlist(actor, instructor_id, class_id),
        lambda: e.instructor_drop(actor, instructor_id, class_id, student_id),
    ]


def _registrar_actions(world: World, actor: Identity, section: ClassSection) -> list[Callable[[], object]]:
    r = world.registrar_service
    return [
        lambda: r.create_class(actor, NewClass("CPSC", "1", 1, "x", section.instructor_id, 5)),
        lambda: r.update_class(actor, section.class_id, 10, None),
        lambda: r.set_instructor(actor, section.class_id, section.instructor_id),
        lambda: r.delete_class(actor, section.class_id),
        lambda: r.set_frozen(actor, True),
        lambda: world.auth.create_user(actor, "newuser", "long-enough-password", Role.REGISTRAR),
    ]


def _assert_all_forbidden(actions: list[Callable[[], object]]) -> None:
    for index, action in enumerate(actions):
        try:
            action()
        except Forbidden:
            continue
        pytest.fail(f"action {index} was allowed")


@pytest.fixture
def taught(world: World) -> tuple[Identity, ClassSection, Identity]:
    """An instructor, their full class and its one student."""
    instructor = world.instructor()
    section, (student,), _ = world.full_section(instructor=instructor)
    return instructor, section, student


def test_a_student_acts_only_as_themself(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    _, section, victim = taught
    intruder = world.student()

    _assert_all_forbidden(_student_actions(world, intruder, victim.user_id, section.class_id))
    assert world.get_class(section.class_id).enrolled_count == 1


def test_instructors_cannot_act_as_students(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, student = taught

    _assert_all_forbidden(_student_actions(world, instructor, student.user_id, section.class_id))
    # Not even under their own id.
    _assert_all_forbidden(_student_actions(world, instructor, instructor.user_id, section.class_id))


def test_an_instructor_acts_only_on_classes_they_teach(
    world: World, taught: tuple[Identity, ClassSection, Identity]
) -> None:
    _, section, student = taught
    other = world.instructor()

    _assert_all_forbidden(_instructor_actions(world, other, other.user_id, section.class_id, student.user_id))
    assert world.state(section.class_id, student.user_id) is EnrollmentState.ENROLLED


def test_an_instructor_cannot_use_another_instructors_id(
    world: World, taught: tuple[Identity, ClassSection, Identity]
) -> None:
    instructor, section, student = taught
    other = world.instructor()

    _assert_all_forbidden(_instructor_actions(world, other, instructor.user_id, section.class_id, student.user_id))


def test_students_cannot_act_as_instructors(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, student = taught

    _assert_all_forbidden(_instructor_actions(world, student, instructor.user_id, section.class_id, student.user_id))
    _assert_all_forbidden(_instructor_actions(world, student, student.user_id, section.class_id, student.user_id))


def test_only_the_registrar_administers(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, student = taught

    for actor in (student, instructor):
        _assert_all_forbidden(_registrar_actions(world, actor, section))
    assert world.get_class(section.class_id) == section


def test_the_instructor_of_the_class_may_act(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, student = taught
    e = world.enrollment

    assert e.class_students(instructor, instructor.user_id, section.class_id, EnrollmentState.ENROLLED) == [
        student.user_id
    ]
    assert e.class_waitlist(instructor, instructor.user_id, section.class_id) == []
    assert e.instructor_drop(instructor, instructor.user_id, section.class_id, student.user_id) == []
    assert world.state(section.class_id, student.user_id) is EnrollmentState.DROPPED


def test_the_registrar_may_do_everything(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, student = taught
    newcomer = world.student()
    registrar, e = world.registrar, world.enrollment

    assert e.enroll(registrar, newcomer.user_id, section.class_id).waitlist_position == 1
    assert e.waitlist_positions(registrar, newcomer.user_id)[0].class_id == section.class_id
    assert e.waitlist_position(registrar, newcomer.user_id, section.class_id).position == 1
    assert [w.student_id for w in e.class_waitlist(registrar, instructor.user_id, section.class_id)] == [
        newcomer.user_id
    ]
    assert e.class_students(registrar, instructor.user_id, section.class_id, EnrollmentState.ENROLLED) == [
        student.user_id
    ]
    assert [p.student_id for p in e.drop(registrar, student.user_id, section.class_id)] == [newcomer.user_id]
    assert [c.class_id for c in e.enrolled_classes(registrar, newcomer.user_id)] == [section.class_id]
    assert e.instructor_drop(registrar, instructor.user_id, section.class_id, newcomer.user_id) == []
    assert world.get_class(section.class_id).enrolled_count == 0


def test_registrar_naming_an_instructor_who_does_not_teach_the_class_gets_not_found(
    world: World, taught: tuple[Identity, ClassSection, Identity]
) -> None:
    _, section, student = taught
    other = world.instructor()

    for action in _instructor_actions(world, world.registrar, other.user_id, section.class_id, student.user_id):
        with pytest.raises(NotFound) as refused:
            action()
        assert refused.value.code == "class_not_taught"
    assert world.state(section.class_id, student.user_id) is EnrollmentState.ENROLLED


def test_unknown_class_is_not_found(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, _, _ = taught
    student = world.student()
    e, r = world.enrollment, world.registrar_service

    for action in [
        lambda: e.enroll(student, student.user_id, UNKNOWN),
        lambda: e.drop(student, student.user_id, UNKNOWN),
        lambda: e.class_waitlist(instructor, instructor.user_id, UNKNOWN),
        lambda: e.class_students(instructor, instructor.user_id, UNKNOWN, EnrollmentState.DROPPED),
        lambda: e.instructor_drop(instructor, instructor.user_id, UNKNOWN, student.user_id),
        lambda: r.update_class(world.registrar, UNKNOWN, 10, None),
        lambda: r.set_instructor(world.registrar, UNKNOWN, instructor.user_id),
    ]:
        with pytest.raises(NotFound) as refused:
            action()
        assert refused.value.code == "class_not_found"
    assert world.waiting(UNKNOWN) == []


def test_unknown_student_is_not_found(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, _ = taught
    registrar, e = world.registrar, world.enrollment

    for action in [
        lambda: e.enroll(registrar, UNKNOWN, section.class_id),
        lambda: e.drop(registrar, UNKNOWN, section.class_id),
        lambda: e.enrolled_classes(registrar, UNKNOWN),
        lambda: e.waitlist_positions(registrar, UNKNOWN),
        lambda: e.instructor_drop(instructor, instructor.user_id, section.class_id, UNKNOWN),
    ]:
        with pytest.raises(NotFound) as refused:
            action()
        assert refused.value.code == "student_not_found"
    assert world.waiting(section.class_id) == []


def test_an_instructor_id_is_not_a_student(world: World, taught: tuple[Identity, ClassSection, Identity]) -> None:
    instructor, section, _ = taught

    with pytest.raises(NotFound) as refused:
        world.enrollment.enroll(world.registrar, instructor.user_id, section.class_id)

    assert refused.value.code == "student_not_found"


def test_a_student_token_for_a_deleted_account_is_not_enough(world: World) -> None:
    section = world.section(max_enroll=5)
    ghost = Identity(UNKNOWN, Role.STUDENT, "ghost")

    with pytest.raises(NotFound):
        world.enrollment.enroll(ghost, ghost.user_id, section.class_id)

    assert world.get_class(section.class_id).enrolled_count == 0
