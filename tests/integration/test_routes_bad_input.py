"""Bad requests on every route family: each is refused with a 4xx (never a 500) and
leaves DynamoDB and Redis exactly as they were.

The valid parts of each request would change state if they got through: ids name
student 55, enrolled in class 4 (instructor 504), and bodies are valid ones.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest

from chalicelib.adapters.tokens import ISSUER
from tests.conftest import TEST_ENV
from tests.support.state import snapshot

IDS = {"sid": "55", "cid": "4", "iid": "504"}

NEW_CLASS = {
    "class_id": 902,
    "department": "CPSC",
    "course_code": "499",
    "section": 1,
    "name": "Special Topics",
    "instructor_id": 501,
    "max_enroll": 10,
}
NEW_USER = {"username": "intruder", "password": "password1", "role": "registrar"}

# Every protected route of the contract, with a valid body where it takes one.
PROTECTED = [
    ("GET", "/classes", None),
    ("POST", "/students/{sid}/classes/{cid}/enroll", None),
    ("PUT", "/students/{sid}/classes/{cid}/drop", None),
    ("GET", "/students/{sid}/classes", None),
    ("GET", "/waitlist/students/{sid}", None),
    ("GET", "/waitlist/students/{sid}/classes/{cid}", None),
    ("DELETE", "/waitlist/students/{sid}/classes/{cid}", None),
    ("GET", "/instructors/{iid}/classes/{cid}/enrollment", None),
    ("GET", "/instructors/{iid}/classes/{cid}/dropped", None),
    ("GET", "/instructors/{iid}/classes/{cid}/waitlist", None),
    ("POST", "/instructors/{iid}/classes/{cid}/students/{sid}/drop", None),
    ("POST", "/registrar/classes", NEW_CLASS),
    ("PATCH", "/registrar/classes/{cid}", {"max_enroll": 31}),
    ("DELETE", "/registrar/classes/{cid}", None),
    ("PUT", "/registrar/classes/{cid}/instructors/{iid}", None),
    ("PUT", "/registrar/automatic-enrollment/freeze", {"frozen": True}),
    ("POST", "/registrar/users", NEW_USER),
]

BAD_IDS = ["abc", "-1", "0", "1.5"]
ODD_IDS = ["-55", "04", "1e3", "0x1f", "+4", "4abc", " 4", "٤", "9" * 19]

# (who, method, path, bodies that parse but fail validation: as dicts, or raw where json.dumps
# cannot write them)
BODY_ROUTES = [
    (
        None,
        "POST",
        "/auth/register",
        [
            {},
            {"username": "ab", "password": "password1"},
            {"username": "valid_name", "password": "password1", "is_admin": True},
            {"username": ["valid_name"], "password": "password1"},
            {"username": "valid_name", "password": None},
        ],
    ),
    (
        None,
        "POST",
        "/auth/login",
        [
            {},
            {"username": "student1"},
            {"username": "student1", "password": "titan", "remember": True},
            {"username": "student1", "password": True},
        ],
    ),
    (
        "registrar551",
        "POST",
        "/registrar/users",
        [
            {"username": "intruder", "password": "password1"},
            {**NEW_USER, "role": "root"},
            {**NEW_USER, "user_id": 7},
            {**NEW_USER, "password": 12345678},
        ],
    ),
    (
        "registrar551",
        "POST",
        "/registrar/classes",
        [
            {k: v for k, v in NEW_CLASS.items() if k != "name"},
            {**NEW_CLASS, "department": "cpsc"},
            {**NEW_CLASS, "course_code": "4 99"},
            {**NEW_CLASS, "section": 0},
            {**NEW_CLASS, "section": "1"},
            {**NEW_CLASS, "max_enroll": -1},
            {**NEW_CLASS, "max_enroll": 1001},
            {**NEW_CLASS, "max_enroll": 10.0},
            {**NEW_CLASS, "max_enroll": True},
            {**NEW_CLASS, "instructor_id": "501"},
            {**NEW_CLASS, "instructor_id": 0},
            {**NEW_CLASS, "class_id": -5},
            {**NEW_CLASS, "name": ""},
            {**NEW_CLASS, "name": "   "},
            {**NEW_CLASS, "name": "two\nlines"},
            {**NEW_CLASS, "enrolled_count": 3},
        ],
    ),
    (
        "registrar551",
        "PATCH",
        "/registrar/classes/4",
        [
            {},
            {"max_enroll": None, "name": None},
            {"max_enroll": -1},
            {"max_enroll": "31"},
            {"max_enroll": True},
            b'{"max_enroll": 1e400}',
            b'{"max_enroll": NaN}',
            {"name": ""},
            {"instructor_id": 505},
            {"max_enroll": 31, "enrolled_count": 0},
        ],
    ),
    (
        "registrar551",
        "PUT",
        "/registrar/automatic-enrollment/freeze",
        [{}, {"frozen": "true"}, {"frozen": 1}, {"frozen": None}, {"frozen": True, "everything": True}],
    ),
]

# Bodies no route accepts: (raw bytes, content type, status, code).
MALFORMED = [
    (b'{"frozen": tru', "application/json", 400, "malformed_json"),
    (b"[]", "application/json", 400, "malformed_json"),
    (b"", "application/json", 400, "body_required"),
    (json.dumps({"padding": "x" * (64 * 1024)}).encode(), "application/json", 413, "body_too_large"),
    (b'{"frozen": true}', "text/plain", 415, "unsupported_media_type"),
    (b"{'frozen': true}", "application/json", 400, "malformed_json"),
    (b'"frozen"', "application/json", 400, "malformed_json"),
    (b"null", "application/json", 400, "malformed_json"),
    (b"42", "application/json", 400, "malformed_json"),
    (b"  \n ", "application/json", 400, "body_required"),
    (b"\xff\xfe{}", "application/json", 400, "malformed_json"),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400, "malformed_json"),
    (b'{"frozen": ' + b"1" * 5000 + b"}", "application/json", 400, "malformed_json"),
]

# Requests a valid token makes but its holder may not: (who, method, path, body).
WRONG_PEOPLE = [
    ("student2", "POST", "/students/55/classes/1/enroll", None),
    ("student2", "PUT", "/students/55/classes/4/drop", None),
    ("student2", "DELETE", "/waitlist/students/79/classes/4", None),
    ("instructor504", "PUT", "/students/55/classes/4/drop", None),
    ("instructor505", "POST", "/instructors/504/classes/4/students/55/drop", None),
    ("instructor505", "POST", "/instructors/505/classes/4/students/55/drop", None),
    ("student55", "POST", "/instructors/504/classes/4/students/55/drop", None),
    *[
        (who, method, template.format(**IDS), body)
        for who in ("student55", "instructor504")
        for method, template, body in PROTECTED
        if template.startswith("/registrar/")
    ],
]

UNKNOWN_ROUTES = [
    ("GET", "/nope"),
    ("GET", "/students"),
    ("GET", "/students/55"),
    ("POST", "/students/55/classes/4/enrol"),
    ("GET", "/students//classes"),
    ("GET", "/waitlist/students/55/classes/4/position"),
    ("GET", "/registrar"),
    ("POST", "/instructors/504/classes/4/students/55"),
]

UNKNOWN_METHODS = [
    ("POST", "/classes"),
    ("DELETE", "/classes"),
    ("GET", "/students/55/classes/4/enroll"),
    ("DELETE", "/students/55/classes/4/enroll"),
    ("POST", "/students/55/classes/4/drop"),
    ("DELETE", "/students/55/classes"),
    ("POST", "/waitlist/students/55"),
    ("PUT", "/waitlist/students/55/classes/4"),
    ("DELETE", "/instructors/504/classes/4/enrollment"),
    ("POST", "/instructors/504/classes/4/waitlist"),
    ("GET", "/instructors/504/classes/4/students/55/drop"),
    ("GET", "/registrar/classes"),
    ("PUT", "/registrar/classes/4"),
    ("POST", "/registrar/classes/4"),
    ("GET", "/registrar/classes/4/instructors/505"),
    ("DELETE", "/registrar/classes/4/instructors/505"),
    ("GET", "/registrar/automatic-enrollment/freeze"),
    ("POST", "/registrar/automatic-enrollment/freeze"),
    ("GET", "/registrar/users"),
    ("GET", "/auth/login"),
    ("GET", "/auth/register"),
    ("DELETE", "/auth/login"),
]


@pytest.fixture(scope="module")
def baseline(stack) -> dict:
    stack.reset()
    return snapshot()


def refused(response, status: int | None = None, code: str | None = None) -> None:
    """A 4xx (the given one, if any) in the API's one error shape, from the app or the gateway."""
    where = f"{response.request.method} {response.request.url}"
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if status is not None:
        assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    body = response.json()
    assert body["message"], where
    assert set(body) == {"message", "code", "details"}, f"{where}: {body}"
    if code is not None:
        assert body["code"] == code, f"{where}: {body}"


