"""Accounts and sign-in: who may register, how a password becomes a token."""

from __future__ import annotations

from typing import Protocol

from chalicelib.domain import access
from chalicelib.domain.errors import Conflict, NotFound, TooManyAttempts, Unauthorized
from chalicelib.domain.model import Identity, Role, User
from chalicelib.domain.ports import Users

# A removed account's tokens stop working within twice this: the authorizer's copy of the
# revocation list is at most this old, and so is an answer API Gateway cached for a token.
REVOCATION_DELAY_SECONDS = 5


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class TokenCodec(Protocol):
    ttl_seconds: int

    def issue(self, identity: Identity) -> str: ...

    def verify(self, token: str) -> Identity: ...


class LoginThrottle(Protocol):
    def attempt(self, username: str, client: str) -> int:
        """Seconds to wait if a limit is reached; else 0, and the attempt counts as a failure
        until `succeeded` says otherwise."""
        ...

    def succeeded(self, username: str, client: str) -> None: ...


class Revocations(Protocol):
    def revoke(self, user_id: int, for_seconds: int) -> None: ...

    def is_revoked(self, user_id: int) -> bool: ...


class AuthService:
    def __init__(
        self,
        users: Users,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        throttle: LoginThrottle | None = None,
        revocations: Revocations | None = None,
    ) -> None:
        self.users = users
        self.hasher = hasher
        self.tokens = tokens
        self.throttle = throttle
        self.revocations = revocations

    def register(self, username: str, password: str, name: str = "", email: str = "") -> User:
        """Anyone may create a student account."""
        return self._create(username, password, Role.STUDENT, name, email)

    def create_user(
        self, identity: Identity, username: str, password: str, role: Role, name: str = "", email: str = ""
    ) -> User:
        access.require_registrar(identity)
        return self._create(username, password, role, name, email)

    def login(self, username: str, password: str, client: str = "unknown") -> tuple[str, int]:
        """A token for a right password. Failed attempts are counted per username and per
        client address; past the limit, every attempt is refused until the window ends.
        An attempt is counted before its password is checked (a success takes it back),
        so guesses sent in parallel cannot all slip under the limit."""
        if self.throttle is not None:
            wait = self.throttle.attempt(username, client)
            if wait > 0:
                raise TooManyAttempts("Too many failed logins; try again later", retry_after=wait)
        found = self.users.credentials(username)
        # Hash even for an unknown user, so timing does not tell which usernames exist.
        password_hash = found[1] if found else self._decoy_hash()
        if not self.hasher.verify(password_hash, password) or found is None:
            raise Unauthorized("Invalid username or password", "invalid_credentials")
        if self.throttle is not None:
            self.throttle.succeeded(username, client)
        user = found[0]
        token = self.tokens.issue(Identity(user.user_id, user.role, user.username))
        return token, self.tokens.ttl_seconds

    def identify(self, token: str) -> Identity:
        identity = self.tokens.verify(token)
        if self.revocations is not None and self.revocations.is_revoked(identity.user_id):
            raise Unauthorized("This account no longer exists", "account_removed")
        return identity

    def delete_user(self, identity: Identity, user_id: int) -> None:
        """Remove an account; its tokens stop working (within the revocation refresh)."""
        access.require_registrar(identity)
        if user_id == identity.user_id:
            raise Conflict("A registrar cannot remove their own account", "cannot_remove_self")
        if not self.users.delete(user_id):
            raise NotFound(f"User {user_id} not found", "user_not_found")
        if self.revocations is not None:
            self.revocations.revoke(user_id, self.tokens.ttl_seconds)

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
