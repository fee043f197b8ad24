"""A request that fails its declared model (JSON body or query parameters) is answered 422
in the one error shape, and the answer names exactly the offending fields, in `details`
and in the message."""

from __future__ import annotations

import pytest

NEW_CLASS = {
    "class_id": 903,
    "department": "CPSC",
    "course_code": "498",
    "section": 1,
    "name": "Seminar",
    "instructor_id": 501,
    "max_enroll": 10,
}
NEW_USER = {"username": "new_instructor", "password": "password1", "role": "instructor"}
SUBSCRIBE = "/students/79/subscribe/4"
EMAIL = "student79@example.edu"

# (who, method, path, request, offending fields)
BODIES = [
    (None, "POST", "/auth/login", {"username": "student1"}, {"password"}),
    (None, "POST", "/auth/login", {"username": "student1", "password": 1234}, {"password"}),
    (None, "POST", "/auth/register", {"username": "ab", "password": "password1"}, {"username"}),
    (None, "POST", "/auth/register", {"username": "valid_name", "password": "short"}, {"password"}),
    ("registrar551", "POST", "/registrar/users", {**NEW_USER, "role": "root"}, {"role"}),
    ("registrar551", "POST", "/registrar/classes", {**NEW_CLASS, "section": 0}, {"section"}),
    (
        "registrar551",
        "POST",
        "/registrar/classes",
        {**NEW_CLASS, "department": "cpsc", "max_enroll": "10"},
        {"department", "max_enroll"},
    ),
    ("registrar551", "POST", "/registrar/classes", {**NEW_CLASS, "enrolled": 3}, {"enrolled"}),
    ("registrar551", "PATCH", "/registrar/classes/4", {"max_enroll": -1}, {"max_enroll"}),
    ("registrar551", "PATCH", "/registrar/classes/4", {"name": "two\nlines"}, {"name"}),
    ("registrar551", "PUT", "/registrar/automatic-enrollment/freeze", {"frozen": "yes"}, {"frozen"}),
    ("student79", "POST", SUBSCRIBE, {"email": 79}, {"email"}),
    ("student79", "POST", SUBSCRIBE, {"email": EMAIL, "events": ["x" * 65]}, {"events.0"}),
    ("student79", "POST", SUBSCRIBE, {"email": EMAIL, "events": ["enrollment.promoted"] * 9}, {"events"}),
]

# (query parameters of POST /students/79/subscribe/4, offending fields)
QUERIES = [
    ({"email": "a" * 310 + "@example.edu"}, {"email"}),
    ({"email": EMAIL, "webhook_url": "https://hooks.example.edu/" + "a" * 4096}, {"webhook_url"}),
    ({"email": EMAIL, "events": ",".join(["enrollment.promoted"] * 9)}, {"events"}),
    ({"email": EMAIL, "events": "enrollment.promoted," + "x" * 65}, {"events.1"}),
    ({"email": "b" * 320 + "@example.edu", "events": "x" * 65}, {"email", "events.0"}),
]


def assert_names(response, fields: set[str]) -> None:
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == 422, f"{where}: {response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"message", "code", "details"}, body
    assert body["code"] == "validation_error", body
    assert {detail["field"] for detail in body["details"]} == fields, body
    assert all(detail["message"] and detail["type"] for detail in body["details"]), body
    assert all(field in body["message"] for field in fields), body


@pytest.mark.parametrize(
    ("who", "method", "path", "request_body", "fields"),
    BODIES,
    ids=[f"{method} {path} {sorted(fields)}" for _, method, path, _, fields in BODIES],
)
def test_an_invalid_body_names_the_offending_fields(stack, who, method, path, request_body, fields) -> None:
    with stack.client(who) as client:
        assert_names(client.request(method, path, json=request_body), fields)


@pytest.mark.parametrize(("params", "fields"), QUERIES, ids=[str(sorted(fields)) for _, fields in QUERIES])
def test_invalid_query_parameters_name_the_offending_fields(stack, params, fields) -> None:
    with stack.client("student79") as client:
        assert_names(client.post(SUBSCRIBE, params=params), fields)


def test_the_body_and_the_query_are_one_request(stack) -> None:
    """A body field wins over the query parameter of the same name, so a bad body value is
    named even when the query gives a good one."""
    with stack.client("student79") as client:
        assert_names(client.post(SUBSCRIBE, params={"email": EMAIL}, json={"email": ["list"]}), {"email"})
