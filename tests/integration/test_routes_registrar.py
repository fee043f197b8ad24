"""The registrar routes over HTTP: classes, their instructor and capacity, and the
automatic-enrollment switch.

Sample data: class 4 (instructor 504) is full at 30 with waitlist 79, 80, 1; class 13
(instructor 513) is full with students 261-285 and waitlist 83-87, 1; class 1 has 25 of
30 seats taken and nobody waiting.

Tests that only read share one reset (`sample`) and come first; tests that change state
come last and start from their own reset (`fresh`).
"""

from __future__ import annotations

import pytest

from chalicelib.adapters import redis_keys
from chalicelib.adapters.redis_client import connect
from tests.support.responses import enrolled, error_code, ok, waitlist

NEW_CLASS = {
    "department": "CPSC",
    "course_code": "499",
    "section": 2,
    "name": "Special Topics",
    "instructor_id": 501,
    "max_enroll": 2,
}
FREEZE = "/registrar/automatic-enrollment/freeze"
OPEN_CLASSES = [c for c in range(1, 17) if c != 10]


def catalogue(api) -> dict[int, dict]:
    return {c["class_id"]: c for c in ok(api("registrar551", "GET", "/classes"))["classes"]}


def waiting(api, class_id: int) -> list[int]:
    return [entry["student_id"] for entry in waitlist(api, class_id)]


def test_capacity_cannot_go_below_the_enrolled_students(sample, api):
    response = api("registrar551", "PATCH", "/registrar/classes/4", json={"max_enroll": 29, "name": "Renamed"})
    assert error_code(response, 409) == "capacity_below_enrolled"
    unknown = api("registrar551", "PATCH", "/registrar/classes/99999", json={"max_enroll": 10})
    assert error_code(unknown, 404) == "class_not_found"

    classes = catalogue(api)
    assert sorted(classes) == OPEN_CLASSES
    assert (classes[4]["max_enroll"], classes[4]["enrolled"], classes[4]["name"]) == (
        30,
        30,
        "Introduction to Computer Science",
    )


def test_a_class_needs_a_known_instructor(sample, api):
    for instructor_id in (99999, 1, 551):
        response = api("registrar551", "POST", "/registrar/classes", json={**NEW_CLASS, "instructor_id": instructor_id})
        assert error_code(response, 404) == "instructor_not_found", instructor_id
    for path, code in [
        ("/registrar/classes/99999/instructors/505", "class_not_found"),
        ("/registrar/classes/4/instructors/99999", "instructor_not_found"),
        ("/registrar/classes/4/instructors/1", "instructor_not_found"),
        ("/registrar/classes/4/instructors/551", "instructor_not_found"),
    ]:
        assert error_code(api("registrar551", "PUT", path), 404) == code, path
    assert error_code(api("registrar551", "DELETE", "/registrar/classes/99999"), 404) == "class_not_found"

    classes = catalogue(api)
    assert sorted(classes) == OPEN_CLASSES
    assert classes[4]["instructor_id"] == 504


@pytest.mark.parametrize("who", ["student1", "instructor504"])
def test_only_the_registrar_manages_classes(api, who):
    refusals = [
        api(who, "POST", "/registrar/classes", json={**NEW_CLASS, "class_id": 901}),
        api(who, "PATCH", "/registrar/classes/4", json={"max_enroll": 40}),
        api(who, "DELETE", "/registrar/classes/4"),
        api(who, "PUT", "/registrar/classes/4/instructors/505"),
        api(who, "PUT", FREEZE, json={"frozen": True}),
    ]
    for response in refusals:
        assert error_code(response, 403) == "forbidden", response.request.url
    assert 901 not in catalogue(api)


# -- changing state -----------------------------------------------------------------


def test_create_classes(fresh, api):
    created = ok(api("registrar551", "POST", "/registrar/classes", json={**NEW_CLASS, "class_id": 900}), 201)
    assert created == {**NEW_CLASS, "class_id": 900, "enrolled": 0, "open_seats": 2}
    assert catalogue(api)[900] == {**created, "waitlist_length": 0}
    assert ok(api("instructor501", "GET", "/instructors/501/classes/900/enrollment")) == {
        "class_id": 900,
        "students": [],
    }
    assert ok(api("student2", "POST", "/students/2/classes/900/enroll"), 201)["status"] == "enrolled"

    for class_id in (900, 4):
        duplicate = api("registrar551", "POST", "/registrar/classes", json={**NEW_CLASS, "class_id": class_id})
        assert error_code(duplicate, 409) == "class_exists"
    classes = catalogue(api)
    assert (classes[900]["enrolled"], classes[4]["name"]) == (1, "Introduction to Computer Science")

    first = ok(api("registrar551", "POST", "/registrar/classes", json=NEW_CLASS), 201)
    second = ok(api("registrar551", "POST", "/registrar/classes", json={**NEW_CLASS, "section": 3}), 201)
    assert first["class_id"] not in (900, *range(1, 17)), "a new id when none is given"
    assert second["class_id"] not in (900, first["class_id"], *range(1, 17))
    assert {first["class_id"], second["class_id"]} <= set(catalogue(api))


