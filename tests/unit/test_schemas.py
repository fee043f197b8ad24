"""Request bodies: strict types, no extra fields, constrained names."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from chalicelib.api.schemas import (
    CreateClassRequest,
    CreateUserRequest,
    FreezeRequest,
    LoginRequest,
    RegisterRequest,
    UpdateClassRequest,
)

CLASS = {
    "department": "CPSC",
    "course_code": "223P",
    "section": 1,
    "name": "Python Programming",
    "instructor_id": 501,
    "max_enroll": 25,
}


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (RegisterRequest, {"username": "alice_1", "password": "long enough"}),
        (RegisterRequest, {"username": "a.b-c", "password": "long enough", "name": "A", "email": "a@example.edu"}),
        (LoginRequest, {"username": "alice", "password": "x"}),
        (CreateUserRequest, {"username": "prof", "password": "long enough", "role": "instructor"}),
        (CreateClassRequest, CLASS),
        (UpdateClassRequest, {"max_enroll": 0}),
        (UpdateClassRequest, {"name": "Renamed"}),
        (FreezeRequest, {"frozen": False}),
    ],
)
def test_valid_bodies_are_accepted(model: type[BaseModel], body: dict) -> None:
    assert model.model_validate(body).model_dump(exclude_unset=True) == body


@pytest.mark.parametrize(
    ("model", "body"),
    [
        pytest.param(
            RegisterRequest, {"username": "alice", "password": "long enough", "role": "registrar"}, id="extra"
        ),
        pytest.param(LoginRequest, {"username": "alice", "password": "x", "admin": True}, id="extra login"),
        pytest.param(FreezeRequest, {"frozen": True, "also": 1}, id="extra freeze"),
        pytest.param(RegisterRequest, {"username": "alice", "password": 12345678}, id="int password"),
        pytest.param(RegisterRequest, {"username": "alice"}, id="no password"),
        pytest.param(RegisterRequest, {"username": "alice", "password": "short"}, id="short password"),
        pytest.param(CreateClassRequest, {**CLASS, "section": "1"}, id="string section"),
        pytest.param(CreateClassRequest, {**CLASS, "max_enroll": True}, id="bool capacity"),
        pytest.param(CreateClassRequest, {**CLASS, "max_enroll": -1}, id="negative capacity"),
        pytest.param(CreateClassRequest, {**CLASS, "instructor_id": 0}, id="zero instructor"),
        pytest.param(CreateClassRequest, {**CLASS, "department": "cpsc"}, id="lowercase department"),
        pytest.param(CreateClassRequest, {**CLASS, "name": "two\nlines"}, id="newline in name"),
        pytest.param(UpdateClassRequest, {}, id="nothing to change"),
        pytest.param(UpdateClassRequest, {"max_enroll": 2.5}, id="float capacity"),
        pytest.param(FreezeRequest, {"frozen": "true"}, id="string flag"),
        pytest.param(FreezeRequest, {"frozen": 1}, id="int flag"),
        pytest.param(CreateUserRequest, {"username": "boss", "password": "long enough", "role": "dean"}, id="role"),
        pytest.param(RegisterRequest, {"username": "bob", "password": "long enough", "email": "nope"}, id="email"),
    ],
)
def test_invalid_bodies_are_rejected(model: type[BaseModel], body: dict) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


@pytest.mark.parametrize(
    "username",
    ["Alice", "al", "a" * 33, "alice smith", "alice\n", "élise", "alice@example.edu", ""],
)
def test_bad_usernames_are_rejected(username: str) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate({"username": username, "password": "long enough"})