def route_id(route: tuple) -> str:
    return f"{route[0]} {route[1]}"


def registrar_token(expired: bool = False, forged: bool = False) -> str:
    """A token for registrar 551 that has expired, or is signed with a key not the API's."""
    now = int(time.time())
    claims = {"sub": "551", "role": "registrar", "username": "registrar551", "iss": ISSUER, "iat": now - 120}
    secret = "a-signing-key-that-is-not-the-apis-0123456789" if forged else TEST_ENV["JWT_SECRET"]
    return jwt.encode({**claims, "exp": now + (-60 if expired else 600)}, secret, algorithm="HS256")


@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
def test_protected_route_refuses_bad_tokens_and_ids(api, baseline, route):
    method, template, body = route
    path = template.format(**IDS)
    refused(api(None, method, path, json=body), 401, "missing_token")
    for token, code in [
        (registrar_token(expired=True), "token_expired"),
        (registrar_token(forged=True), "invalid_token"),
    ]:
        refused(api(None, method, path, json=body, headers={"Authorization": f"Bearer {token}"}), 401, code)

    for name in (name for name in IDS if f"{{{name}}}" in template):
        for bad in BAD_IDS:
            refused(api("registrar551", method, template.format(**{**IDS, name: bad}), json=body), 400, "invalid_id")
        # Well formed but unknown, at the largest size accepted.
        refused(api("registrar551", method, template.format(**{**IDS, name: "9" * 18}), json=body), 404)
    assert snapshot() == baseline


