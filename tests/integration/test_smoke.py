"""The original demonstration over HTTP."""

from __future__ import annotations


def test_demo_drop_promotes_first_waitlisted_student(fresh):
    with fresh.client("student1") as student1:
        assert student1.get("/waitlist/students/1").json() == {
            "Waitlists": [
                {"class_id": 8, "waitlist_position": 1},
                {"class_id": 4, "waitlist_position": 3},
                {"class_id": 13, "waitlist_position": 6},
            ]
        }
    with fresh.client("student55") as student55:
        response = student55.put("/students/55/classes/4/drop")
    assert response.status_code == 200
    assert response.json()["promoted"] == [{"class_id": 4, "student_id": 79}]
    with fresh.client("instructor504") as instructor:
        waitlist = instructor.get("/instructors/504/classes/4/waitlist").json()["waitlist"]
    assert [entry["student_id"] for entry in waitlist] == [80, 1]
