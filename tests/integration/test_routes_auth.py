"""POST /auth/register, POST /auth/login, POST /registrar/users, and how the API
treats missing, expired and forged bearer tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from chalicelib.adapters.tokens import ISSUER
from tests.conftest import TEST_ENV
from tests.support.responses import error_code, ok

SECRET = TEST_ENV["JWT_SECRET"]


def mint(secret: str = SECRET, algorithm: str = "HS256", **changes) -> str:
    """A token for student 1 like the API issues, with `changes` to its claims (None drops one)."""
    now = int(time.time())
    claims = {"sub": "1", "role": "student", "username": "student1", "iss": ISSUER, "iat": now, "exp": now + 3600}
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm=algorithm)


# -- login --------------------------------------------------------------------------


def test_login_returns_a_bearer_token_for_the_user(api):
    body = ok(api(None, "POST", "/auth/login", json={"username": "instructor504", "password": "titan"}))
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], issuer=ISSUER)
    assert (claims["sub"], claims["role"], claims["username"]) == ("504", "instructor", "instructor504")
    assert claims["exp"] - claims["iat"] == 3600

    authorized = {"Authorization": f"Bearer {body['access_token']}"}
    enrollment = api(None, "GET", "/instructors/504/classes/4/enrollment", headers=authorized)
    assert enrollment.status_code == 200


def test_login_accepts_a_json_body_without_content_type(api):
    response = api(None, "POST", "/auth/login", content=b'{"username": "student2", "password": "titan"}')
    assert ok(response)["token_type"] == "bearer"


def test_login_refuses_bad_credentials_without_telling_which_part(api):
    wrong_password = api(None, "POST", "/auth/login", json={"username": "student1", "password": "not-titan"})
    unknown_user = api(None, "POST", "/auth/login", json={"username": "nobody", "password": "titan"})
    for response in (wrong_password, unknown_user):
        assert error_code(response, 401) == "invalid_credentials"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong_password.json() == unknown_user.json()


@pytest.mark.parametrize(
    "body",
    [
        {"username": "student1"},
        {"password": "titan"},
        {"username": "", "password": "titan"},
        {"username": 1, "password": "titan"},
        {"username": "student1", "password": "titan", "role": "registrar"},
        {"username": "student1", "password": "x" * 300},
    ],
)
def test_login_rejects_malformed_credentials(api, body):
    response = api(None, "POST", "/auth/login", json=body)
    assert error_code(response, 422) == "validation_error"
    assert response.json()["details"], "details name the offending field"


# -- register -----------------------------------------------------------------------


def test_register_creates_a_student_who_can_sign_in(api):
    profile = {"username": "new_student", "password": "correct horse", "name": "New Student", "email": "n@example.edu"}
    created = ok(api(None, "POST", "/auth/register", json=profile), 201)
    sid = created.pop("user_id")
    assert sid > 600, "new accounts never reuse a sample id"
    assert created == {"username": "new_student", "role": "student", "name": "New Student", "email": "n@example.edu"}

    token = ok(api(None, "POST", "/auth/login", json={"username": "new_student", "password": "correct horse"}))
    as_new = {"Authorization": f"Bearer {token['access_token']}"}
    assert ok(api(None, "GET", f"/students/{sid}/classes", headers=as_new)) == {"student_id": sid, "classes": []}
    assert ok(api(None, "GET", f"/waitlist/students/{sid}", headers=as_new)) == {"Waitlists": []}
    assert error_code(api(None, "GET", "/students/1/classes", headers=as_new), 403) == "forbidden"

    sample = api(None, "POST", "/auth/register", json={"username": "registrar551", "password": "takeover!"})
    assert error_code(sample, 409) == "username_taken"
    old_password = api(None, "POST", "/auth/login", json={"username": "registrar551", "password": "titan"})
    assert ok(old_password)["token_type"] == "bearer", "a refused registration leaves the account alone"


def test_register_with_only_username_and_password(api):
    created = ok(api(None, "POST", "/auth/register", json={"username": "minimal", "password": "12345678"}), 201)
    assert (created["role"], created["name"], created["email"]) == ("student", "", "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ab", "password": "password1"}, "username"),
        ({"username": "Upper", "password": "password1"}, "username"),
        ({"username": "new_user", "password": "short"}, "password"),
        ({"username": "new_user", "password": 12345678}, "password"),
        ({"username": "new_user", "password": "password1", "email": "not-an-address"}, "email"),
        ({"username": "new_user", "password": "password1", "name": "two\nlines"}, "name"),
        ({"username": "new_user", "password": "password1", "role": "registrar"}, "role"),
        ({"password": "password1"}, "username"),
    ],
)
def test_register_rejects_invalid_profiles(api, body, field):
    response = api(None, "POST", "/auth/register", json=body)
    assert error_code(response, 422) == "validation_error"
    assert field in [detail["field"] for detail in response.json()["details"]]


# -- registrar creates users ----------------------------------------------------------


def test_registrar_creates_instructors_and_registrars(api):
    instructor = ok(
        api(
            "registrar551",
            "POST",
            "/registrar/users",
            json={"username": "prof_new", "password": "lecture-hall", "role": "instructor", "name": "Prof"},
        ),
        201,
    )
    assert (instructor["username"], instructor["role"], instructor["name"]) == ("prof_new", "instructor", "Prof")
    registrar = ok(
        api(
            "registrar551",
            "POST",
            "/registrar/users",
            json={"username": "dean_new", "password": "admissions", "role": "registrar"},
        ),
        201,
    )
    assert registrar["role"] == "registrar"
    assert registrar["user_id"] != instructor["user_id"]

    token = ok(api(None, "POST", "/auth/login", json={"username": "dean_new", "password": "admissions"}))
    as_dean = {"Authorization": f"Bearer {token['access_token']}"}
    # Past the role check: the new registrar is told the class is unknown, not forbidden.
    unknown = api(None, "DELETE", "/registrar/classes/99999", headers=as_dean)
    assert error_code(unknown, 404) == "class_not_found"

    duplicate = api(
        "registrar551",
        "POST",
        "/registrar/users",
        json={"username": "prof_new", "password": "lecture-hall", "role": "student"},
    )
    assert error_code(duplicate, 409) == "username_taken"


@pytest.mark.parametrize("who", ["student1", "instructor501"])
def test_only_the_registrar_creates_users(api, who):
    body = {"username": "sneaky", "password": "password1", "role": "registrar"}
    assert error_code(api(who, "POST", "/registrar/users", json=body), 403) == "forbidden"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "new_user", "password": "password1", "role": "admin"}, "role"),
        ({"username": "new_user", "password": "password1"}, "role"),
        ({"username": "new_user", "password": "password1", "role": "instructor", "user_id": 7}, "user_id"),
    ],
)
def test_registrar_users_rejects_invalid_bodies(api, body, field):
    response = api("registrar551", "POST", "/registrar/users", json=body)
    assert error_code(response, 422) == "validation_error"
    assert field in [detail["field"] for detail in response.json()["details"]]


# -- bearer tokens ------------------------------------------------------------------


def test_a_missing_token_is_refused(api):
    response = api(None, "GET", "/students/1/classes")
    assert response.status_code == 401
    assert response.json()["message"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (f"Bearer {mint(exp=int(time.time()) - 30)}", "token_expired"),
        (f"Bearer {mint(secret='another-key-of-sufficient-length-0123456789')}", "invalid_token"),
        (f"Bearer {mint(secret=None, algorithm='none')}", "invalid_token"),
        (f"Bearer {mint(iss='someone-else')}", "invalid_token"),
        (f"Bearer {mint(exp=None)}", "invalid_token"),
        (f"Bearer {mint(role='superuser')}", "invalid_token"),
        (f"Bearer {mint(sub='student1')}", "invalid_token"),
        ("Bearer not.a.jwt", "invalid_token"),
        (f"Basic {mint()}", "invalid_token"),
        (mint(), "invalid_token"),
        ("Bearer", "invalid_token"),
    ],
    ids=[
        "expired",
        "other-key",
        "alg-none",
        "other-issuer",
        "no-exp",
        "unknown-role",
        "non-numeric-sub",
        "garbage",
        "basic-scheme",
        "no-scheme",
        "no-token",
    ],
)
def test_bad_tokens_are_refused_in_the_error_shape(api, authorization, code):
    response = api(None, "GET", "/students/1/classes", headers={"Authorization": authorization})
    assert error_code(response, 401) == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_minted_token_with_the_right_key_is_accepted(api):
    response = api(None, "GET", "/students/1/classes", headers={"Authorization": f"Bearer {mint()}"})
    assert ok(response)["student_id"] == 1


def test_a_token_grants_only_its_own_role(api):
    forged_role = mint(secret="another-key-of-sufficient-length-0123456789", role="registrar", sub="1")
    escalated = api(
        None,
        "PUT",
        "/registrar/automatic-enrollment/freeze",
        json={"frozen": True},
        headers={"Authorization": f"Bearer {forged_role}"},
    )
    assert error_code(escalated, 401) == "invalid_token"
    as_student = api("student1", "PUT", "/registrar/automatic-enrollment/freeze", json={"frozen": True})
    assert error_code(as_student, 403) == "forbidden"
