"""The sample data reproduces the original demonstration, and the rules hold on it."""

from __future__ import annotations

import pytest

from chalicelib.adapters.dynamodb import class_item, enrollment_item
from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import EnrollmentState, Identity, Promotion, Role, WaitlistEntry
from infra import sample_data
from tests.unit.conftest import World


@pytest.fixture
def sample(world: World) -> World:
    """The bootstrap's data, written the way the bootstrap writes it (profiles only, no logins)."""
    items = []
    for user in sample_data.users():
        profile, _ = world.users.put_items(user, "!")
        items.append(profile["Put"]["Item"])
    for start in range(0, len(items), 25):
        world.client.batch_write_item(
            RequestItems={world.settings.users_table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        )
    world.catalog.batch_write(world.settings.classes_table, puts=[class_item(s) for s in sample_data.sections()])
    world.catalog.batch_write(
        world.settings.enrollments_table,
        puts=[
            enrollment_item(class_id, student_id, EnrollmentState.ENROLLED)
            for class_id in sample_data.CLASSES
            for student_id in sample_data.enrolled(class_id)
        ],
    )
    for class_id, students in sample_data.WAITLISTS:
        for student_id in students:
            world.waitlists.join(class_id, student_id, capacity=10**6, per_student=10**6)
    return world


def _student(student_id: int) -> Identity:
    return Identity(student_id, Role.STUDENT, f"student{student_id}")


def test_student_one_waits_first_third_and_sixth(sample: World) -> None:
    assert sample.enrollment.waitlist_positions(_student(1), 1) == [
        WaitlistEntry(8, 1, 1),
        WaitlistEntry(4, 1, 3),
        WaitlistEntry(13, 1, 6),
    ]


def test_student_one_is_at_the_waitlist_limit(sample: World) -> None:
    with pytest.raises(Conflict) as refused:
        sample.enrollment.enroll(_student(1), 1, 16)

    assert refused.value.code == "waitlist_limit"


def test_class_ten_is_closed(sample: World) -> None:
    with pytest.raises(Conflict) as refused:
        sample.enrollment.enroll(_student(300), 300, 10)

    assert refused.value.code == "waitlist_full"
    assert 10 not in {section.class_id for section, _ in sample.enrollment.open_classes()}


def test_a_drop_from_class_four_promotes_student_seventy_nine(sample: World) -> None:
    instructor = Identity(504, Role.INSTRUCTOR, "instructor504")
    assert sample.enrollment.class_students(instructor, 504, 4, EnrollmentState.ENROLLED) == list(range(31, 61))

    promoted = sample.enrollment.drop(_student(55), 55, 4)

    assert promoted == [Promotion(4, 79)]
    assert sample.enrollment.class_students(instructor, 504, 4, EnrollmentState.DROPPED) == [55]
    assert [e.student_id for e in sample.enrollment.class_waitlist(instructor, 504, 4)] == [80, 1]
    assert sample.enrollment.waitlist_position(_student(1), 1, 4).position == 2
