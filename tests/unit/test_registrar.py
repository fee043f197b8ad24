"""The registrar's class administration: create, rename, reassign, remove."""

from __future__ import annotations

import pytest

from chalicelib.adapters import redis_keys
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.registrar import NewClass
from tests.unit.conftest import World


def _new_class(instructor_id: int, class_id: int | None = None) -> NewClass:
    return NewClass("CPSC", "335", 1, "Algorithm Engineering", instructor_id, 25, class_id)


def test_create_class_allocates_an_id_and_starts_empty(world: World) -> None:
    instructor = world.instructor()

    first = world.registrar_service.create_class(world.registrar, _new_class(instructor.user_id))
    second = world.registrar_service.create_class(world.registrar, _new_class(instructor.user_id))

    assert first.class_id != second.class_id
    stored = world.get_class(first.class_id)
    assert (stored.name, stored.instructor_id, stored.max_enroll, stored.enrolled_count) == (
        "Algorithm Engineering",
        instructor.user_id,
        25,
        0,
    )


def test_create_class_with_a_taken_id_is_a_conflict(world: World) -> None:
    instructor = world.instructor()
    world.registrar_service.create_class(world.registrar, _new_class(instructor.user_id, class_id=4242))

    with pytest.raises(Conflict) as refused:
        world.registrar_service.create_class(world.registrar, _new_class(instructor.user_id, class_id=4242))

    assert refused.value.code == "class_exists"


def test_create_class_needs_an_instructor(world: World) -> None:
    student = world.student()

    with pytest.raises(NotFound) as refused:
        world.registrar_service.create_class(world.registrar, _new_class(student.user_id))

    assert refused.value.code == "instructor_not_found"


def test_set_instructor_hands_the_class_over(world: World) -> None:
    old, new = world.instructor(), world.instructor()
    section = world.section(max_enroll=5, instructor=old)

    updated = world.registrar_service.set_instructor(world.registrar, section.class_id, new.user_id)

    assert updated.instructor_id == new.user_id
    assert world.enrollment.taught_class(new, new.user_id, section.class_id).class_id == section.class_id


def test_removing_a_class_removes_its_waitlist_and_subscriptions(world: World) -> None:
    section, (enrolled,), (first, second) = world.full_section(waiting=2)
    other, _, _ = world.full_section()
    world.enrollment.enroll(first, first.user_id, other.class_id)
    world.subscribe(first.user_id, section.class_id, email="first@example.edu")
    world.subscribe(first.user_id, other.class_id, email="first@example.edu")
    world.subscribe(second.user_id, section.class_id, webhook_url="https://hooks.test/2")

    world.registrar_service.delete_class(world.registrar, section.class_id)

    assert world.get_class(section.class_id) is None
    assert not world.redis.exists(redis_keys.class_waitlist(section.class_id))
    assert world.student_waitlists(first.user_id) == [other.class_id]
    assert world.student_waitlists(second.user_id) == []
    assert world.redis.hkeys(redis_keys.subscriptions(first.user_id)) == [str(other.class_id)]
    assert not world.redis.exists(redis_keys.subscriptions(second.user_id))
    assert world.enrollment.enrolled_classes(enrolled, enrolled.user_id) == []
    # Other classes keep their waitlists.
    assert world.waiting(other.class_id) == [first.user_id]


def test_removing_an_unknown_class_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.registrar_service.delete_class(world.registrar, 999_999)


def test_set_instructor_needs_an_instructor(world: World) -> None:
    section = world.section(max_enroll=5)
    student = world.student()

    with pytest.raises(NotFound) as refused:
        world.registrar_service.set_instructor(world.registrar, section.class_id, student.user_id)

    assert refused.value.code == "instructor_not_found"
    assert world.get_class(section.class_id).instructor_id == section.instructor_id
