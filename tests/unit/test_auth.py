"""Accounts, sign-in and access tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from chalicelib.adapters.tokens import ALGORITHM, ISSUER, JwtCodec
from chalicelib.domain.errors import Conflict, Forbidden, Unauthorized
from chalicelib.domain.model import Identity, Role
from tests.unit.conftest import World

PASSWORD = "correct horse battery"


def _claims(**changes: object) -> dict:
    """Valid claims with `changes` applied; a change to None removes the claim."""
    now = int(time.time())
    claims = {"sub": "7", "role": "student", "username": "s7", "iss": ISSUER, "iat": now, "exp": now + 60, **changes}
    return {name: value for name, value in claims.items() if value is not None}


def test_register_creates_a_student_who_can_log_in(world: World) -> None:
    user = world.auth.register("alice", PASSWORD, "Alice", "alice@example.edu")

    assert (user.username, user.role) == ("alice", Role.STUDENT)
    assert world.users.get(user.user_id) == user
    token, expires_in = world.auth.login("alice", PASSWORD)
    assert expires_in == world.settings.token_ttl_seconds
    assert world.auth.identify(token) == Identity(user.user_id, Role.STUDENT, "alice")


def test_registered_passwords_are_not_stored_in_clear(world: World) -> None:
    world.auth.register("alice", PASSWORD)

    _, password_hash = world.users.credentials("alice")

    assert PASSWORD not in password_hash
    assert password_hash.startswith("$argon2id$")


def test_duplicate_username_is_a_conflict(world: World) -> None:
    first = world.auth.register("alice", PASSWORD)

    with pytest.raises(Conflict) as refused:
        world.auth.register("alice", "another password")

    assert refused.value.code == "username_taken"
    # The first account keeps its password.
    token, _ = world.auth.login("alice", PASSWORD)
    assert world.auth.identify(token).user_id == first.user_id


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD)])
def test_login_with_bad_credentials_is_unauthorized(world: World, username: str, password: str) -> None:
    world.auth.register("alice", PASSWORD)

    with pytest.raises(Unauthorized) as refused:
        world.auth.login(username, password)

    assert refused.value.code == "invalid_credentials"


def test_token_round_trip_keeps_the_identity(world: World) -> None:
    identity = Identity(42, Role.INSTRUCTOR, "prof")

    assert world.auth.identify(world.tokens.issue(identity)) == identity


def test_expired_token_is_unauthorized(world: World) -> None:
    past = int(time.time()) - 120
    token = jwt.encode(_claims(iat=past, exp=past + 60), world.settings.jwt_secret, algorithm=ALGORITHM)

    with pytest.raises(Unauthorized) as refused:
        world.auth.identify(token)

    assert refused.value.code == "token_expired"


def test_token_signed_with_another_key_is_unauthorized(world: World) -> None:
    forger = JwtCodec("another-signing-key-0123456789abcdef-0123456789", 60)
    token = forger.issue(Identity(1, Role.REGISTRAR, "root"))

    with pytest.raises(Unauthorized) as refused:
        world.auth.identify(token)

    assert refused.value.code == "invalid_token"


def test_unsigned_token_is_unauthorized(world: World) -> None:
    token = jwt.encode(_claims(role="registrar"), None, algorithm="none")

    with pytest.raises(Unauthorized):
        world.auth.identify(token)


def test_hand_made_token_with_valid_claims_is_accepted(world: World) -> None:
    # The control for the forged tokens below: only their one change makes them fail.
    token = jwt.encode(_claims(), world.settings.jwt_secret, algorithm=ALGORITHM)

    assert world.auth.identify(token) == Identity(7, Role.STUDENT, "s7")


@pytest.mark.parametrize("token", ["not-a-token", "", "a.b.c"])
def test_garbage_tokens_are_unauthorized(world: World, token: str) -> None:
    with pytest.raises(Unauthorized):
        world.auth.identify(token)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"role": None}, id="no role"),
        pytest.param({"exp": None}, id="no expiry"),
        pytest.param({"role": "dean"}, id="unknown role"),
        pytest.param({"iss": "someone-else"}, id="other issuer"),
        pytest.param({"sub": "seven"}, id="non-numeric subject"),
    ],
)
def test_tokens_with_bad_claims_are_unauthorized(world: World, changes: dict) -> None:
    token = jwt.encode(_claims(**changes), world.settings.jwt_secret, algorithm=ALGORITHM)

    with pytest.raises(Unauthorized):
        world.auth.identify(token)


def test_only_the_registrar_creates_users(world: World) -> None:
    for actor in (world.student(), world.instructor()):
        with pytest.raises(Forbidden):
            world.auth.create_user(actor, "prof", PASSWORD, Role.INSTRUCTOR)
    assert world.users.credentials("prof") is None

    user = world.auth.create_user(world.registrar, "prof", PASSWORD, Role.INSTRUCTOR, "Prof", "prof@example.edu")

    assert world.users.get(user.user_id).role is Role.INSTRUCTOR
    token, _ = world.auth.login("prof", PASSWORD)
    assert world.auth.identify(token).role is Role.INSTRUCTOR