def test_wrong_people_are_refused(api, baseline):
    for who, method, path, body in WRONG_PEOPLE:
        refused(api(who, method, path, json=body), 403)
    assert snapshot() == baseline


def test_odd_ids_are_refused(api, baseline):
    for bad in ODD_IDS:
        refused(api("registrar551", "PUT", f"/students/{bad}/classes/4/drop"), 400, "invalid_id")
        refused(api("registrar551", "DELETE", f"/registrar/classes/{bad}"), 400, "invalid_id")
    assert snapshot() == baseline


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: f"{r[1]} {r[2]}")
def test_bodies_are_validated(api, baseline, route):
    who, method, path, invalid = route
    for raw, content_type, status, code in MALFORMED:
        refused(api(who, method, path, content=raw, headers={"Content-Type": content_type}), status, code)
    for body in invalid:
        response = api(who, method, path, **({"content": body} if isinstance(body, bytes) else {"json": body}))
        refused(response, 422, "validation_error")
        assert response.json()["details"], body
        assert all(detail["field"] for detail in response.json()["details"]), body
    assert snapshot() == baseline


# Routes that change state and take no body, as the rightful caller would send them.
BODYLESS = [
    ("student55", "POST", "/students/55/classes/1/enroll"),
    ("student55", "PUT", "/students/55/classes/4/drop"),
    ("student79", "DELETE", "/waitlist/students/79/classes/4"),
    ("instructor504", "POST", "/instructors/504/classes/4/students/55/drop"),
    ("registrar551", "DELETE", "/registrar/classes/4"),
    ("student79", "DELETE", "/students/79/unsubscribe/4"),
]


@pytest.mark.parametrize("route", BODYLESS, ids=lambda r: f"{r[1]} {r[2]}")
def test_routes_without_a_body_refuse_one_and_do_nothing(api, baseline, route):
    who, method, path = route
    for raw, content_type, status, code in MALFORMED:
        if code == "body_required":
            continue  # blank is what these routes take
        refused(api(who, method, path, content=raw, headers={"Content-Type": content_type}), status, code)
    for fields in ({"class_id": 2}, {"force": True, "notify": False}):
        response = api(who, method, path, json=fields)
        refused(response, 422, "validation_error")
        assert [d["field"] for d in response.json()["details"]] == list(fields)
    assert snapshot() == baseline


@pytest.mark.parametrize("who", ["registrar551", None])
def test_unknown_routes_are_refused(stack, api, baseline, who):
    for method, path in UNKNOWN_ROUTES:
        # The gateway answers these itself, before any route, in the API's shape.
        response = api(who, method, path, json={"frozen": True})
        if "//" in path:  # matches a route with an empty id: refused there (400, or 401 without a token)
            refused(response)
        else:
            refused(response, 404, "route_not_found")
        # API Gateway's default answer would quote the Authorization header back.
        assert "Authorization=" not in response.text
        assert who is None or stack.token(who) not in response.text
    assert snapshot() == baseline


def test_unknown_methods_are_refused(api, baseline):
    for method, path in UNKNOWN_METHODS:
        refused(api("registrar551", method, path, json={"frozen": True}), 405, "method_not_allowed")
    for method, path in UNKNOWN_METHODS[:3]:
        refused(api(None, method, path, json={"frozen": True}), 405, "method_not_allowed")
    assert snapshot() == baseline
