"""A student's waitlist positions and leaving a waitlist, over HTTP.

Sample data: student 1 waits on class 8 (1st of 1, 81, 82), class 4 (3rd of 79, 80, 1)
and class 13 (6th of 83-87, 1); student 2 waits nowhere.

Tests that only read share one reset (`sample`) and come first; tests that change state
come last and start from their own reset (`fresh`).
"""

from __future__ import annotations

import pytest

from tests.support.responses import error_code, ok, waitlist


def waiting(api, class_id: int) -> list[tuple[int, int]]:
    return [(entry["student_id"], entry["waitlist_position"]) for entry in waitlist(api, class_id)]


STUDENT_1 = {
    "Waitlists": [
        {"class_id": 8, "waitlist_position": 1},
        {"class_id": 4, "waitlist_position": 3},
        {"class_id": 13, "waitlist_position": 6},
    ]
}


def test_a_students_positions_in_the_order_joined(sample, api):
    assert ok(api("student1", "GET", "/waitlist/students/1")) == STUDENT_1
    assert ok(api("registrar551", "GET", "/waitlist/students/1")) == STUDENT_1
    assert ok(api("student2", "GET", "/waitlist/students/2")) == {"Waitlists": []}


def test_one_position(sample, api):
    for who in ("student1", "registrar551"):
        assert ok(api(who, "GET", "/waitlist/students/1/classes/13")) == {"class_id": 13, "waitlist_position": 6}
        assert ok(api(who, "GET", "/waitlist/students/1/classes/8")) == {"class_id": 8, "waitlist_position": 1}
    not_waiting = api("student1", "GET", "/waitlist/students/1/classes/1")
    assert error_code(not_waiting, 404) == "not_waitlisted"
    enrolled_not_waiting = api("student31", "GET", "/waitlist/students/31/classes/4")
    assert error_code(enrolled_not_waiting, 404) == "not_waitlisted"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/waitlist/students/1"),
        ("GET", "/waitlist/students/1/classes/4"),
        ("DELETE", "/waitlist/students/1/classes/4"),
    ],
)
@pytest.mark.parametrize("who", ["student2", "instructor504"])
def test_only_the_student_or_the_registrar_sees_or_changes_a_waitlist(api, method, path, who):
    assert error_code(api(who, method, path), 403) == "forbidden"


def test_unknown_students_and_classes(api):
    assert error_code(api("registrar551", "GET", "/waitlist/students/99999"), 404) == "student_not_found"
    assert error_code(api("registrar551", "GET", "/waitlist/students/504"), 404) == "student_not_found"
    assert error_code(api("registrar551", "GET", "/waitlist/students/99999/classes/4"), 404) == "student_not_found"
    assert error_code(api("registrar551", "DELETE", "/waitlist/students/99999/classes/4"), 404) == "not_waitlisted"
    assert error_code(api("student2", "GET", "/waitlist/students/2/classes/99999"), 404) == "not_waitlisted"
    assert error_code(api("student2", "DELETE", "/waitlist/students/2/classes/99999"), 404) == "not_waitlisted"


# -- changing state -----------------------------------------------------------------


def test_leaving_a_waitlist_moves_everyone_behind_up(fresh, api):
    response = api("student1", "DELETE", "/waitlist/students/1/classes/8")
    assert ok(response) == {"class_id": 8, "student_id": 1, "status": "left_waitlist"}

    assert waiting(api, 8) == [(81, 1), (82, 2)]
    assert ok(api("student81", "GET", "/waitlist/students/81/classes/8")) == {"class_id": 8, "waitlist_position": 1}
    assert ok(api("student1", "GET", "/waitlist/students/1")) == {
        "Waitlists": [{"class_id": 4, "waitlist_position": 3}, {"class_id": 13, "waitlist_position": 6}]
    }
    assert error_code(api("student1", "GET", "/waitlist/students/1/classes/8"), 404) == "not_waitlisted"

    again = api("student1", "DELETE", "/waitlist/students/1/classes/8")
    assert error_code(again, 404) == "not_waitlisted"
    assert waiting(api, 8) == [(81, 1), (82, 2)]

    joined = api("student1", "POST", "/students/1/classes/16/enroll")
    assert ok(joined, 202)["waitlist_position"] == 5, "leaving one list frees a place for another"


def test_the_registrar_takes_students_off_waitlists(fresh, api):
    response = api("registrar551", "DELETE", "/waitlist/students/80/classes/4")
    assert ok(response) == {"class_id": 4, "student_id": 80, "status": "left_waitlist"}
    assert waiting(api, 4) == [(79, 1), (1, 2)]
    assert ok(api("student80", "GET", "/waitlist/students/80")) == {"Waitlists": []}

    assert ok(api("registrar551", "DELETE", "/waitlist/students/85/classes/13"))["status"] == "left_waitlist"
    assert waiting(api, 13) == [(83, 1), (84, 2), (86, 3), (87, 4), (1, 5)]
    assert ok(api("student1", "GET", "/waitlist/students/1/classes/13")) == {"class_id": 13, "waitlist_position": 5}
