"""Accounts and sign-in: who may register, how a password becomes a token."""

from __future__ import annotations

from typing import Protocol

from chalicelib.domain import access
from chalicelib.domain.errors import Conflict, Unauthorized
from chalicelib.domain.model import Identity, Role, User
from chalicelib.domain.ports import Users


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class TokenCodec(Protocol):
    ttl_seconds: int

    def issue(self, identity: Identity) -> str: ...

    def verify(self, token: str) -> Identity: ...


class AuthService:
    def __init__(self, users: Users, hasher: PasswordHasher, tokens: TokenCodec) -> None:
        self.users = users
        self.hasher = hasher
        self.tokens = tokens

    def register(self, username: str, password: str, name: str = "", email: str = "") -> User:
        """Anyone may create a student account."""
        return self._create(username, password, Role.STUDENT, name, email)

    def create_user(
        self, identity: Identity, username: str, password: str, role: Role, name: str = "", email: str = ""
    ) -> User:
        access.require_registrar(identity)
        return self._create(username, password, role, name, email)

    def login(self, username: str, password: str) -> tuple[str, int]:
        found = self.users.credentials(username)
        # Hash even for an unknown user, so timing does not tell which usernames exist.
        password_hash = found[1] if found else self._decoy_hash()
        if not self.hasher.verify(password_hash, password) or found is None:
            raise Unauthorized("Invalid username or password", "invalid_credentials")
        user = found[0]
        token = self.tokens.issue(Identity(user.user_id, user.role, user.username))
        return token, self.tokens.ttl_seconds

    def identify(self, token: str) -> Identity:
        return self.tokens.verify(token)

    def _create(self, username: str, password: str, role: Role, name: str, email: str) -> User:
        user = self.users.create(username, self.hasher.hash(password), role, name, email)
        if user is None:
            raise Conflict(f"Username {username!r} is taken", "username_taken")
        return user

    _decoy: str | None = None

    def _decoy_hash(self) -> str:
        if AuthService._decoy is None:
            AuthService._decoy = self.hasher.hash("not-a-password")
        return AuthService._decoy
