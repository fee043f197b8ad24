"""The instructor routes over HTTP: enrollment, dropped and waitlist lists of a class,
and the administrative drop.

Sample data: class 4 is taught by instructor 504, full with students 31-60, waitlist
79, 80, 1; instructor 505 teaches class 5 only.

Tests that only read share one reset (`sample`) and come first; tests that change state
come last and start from their own reset (`fresh`).
"""

from __future__ import annotations

from tests.support.responses import error_code, ok

LISTS = ("enrollment", "dropped", "waitlist")


def students(*ids: int) -> list[dict]:
    return [{"student_id": s} for s in ids]


def lists_of_class_4(api, who: str = "instructor504") -> dict[str, dict]:
    return {name: ok(api(who, "GET", f"/instructors/504/classes/4/{name}")) for name in LISTS}


SAMPLE_CLASS_4 = {
    "enrollment": {"class_id": 4, "students": students(*range(31, 61))},
    "dropped": {"class_id": 4, "students": []},
    "waitlist": {
        "class_id": 4,
        "waitlist": [
            {"student_id": 79, "waitlist_position": 1},
            {"student_id": 80, "waitlist_position": 2},
            {"student_id": 1, "waitlist_position": 3},
        ],
    },
}


def test_the_instructor_and_the_registrar_see_the_lists_of_a_class(sample, api):
    assert lists_of_class_4(api) == SAMPLE_CLASS_4
    assert lists_of_class_4(api, "registrar551") == SAMPLE_CLASS_4
    assert ok(api("instructor501", "GET", "/instructors/501/classes/1/waitlist")) == {"class_id": 1, "waitlist": []}


def test_who_may_use_the_instructor_routes(sample, api):
    """Every refusal on every instructor route; then nothing has changed."""
    routes = [("GET", f"/instructors/{{iid}}/classes/{{cid}}/{name}") for name in LISTS]
    routes.append(("POST", "/instructors/{iid}/classes/{cid}/students/55/drop"))
    for method, template in routes:
        refusals = [
            ("instructor505", template.format(iid=505, cid=4), 403, "class_not_taught"),
            ("instructor505", template.format(iid=504, cid=4), 403, "forbidden"),
            ("student55", template.format(iid=504, cid=4), 403, "forbidden"),
            ("registrar551", template.format(iid=505, cid=4), 404, "class_not_taught"),
            ("registrar551", template.format(iid=1, cid=4), 404, "class_not_taught"),
            ("instructor504", template.format(iid=504, cid=99999), 404, "class_not_found"),
        ]
        for who, path, status, code in refusals:
            assert error_code(api(who, method, path), status) == code, (who, method, path)
    assert lists_of_class_4(api) == SAMPLE_CLASS_4


def test_administrative_drop_conflicts_and_unknown_students(sample, api):
    drop = "/instructors/504/classes/4/students/{}/drop"
    assert error_code(api("instructor504", "POST", drop.format(1)), 409) == "not_enrolled", "waitlisted only"
    assert error_code(api("instructor504", "POST", drop.format(2)), 409) == "not_enrolled"
    assert error_code(api("instructor504", "POST", drop.format(99999)), 404) == "student_not_found"
    assert error_code(api("instructor504", "POST", drop.format(505)), 404) == "student_not_found"
    assert lists_of_class_4(api) == SAMPLE_CLASS_4


# -- changing state -----------------------------------------------------------------


def test_administrative_drop_promotes_and_is_recorded(fresh, api):
    response = api("instructor504", "POST", "/instructors/504/classes/4/students/55/drop")
    assert ok(response) == {
        "class_id": 4,
        "student_id": 55,
        "status": "dropped",
        "promoted": [{"class_id": 4, "student_id": 79}],
    }
    assert ok(api("student55", "GET", "/students/55/classes"))["classes"] == []
    assert [c["class_id"] for c in ok(api("student79", "GET", "/students/79/classes"))["classes"]] == [4]

    by_registrar = api("registrar551", "POST", "/instructors/504/classes/4/students/56/drop")
    assert ok(by_registrar)["promoted"] == [{"class_id": 4, "student_id": 80}]

    lists = lists_of_class_4(api)
    assert lists["dropped"]["students"] == students(55, 56)
    assert lists["waitlist"]["waitlist"] == [{"student_id": 1, "waitlist_position": 1}]
    assert lists["enrollment"]["students"] == students(*range(31, 55), *range(57, 61), 79, 80)
