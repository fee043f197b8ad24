"""GET /classes, enrolling, dropping and a student's classes, over HTTP.

Sample data: class 1 (instructor 501) has 25 of 30 seats taken (students 257-281) and
nobody waiting; class 4 (instructor 504) is full with students 31-60 and waitlist 79, 80,
1; class 10 is full with a full waitlist; student 1 waits on classes 8, 4 and 13 (the most
allowed). Students 2-30 are enrolled nowhere and wait nowhere.

Tests that only read share one reset (`sample`) and come first; tests that change state
come last and start from their own reset (`fresh`).
"""

from __future__ import annotations

from tests.support.responses import enrolled, error_code, ok, waitlist


def class_ids(body: dict) -> list[int]:
    return [section["class_id"] for section in body["classes"]]


def waiting(api, class_id: int) -> list[int]:
    entries = waitlist(api, class_id)
    assert [entry["waitlist_position"] for entry in entries] == list(range(1, len(entries) + 1))
    return [entry["student_id"] for entry in entries]


SECTION_4 = {
    "class_id": 4,
    "department": "CPSC",
    "course_code": "120",
    "section": 1,
    "name": "Introduction to Computer Science",
    "instructor_id": 504,
    "max_enroll": 30,
    "enrolled": 30,
    "open_seats": 0,
}


# -- reading the sample data ----------------------------------------------------------


def test_open_classes_lists_sections_with_a_seat_or_waitlist_room(sample, api):
    listings = [ok(api(who, "GET", "/classes")) for who in ("student1", "instructor501", "registrar551")]
    assert listings[0] == listings[1] == listings[2], "every role sees the same catalogue"
    body = listings[0]
    assert class_ids(body) == [c for c in range(1, 17) if c != 10], "class 10 is full with a full waitlist"
    by_id = {section["class_id"]: section for section in body["classes"]}
    assert by_id[4] == {**SECTION_4, "waitlist_length": 3}
    assert (by_id[1]["enrolled"], by_id[1]["open_seats"], by_id[1]["waitlist_length"]) == (25, 5, 0)
    assert by_id[13]["waitlist_length"] == 6
    assert ok(api("student1", "GET", "/classes?department=MATH&page=x")) == body, "a query string is ignored"


def test_enrolled_classes_of_a_student(sample, api):
    mine = ok(api("student31", "GET", "/students/31/classes"))
    assert mine == {"student_id": 31, "classes": [SECTION_4]}
    assert ok(api("registrar551", "GET", "/students/31/classes")) == mine
    assert ok(api("student1", "GET", "/students/1/classes")) == {"student_id": 1, "classes": []}


def test_enroll_conflicts_leave_everything_as_it_was(sample, api):
    before = {class_id: waiting(api, class_id) for class_id in (4, 10, 16)}

    assert error_code(api("student31", "POST", "/students/31/classes/4/enroll"), 409) == "already_enrolled"
    assert error_code(api("student79", "POST", "/students/79/classes/4/enroll"), 409) == "already_waitlisted"
    assert error_code(api("student2", "POST", "/students/2/classes/10/enroll"), 409) == "waitlist_full"
    assert error_code(api("student1", "POST", "/students/1/classes/16/enroll"), 409) == "waitlist_limit"

    assert {class_id: waiting(api, class_id) for class_id in (4, 10, 16)} == before
    assert len(before[10]) == 15
    assert ok(api("student2", "GET", "/waitlist/students/2")) == {"Waitlists": []}
    assert [w["class_id"] for w in ok(api("student1", "GET", "/waitlist/students/1"))["Waitlists"]] == [8, 4, 13]
    assert enrolled(api, 4) == list(range(31, 61))


def test_drop_refusals_leave_the_class_alone(sample, api):
    assert error_code(api("student29", "PUT", "/students/29/classes/1/drop"), 409) == "not_enrolled"
    assert error_code(api("student1", "PUT", "/students/1/classes/4/drop"), 409) == "not_enrolled"
    assert error_code(api("student29", "PUT", "/students/29/classes/99999/drop"), 404) == "class_not_found"
    assert error_code(api("registrar551", "PUT", "/students/99999/classes/4/drop"), 404) == "student_not_found"
    assert error_code(api("registrar551", "PUT", "/students/504/classes/4/drop"), 404) == "student_not_found"
    assert error_code(api("student29", "PUT", "/students/31/classes/4/drop"), 403) == "forbidden"
    assert error_code(api("instructor504", "PUT", "/students/31/classes/4/drop"), 403) == "forbidden"
    assert enrolled(api, 4) == list(range(31, 61))
    assert waiting(api, 4) == [79, 80, 1]
    assert ok(api("registrar551", "GET", "/instructors/504/classes/4/dropped"))["students"] == []


# -- refusals that do not depend on the data ---------------------------------------------


