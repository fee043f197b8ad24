"""Login throttling under concurrent guessing: the limit counts attempts that may still
be running, so a burst of parallel guesses gets no more password checks than the limit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import fakeredis
import pytest

from chalicelib.adapters.redis_auth import RedisLoginThrottle
from chalicelib.adapters.tokens import JwtCodec
from chalicelib.domain.auth import AuthService
from chalicelib.domain.errors import TooManyAttempts, Unauthorized
from chalicelib.domain.model import Role, User

PER_USER, PER_CLIENT, WINDOW = 3, 5, 60
BURST = 16


class SlowHasher:
    """Counts password checks; each takes as long as a real Argon2 check, roughly."""

    def __init__(self) -> None:
        self.checks = 0
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return f"hash:{password}"

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.checks += 1
        time.sleep(0.05)
        return password_hash == f"hash:{password}"


class Accounts:
    """Every username names a student whose password is `right`."""

    def credentials(self, username: str) -> tuple[User, str]:
        return User(7, username, Role.STUDENT, "", ""), "hash:right"


@pytest.fixture
def auth() -> AuthService:
    redis = fakeredis.FakeRedis(decode_responses=True)
    return AuthService(
        users=Accounts(),
        hasher=SlowHasher(),
        tokens=JwtCodec("unit-test-signing-key-0123456789abcdef", 60),
        throttle=RedisLoginThrottle(redis, WINDOW, PER_USER, PER_CLIENT),
    )


def burst(auth: AuthService, attempts: list[tuple[str, str, str]]) -> list[str]:
    """All attempts at once; the outcome of each: ok, unauthorized or throttled."""
    start = threading.Barrier(len(attempts))

    def attempt(username: str, password: str, client: str) -> str:
        start.wait()
        try:
            auth.login(username, password, client)
        except Unauthorized:
            return "unauthorized"
        except TooManyAttempts as error:
            assert error.retry_after > 0
            return "throttled"
        return "ok"

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(lambda a: attempt(*a), attempts))


def test_parallel_guesses_at_one_username_get_no_more_checks_than_the_limit(auth):
    outcomes = burst(auth, [("alice", f"guess{n}", f"203.0.113.{n}") for n in range(BURST)])

    assert auth.hasher.checks <= PER_USER
    assert outcomes.count("unauthorized") <= PER_USER
    assert outcomes.count("throttled") >= BURST - PER_USER
    with pytest.raises(TooManyAttempts):
        auth.login("alice", "right", "198.51.100.1")


def test_parallel_guesses_from_one_address_get_no_more_checks_than_the_limit(auth):
    outcomes = burst(auth, [(f"user{n}", "guess", "203.0.113.200") for n in range(BURST)])

    assert auth.hasher.checks <= PER_CLIENT
    assert outcomes.count("throttled") >= BURST - PER_CLIENT
    with pytest.raises(TooManyAttempts):
        auth.login("someone", "right", "203.0.113.200")
    assert auth.login("someone", "right", "203.0.113.201")[0]


def test_sign_ins_do_not_use_up_the_addresss_allowance(auth):
    # An attempt counts while it runs; a success takes its count back, so many people
    # signing in from one address (a campus NAT) leave its allowance for failures intact.
    for n in range(BURST):
        assert auth.login(f"user{n}", "right", "203.0.113.50")[0]
    for n in range(PER_CLIENT - 1):
        with pytest.raises(Unauthorized):
            auth.login(f"other{n}", "wrong", "203.0.113.50")
    assert auth.login("last", "right", "203.0.113.50")[0]


def test_a_success_resets_the_user_but_failures_still_count_for_the_address(auth):
    for _ in range(PER_USER - 1):
        with pytest.raises(Unauthorized):
            auth.login("student7", "wrong", "203.0.113.60")
    auth.login("student7", "right", "203.0.113.60")
    for _ in range(PER_USER - 1):
        with pytest.raises(Unauthorized):
            auth.login("student7", "wrong", "203.0.113.61")
    assert auth.login("student7", "right", "203.0.113.61")[0]
    # The success did not wipe the address's failures: it reaches its limit with the rest.
    for n in range(PER_CLIENT - (PER_USER - 1)):
        with pytest.raises(Unauthorized):
            auth.login(f"guesser{n}", "wrong", "203.0.113.60")
    with pytest.raises(TooManyAttempts):
        auth.login("latecomer", "right", "203.0.113.60")


def test_a_successful_login_leaves_no_counter_behind():
    redis = fakeredis.FakeRedis(decode_responses=True)
    throttle = RedisLoginThrottle(redis, WINDOW, PER_USER, PER_CLIENT)
    auth = AuthService(Accounts(), SlowHasher(), JwtCodec("unit-test-signing-key-0123456789abcdef", 60), throttle)

    auth.login("student7", "right", "203.0.113.70")
    assert redis.keys("*") == []

    with pytest.raises(Unauthorized):
        auth.login("student8", "wrong", "203.0.113.70")
    auth.login("student7", "right", "203.0.113.70")
    # The failure still counts for the address; the success took back only its own count.
    assert {k: redis.get(k) for k in redis.keys("*")} == {
        "auth:login-failures:user:student8": "1",
        "auth:login-failures:client:203.0.113.70": "1",
    }