def test_raising_capacity_promotes_in_waitlist_order(fresh, api):
    body = ok(api("registrar551", "PATCH", "/registrar/classes/4", json={"max_enroll": 32}))
    assert body["promoted"] == [{"class_id": 4, "student_id": 79}, {"class_id": 4, "student_id": 80}]
    assert {k: body[k] for k in ("class_id", "max_enroll", "enrolled", "open_seats")} == {
        "class_id": 4,
        "max_enroll": 32,
        "enrolled": 32,
        "open_seats": 0,
    }, "the class as it stands after the promotions"
    assert waiting(api, 4) == [1]
    assert ok(api("student1", "GET", "/waitlist/students/1/classes/4")) == {"class_id": 4, "waitlist_position": 1}
    assert {79, 80} <= set(enrolled(api, 4))
    assert catalogue(api)[4]["enrolled"] == 32


def test_renaming_and_lowering_capacity_to_the_enrolled_count(fresh, api):
    body = ok(api("registrar551", "PATCH", "/registrar/classes/1", json={"name": "  OOP in C++ ", "max_enroll": 25}))
    assert (body["name"], body["max_enroll"], body["enrolled"], body["open_seats"], body["promoted"]) == (
        "OOP in C++",
        25,
        25,
        0,
        [],
    )
    listed = catalogue(api)[1]
    assert (listed["name"], listed["open_seats"]) == ("OOP in C++", 0), "full, but its waitlist has room"
    assert ok(api("student2", "POST", "/students/2/classes/1/enroll"), 202)["waitlist_position"] == 1
    renamed = ok(api("registrar551", "PATCH", "/registrar/classes/1", json={"name": "Object-Oriented Programming"}))
    assert (renamed["name"], renamed["max_enroll"], renamed["promoted"]) == ("Object-Oriented Programming", 25, [])


def test_deleting_a_class_removes_its_waitlist_and_enrollments(fresh, api):
    assert ok(api("registrar551", "DELETE", "/registrar/classes/13")) == {"class_id": 13, "status": "deleted"}

    assert 13 not in catalogue(api)
    assert ok(api("student1", "GET", "/waitlist/students/1")) == {
        "Waitlists": [{"class_id": 8, "waitlist_position": 1}, {"class_id": 4, "waitlist_position": 3}]
    }
    assert ok(api("student83", "GET", "/waitlist/students/83")) == {"Waitlists": []}
    assert 13 not in [c["class_id"] for c in ok(api("student261", "GET", "/students/261/classes"))["classes"]]
    redis = connect()
    assert not redis.exists(redis_keys.class_waitlist(13))
    assert all(redis.zscore(redis_keys.student_waitlists(s), 13) is None for s in (1, 83, 84, 85, 86, 87))
    gone = api("instructor513", "GET", "/instructors/513/classes/13/enrollment")
    assert error_code(gone, 404) == "class_not_found"

    assert error_code(api("registrar551", "DELETE", "/registrar/classes/13"), 404) == "class_not_found"
    assert ok(api("student1", "POST", "/students/1/classes/16/enroll"), 202)["waitlist_position"] == 5


def test_changing_the_instructor_moves_the_class_to_them(fresh, api):
    body = ok(api("registrar551", "PUT", "/registrar/classes/4/instructors/505"))
    assert (body["class_id"], body["instructor_id"], body["enrolled"], body["name"]) == (
        4,
        505,
        30,
        "Introduction to Computer Science",
    )
    assert ok(api("instructor505", "GET", "/instructors/505/classes/4/waitlist"))["waitlist"][0]["student_id"] == 79
    former = api("instructor504", "GET", "/instructors/504/classes/4/enrollment")
    assert error_code(former, 403) == "class_not_taught"
    assert catalogue(api)[4]["instructor_id"] == 505


def test_freezing_stops_promotion_until_unfrozen(fresh, api):
    assert ok(api("registrar551", "PUT", FREEZE, json={"frozen": True})) == {"frozen": True, "promoted": []}

    dropped = ok(api("student55", "PUT", "/students/55/classes/4/drop"))
    assert dropped["promoted"] == []
    assert waiting(api, 4) == [79, 80, 1]
    assert catalogue(api)[4]["open_seats"] == 1
    joined = api("student2", "POST", "/students/2/classes/4/enroll")
    assert ok(joined, 202)["waitlist_position"] == 4, "an open seat goes to those already waiting"
    direct = api("student2", "POST", "/students/2/classes/1/enroll")
    assert ok(direct, 201)["status"] == "enrolled", "a class nobody waits for still takes students"
    raised = ok(api("registrar551", "PATCH", "/registrar/classes/4", json={"max_enroll": 31}))
    assert (raised["promoted"], raised["open_seats"]) == ([], 2)

    assert ok(api("registrar551", "PUT", FREEZE, json={"frozen": False})) == {
        "frozen": False,
        "promoted": [{"class_id": 4, "student_id": 79}, {"class_id": 4, "student_id": 80}],
    }
    assert waiting(api, 4) == [1, 2]
    assert catalogue(api)[4]["open_seats"] == 0
    assert ok(api("registrar551", "PUT", FREEZE, json={"frozen": False}))["promoted"] == []