def test_enroll_refuses_other_people_and_unknown_ids(api):
    assert error_code(api("student2", "POST", "/students/3/classes/1/enroll"), 403) == "forbidden"
    assert error_code(api("instructor501", "POST", "/students/3/classes/1/enroll"), 403) == "forbidden"
    assert error_code(api("student3", "POST", "/students/3/classes/99999/enroll"), 404) == "class_not_found"
    assert error_code(api("registrar551", "POST", "/students/99999/classes/1/enroll"), 404) == "student_not_found"
    assert error_code(api("registrar551", "POST", "/students/501/classes/1/enroll"), 404) == "student_not_found"
    assert error_code(api("registrar551", "POST", "/students/551/classes/1/enroll"), 404) == "student_not_found"


def test_enrolled_classes_refusals(api):
    assert error_code(api("student2", "GET", "/students/31/classes"), 403) == "forbidden"
    assert error_code(api("instructor504", "GET", "/students/31/classes"), 403) == "forbidden"
    assert error_code(api("registrar551", "GET", "/students/99999/classes"), 404) == "student_not_found"
    assert error_code(api("registrar551", "GET", "/students/504/classes"), 404) == "student_not_found"


# -- changing state -----------------------------------------------------------------


def test_enroll_takes_an_open_seat(fresh, api):
    response = api("student2", "POST", "/students/2/classes/1/enroll")
    assert ok(response, 201) == {"class_id": 1, "student_id": 2, "status": "enrolled"}

    mine = ok(api("student2", "GET", "/students/2/classes"))
    assert mine["student_id"] == 2
    assert [(c["class_id"], c["enrolled"], c["open_seats"]) for c in mine["classes"]] == [(1, 26, 4)]
    assert 2 in enrolled(api, 1)
    catalogue = {c["class_id"]: c for c in ok(api("student2", "GET", "/classes"))["classes"]}
    assert catalogue[1]["open_seats"] == 4

    twice = api("student2", "POST", "/students/2/classes/1/enroll")
    assert error_code(twice, 409) == "already_enrolled"
    assert enrolled(api, 1).count(2) == 1

    by_registrar = api("registrar551", "POST", "/students/3/classes/1/enroll")
    assert ok(by_registrar, 201) == {"class_id": 1, "student_id": 3, "status": "enrolled"}
    assert class_ids(ok(api("student3", "GET", "/students/3/classes"))) == [1]


def test_enroll_in_a_full_class_joins_its_waitlist(fresh, api):
    response = api("student2", "POST", "/students/2/classes/4/enroll")
    assert ok(response, 202) == {"class_id": 4, "student_id": 2, "status": "waitlisted", "waitlist_position": 4}
    assert waiting(api, 4) == [79, 80, 1, 2]
    assert ok(api("student2", "GET", "/waitlist/students/2")) == {
        "Waitlists": [{"class_id": 4, "waitlist_position": 4}]
    }
    assert ok(api("student2", "GET", "/students/2/classes"))["classes"] == []

    twice = api("student2", "POST", "/students/2/classes/4/enroll")
    assert error_code(twice, 409) == "already_waitlisted"
    assert waiting(api, 4) == [79, 80, 1, 2]


def test_drop_frees_the_seat_and_records_the_student(fresh, api):
    response = api("student257", "PUT", "/students/257/classes/1/drop")
    assert ok(response) == {"class_id": 1, "student_id": 257, "status": "dropped", "promoted": []}

    assert 1 not in class_ids(ok(api("student257", "GET", "/students/257/classes")))
    assert 257 not in enrolled(api, 1)
    dropped = ok(api("instructor501", "GET", "/instructors/501/classes/1/dropped"))
    assert dropped == {"class_id": 1, "students": [{"student_id": 257}]}
    catalogue = {c["class_id"]: c for c in ok(api("student257", "GET", "/classes"))["classes"]}
    assert (catalogue[1]["enrolled"], catalogue[1]["open_seats"]) == (24, 6)

    again = api("student257", "PUT", "/students/257/classes/1/drop")
    assert error_code(again, 409) == "not_enrolled"

    back = api("student257", "POST", "/students/257/classes/1/enroll")
    assert ok(back, 201)["status"] == "enrolled", "a dropped student may enroll again"
    assert 257 in enrolled(api, 1)


def test_drop_promotes_the_first_waitlisted_student(fresh, api):
    response = api("registrar551", "PUT", "/students/56/classes/4/drop")
    assert ok(response) == {
        "class_id": 4,
        "student_id": 56,
        "status": "dropped",
        "promoted": [{"class_id": 4, "student_id": 79}],
    }
    assert waiting(api, 4) == [80, 1]
    assert class_ids(ok(api("student79", "GET", "/students/79/classes"))) == [4]
    assert ok(api("student79", "GET", "/waitlist/students/79")) == {"Waitlists": []}
    assert ok(api("student1", "GET", "/waitlist/students/1/classes/4")) == {"class_id": 4, "waitlist_position": 2}
    assert enrolled(api, 4) == [*range(31, 56), *range(57, 61), 79]
    assert ok(api("student56", "GET", "/students/56/classes"))["classes"] == []

    rejoin = api("student56", "POST", "/students/56/classes/4/enroll")
    assert ok(rejoin, 202)["waitlist_position"] == 3, "the class is full again"
