"""Security tests against the real stack (issue 8, item 3).

Over HTTP against `chalice local`: forged, tampered, expired and revoked tokens; every
route called by each wrong role, by another student and with forged tokens, with the
DynamoDB tables and Redis compared before and after; secrets kept out of response
bodies and the server's log. In-process (`chalice.test.Client`, on the stack's moto
server and Redis): webhook names that resolve to private addresses, and login
throttling with low limits and chosen client addresses.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from chalice import local as chalice_local
from chalice.test import Client

from app import app
from chalicelib import services
from chalicelib.adapters import aws, redis_keys
from chalicelib.adapters.redis_client import connect
from chalicelib.adapters.tokens import ISSUER
from chalicelib.api.http import ROUTE_DOCS
from chalicelib.config import get_settings
from tests.conftest import TEST_ENV
from tests.support.state import changes, snapshot

JWT_SECRET = TEST_ENV["JWT_SECRET"]
OTHER_KEY = "an-attackers-own-signing-key-0123456789abcdef"
ERROR_KEYS = {"message", "code", "details"}

# -- the routes, as the app declares them ------------------------------------------------

ROUTES = sorted((method, path) for path, entries in app.routes.items() for method in entries)
PUBLIC_ROUTES = {
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/{asset}"),
}
# Routes for any signed-in user whatever their role: only a missing or forged token is refused.
ANY_USER_ROUTES = {("GET", "/classes")}


def is_public(method: str, path: str) -> bool:
    doc = ROUTE_DOCS.get((path, method))
    return bool(doc and doc.public)


PROTECTED = [route for route in ROUTES if not is_public(*route)]

# Sample data: class 4 (instructor 504) is full with students 31-60 and waitlist 79, 80, 1;
# class 8 has waitlist 1, 81, 82; class 1 (instructor 501) has free seats. Every id below
# names something real, so that a request let through would change or show something,
# and each is chosen so that the rightful caller succeeds even after the requests before.
IDS = {"sid": 55, "cid": 4, "iid": 504, "uid": 57}
ID_OVERRIDES: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/students/{sid}/classes/{cid}/enroll"): {"cid": 1},
    ("POST", "/students/{sid}/subscribe/{cid}"): {"cid": 1},
    ("POST", "/instructors/{iid}/classes/{cid}/students/{sid}/drop"): {"sid": 56},
    ("GET", "/waitlist/students/{sid}"): {"sid": 1},
    ("GET", "/waitlist/students/{sid}/classes/{cid}"): {"sid": 1, "cid": 8},
    ("DELETE", "/waitlist/students/{sid}/classes/{cid}"): {"sid": 1, "cid": 8},
    ("PUT", "/registrar/classes/{cid}/instructors/{iid}"): {"iid": 501},
}
# A valid body for every protected route that takes one: the only reason left to refuse
# the request is who sends it.
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/registrar/classes"): {
        "department": "CPSC",
        "course_code": "499",
        "section": 3,
        "name": "Intrusion",
        "instructor_id": 501,
        "max_enroll": 5,
    },
    ("PATCH", "/registrar/classes/{cid}"): {"max_enroll": 40, "name": "Renamed"},
    ("PUT", "/registrar/automatic-enrollment/freeze"): {"frozen": True},
    ("POST", "/registrar/users"): {"username": "intruder", "password": "password1", "role": "registrar"},
    ("POST", "/students/{sid}/subscribe/{cid}"): {
        "email": "intruder@example.edu",
        "webhook_url": "http://127.0.0.1:9/hook",
    },
}


def ids_for(method: str, path: str, **changes: int) -> dict[str, int]:
    return {**IDS, **ID_OVERRIDES.get((method, path), {}), **changes}


def fill(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def audience(path: str) -> str:
    """Who may call a route, read from its path."""
    if path.startswith("/registrar/"):
        return "registrar"
    if "{iid}" in path:
        return "instructor"
    if "{sid}" in path:
        return "student"
    return "any user"


def wrong_callers(method: str, path: str) -> list[tuple[str, dict[str, int]]]:
    """(username, id changes) of everyone who must be refused on this route."""
    ids = ids_for(method, path)
    kind = audience(path)
    if kind == "registrar":
        return [("student55", {}), ("instructor504", {})]
    if kind == "instructor":
        # Another instructor on this instructor's path, and on their own path but a class they do not teach.
        return [("student55", {}), ("student79", {}), ("instructor501", {}), ("instructor501", {"iid": 501})]
    if kind == "student":
        other = 81 if ids["sid"] == 1 else 56
        # Another student; the class's own instructor; that instructor posing as a student id of their own.
        return [(f"student{other}", {}), ("instructor504", {}), ("instructor504", {"sid": 504})]
    return []


def rightful_caller(path: str, ids: dict[str, int]) -> str:
    kind = audience(path)
    if kind == "registrar":
        return "registrar551"
    if kind == "instructor":
        return f"instructor{ids['iid']}"
    return f"student{ids['sid']}"


# -- tokens -----------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict:
    return json.loads(unb64(token.split(".")[1]))


def with_claims(token: str, **changes: Any) -> str:
    """The token with changed claims under its original header and signature."""
    header, _, signature = token.split(".")
    claims = {**claims_of(token), **changes}
    return ".".join([header, b64(json.dumps(claims, separators=(",", ":")).encode()), signature])


def unsigned(claims: dict, alg: str = "none", signature: str = "") -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return ".".join([header, b64(json.dumps(claims).encode()), signature])


def signed(claims: dict, key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def forgeries(stack) -> dict[str, str | None]:
    """Authorization headers that must all be refused with 401 (None: no header at all).
    They claim the registrar, so that acceptance would show on every route."""
    registrar = stack.token("registrar551")
    claims = claims_of(registrar)
    now = int(time.time())
    return {
        "no token": None,
        "alg none": f"Bearer {unsigned(claims)}",
        "alg none, original signature": f"Bearer {unsigned(claims, signature=registrar.split('.')[2])}",
        "other key": f"Bearer {signed(claims, OTHER_KEY)}",
        "expired": f"Bearer {signed({**claims, 'iat': now - 7200, 'exp': now - 1})}",
        "student token, role changed": f"Bearer {with_claims(stack.token('student55'), role='registrar')}",
        "student token, sub changed": f"Bearer {with_claims(stack.token('student55'), sub='551')}",
    }


# -- HTTP helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def call(
    http: httpx.Client, method: str, path: str, authorization: str | None, body: dict | None = None
) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return http.request(method, path, headers=headers, json=body)


def bearer(stack, username: str) -> str:
    return f"Bearer {stack.token(username)}"


def assert_error(response: httpx.Response | Any, status: int, code: str | None = None) -> dict:
    status_code = response.status_code
    body = response.json() if isinstance(response, httpx.Response) else json.loads(response.body)
    assert status_code == status, body
    assert set(body) == ERROR_KEYS, body
    assert body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


# -- 1. tokens ----------------------------------------------------------------------------


def test_a_genuine_token_is_accepted_and_its_claims_are_as_expected(stack, http):
    """The control for the forgeries below: only their one change makes them fail."""
    token = stack.token("student55")
    assert call(http, "GET", "/students/55/classes", f"Bearer {token}").status_code == 200
    claims = claims_of(token)
    assert (claims["sub"], claims["role"], claims["iss"]) == ("55", "student", ISSUER)
    assert json.loads(unb64(token.split(".")[0]))["alg"] == "HS256"
    # Re-encoding the untouched claims gives the same token: the tampering helper changes only what it is told.
    assert with_claims(token) == token


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"role": "registrar"}, "/students/56/classes"),
        ({"role": "instructor", "sub": "504"}, "/instructors/504/classes/4/enrollment"),
        ({"sub": "56"}, "/students/56/classes"),
        ({"username": "registrar551"}, "/students/55/classes"),
        ({"exp": 4102444800}, "/students/55/classes"),
        ({"iss": "titan-enrollment "}, "/students/55/classes"),
    ],
    ids=["role->registrar", "role->instructor", "sub->other-student", "username", "exp-extended", "issuer"],
)
def test_a_claim_changed_under_the_original_signature_is_refused(stack, http, change, path):
    forged = with_claims(stack.token("student55"), **change)

    assert_error(call(http, "GET", path, f"Bearer {forged}"), 401, "invalid_token")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_unsigned_tokens_are_refused_however_alg_none_is_spelt(stack, http, alg):
    claims = claims_of(stack.token("registrar551"))
    original_signature = stack.token("registrar551").split(".")[2]
    for token in (unsigned(claims, alg), unsigned(claims, alg, original_signature), unsigned(claims, alg)[:-1]):
        response = call(http, "PUT", "/registrar/automatic-enrollment/freeze", f"Bearer {token}", {"frozen": True})
        assert_error(response, 401, "invalid_token")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_only_hs256_is_accepted_even_with_the_right_key(stack, http, algorithm):
    token = signed(claims_of(stack.token("student55")), JWT_SECRET, algorithm)

    assert_error(call(http, "GET", "/students/55/classes", f"Bearer {token}"), 401, "invalid_token")


def test_expiry_has_no_leeway_and_a_wrong_key_never_passes(stack, http):
    claims = claims_of(stack.token("student55"))
    now = int(time.time())
    expired = signed({**claims, "iat": now - 3600, "exp": now - 1})
    assert_error(call(http, "GET", "/students/55/classes", f"Bearer {expired}"), 401, "token_expired")
    for key in (OTHER_KEY, JWT_SECRET + "x", JWT_SECRET[:-1]):
        forged = signed({**claims, "role": "registrar"}, key)
        assert_error(call(http, "GET", "/students/56/classes", f"Bearer {forged}"), 401, "invalid_token")


def test_a_deleted_account_loses_its_token_within_seconds_and_cannot_log_in(stack, http):
    username, password = f"leaver_{secrets.token_hex(4)}", "leaving-soon-" + secrets.token_hex(4)
    created = call(
        http,
        "POST",
        "/registrar/users",
        bearer(stack, "registrar551"),
        {"username": username, "password": password, "role": "student"},
    )
    assert created.status_code == 201, created.text
    uid = created.json()["user_id"]
    login = http.post("/auth/login", json={"username": username, "password": password})
    token = f"Bearer {login.json()['access_token']}"
    assert call(http, "GET", f"/students/{uid}/classes", token).status_code == 200

    # Nobody but the registrar removes an account, and the registrar not their own.
    for who in ("student55", "instructor504"):
        assert_error(call(http, "DELETE", f"/registrar/users/{uid}", bearer(stack, who)), 403, "forbidden")
    assert_error(call(http, "DELETE", f"/registrar/users/{uid}", token), 403, "forbidden")
    removed = call(http, "DELETE", f"/registrar/users/{uid}", bearer(stack, "registrar551"))
    assert removed.status_code == 200, removed.text
    deleted_at = time.monotonic()

    while True:
        response = call(http, "GET", f"/students/{uid}/classes", token)
        if response.status_code != 200 or time.monotonic() - deleted_at > 6.5:
            break
        time.sleep(0.2)
    assert_error(response, 401, "account_removed")
    assert time.monotonic() - deleted_at <= 6.5
    assert_error(call(http, "POST", f"/students/{uid}/subscribe/1", token, {"email": "x@example.edu"}), 401)
    relogin = http.post("/auth/login", json={"username": username, "password": password})
    assert_error(relogin, 401, "invalid_credentials")
    assert_error(call(http, "DELETE", f"/registrar/users/{uid}", bearer(stack, "registrar551")), 404)
    registrar = claims_of(stack.token("registrar551"))["sub"]
    assert_error(call(http, "DELETE", f"/registrar/users/{registrar}", bearer(stack, "registrar551")), 409)


# -- 2. every route, every wrong caller ----------------------------------------------------


def test_the_public_routes_are_exactly_the_documented_ones():
    assert {route for route in ROUTES if is_public(*route)} == PUBLIC_ROUTES


def test_every_protected_route_has_an_audience_and_a_valid_sample_body():
    """A new route is swept automatically; these say what the sweep needs to know of it."""
    assert {r for r in PROTECTED if audience(r[1]) == "any user"} == ANY_USER_ROUTES
    with_body = {(m, p) for m, p in PROTECTED if ROUTE_DOCS[(p, m)].body is not None}
    assert with_body == set(BODIES)
    for method, path in PROTECTED:
        assert set(re.findall(r"\{(\w+)\}", path)) <= set(IDS), (method, path)
        if (method, path) not in ANY_USER_ROUTES:
            assert wrong_callers(method, path), (method, path)


def test_no_wrong_caller_or_forged_token_gets_through_and_nothing_changes(fresh, http):
    subscribed = call(
        http,
        "POST",
        "/students/55/subscribe/4",
        bearer(fresh, "student55"),
        {"email": "student55@example.edu", "webhook_url": "http://127.0.0.1:9/hook"},
    )
    assert subscribed.status_code == 201, subscribed.text  # so that unsubscribing would show
    forged = forgeries(fresh)
    for username in {who for route in PROTECTED for who, _ in wrong_callers(*route)}:
        fresh.token(username)  # logged in before the first snapshot
    before = snapshot()

    let_through: list[str] = []
    requests = 0
    for method, path in PROTECTED:
        body = BODIES.get((method, path))
        attempts = [(name, authorization, {}, 401) for name, authorization in forged.items()]
        attempts += [(who, bearer(fresh, who), change, 403) for who, change in wrong_callers(method, path)]
        for who, authorization, change, status in attempts:
            url = fill(path, ids_for(method, path, **change))
            response = call(http, method, url, authorization, body)
            requests += 1
            try:
                if authorization is None:
                    # No header at all: the gateway answers by itself, before the authorizer runs.
                    assert response.status_code == 401 and response.json()["message"]
                else:
                    assert_error(response, status)
            except AssertionError:
                let_through.append(f"{method} {url} as {who}: {response.status_code} {response.text[:200]}")

    assert let_through == []
    assert changes(before, snapshot()) == []
    assert requests >= 8 * len(PROTECTED)


def test_the_same_requests_succeed_for_the_rightful_caller(fresh, http):
    """The control for the sweep: its ids and bodies are valid, so a refusal there came
    from who asked."""
    call(
        http,
        "POST",
        "/students/55/subscribe/4",
        bearer(fresh, "student55"),
        {"email": "student55@example.edu"},
    )
    refused = []
    # Removals last, the class's removal at the very end, so that most requests find their data.
    for method, path in sorted(PROTECTED, key=lambda r: (r[0] == "DELETE", r[1].startswith("/registrar/classes"))):
        ids = ids_for(method, path)
        who = rightful_caller(path, ids)
        response = call(http, method, fill(path, ids), bearer(fresh, who), BODIES.get((method, path)))
        if not 200 <= response.status_code < 300:
            refused.append(f"{method} {fill(path, ids)} as {who}: {response.status_code} {response.text[:200]}")
    assert refused == []


# -- 3. secrets in bodies, listings and logs -------------------------------------------------


def test_secrets_stay_out_of_bodies_listings_and_the_server_log(fresh, http):
    log_path = fresh.api.log_path
    log_offset = log_path.stat().st_size
    registrar = bearer(fresh, "registrar551")
    bodies: list[str] = []

    def send(method: str, path: str, authorization: str | None, body: dict | None = None) -> httpx.Response:
        response = call(http, method, path, authorization, body)
        bodies.append(f"{method} {path} {response.status_code} {response.text}")
        return response

    tag = secrets.token_hex(4)
    staff = {"username": f"staff_{tag}", "password": f"staff-pw-{secrets.token_hex(8)}", "role": "instructor"}
    student = {"username": f"pupil_{tag}", "password": f"pupil-pw-{secrets.token_hex(8)}", "email": "p@example.edu"}
    wrong = [f"wrong-pw-{secrets.token_hex(8)}" for _ in range(3)]
    assert send("POST", "/registrar/users", registrar, staff).status_code == 201
    registered = send("POST", "/auth/register", None, student)
    assert registered.status_code == 201
    sid = registered.json()["user_id"]
    # Failed and malformed logins: none may echo what was sent.
    send("POST", "/auth/login", None, {"username": student["username"], "password": wrong[0]})
    send("POST", "/auth/login", None, {"username": f"nobody_{tag}", "password": wrong[1]})
    send("POST", "/auth/login", None, {"username": student["username"], "password": wrong[2] * 30})
    send("POST", "/auth/login", None, {"username": student["username"], "password": student["password"], "x": 1})
    send("POST", "/auth/register", None, {**student, "email": "not-an-address"})
    send("POST", "/auth/register", None, student)  # taken
    send("POST", "/registrar/users", registrar, {**staff, "role": "dean"})
    login = send("POST", "/auth/login", None, {"username": student["username"], "password": student["password"]})
    token = login.json()["access_token"]
    as_student = f"Bearer {token}"
    subscribed = call(
        http, "POST", f"/students/{sid}/subscribe/4", as_student, {"webhook_url": "http://127.0.0.1:9/hook"}
    )
    assert subscribed.status_code == 201, subscribed.text
    webhook_secret = subscribed.json()["subscription"]["secret"]
    assert webhook_secret.startswith("whsec_")
    send("POST", f"/students/{sid}/subscribe/4", as_student, {"webhook_url": "http://127.0.0.1:9/hook"})  # 409
    send("POST", f"/students/{sid}/subscribe/4", as_student, {"webhook_url": "ftp://x/y"})  # 422
    # Every GET route as the rightful caller, the registrar and an intruder.
    for method, path in ROUTES:
        if method != "GET" or "{asset}" in path:
            continue
        url = fill(path, {**IDS, "sid": sid})
        for authorization in (as_student, registrar, bearer(fresh, "student56"), None):
            send("GET", url, authorization)
    send("GET", f"/students/{sid}/subscriptions", as_student)
    password_hashes = [
        aws.client("dynamodb").get_item(TableName=get_settings().users_table, Key={"pk": {"S": f"LOGIN#{name}"}})[
            "Item"
        ]["password_hash"]["S"]
        for name in (staff["username"], student["username"])
    ]

    hidden = {
        "JWT key": JWT_SECRET,
        "webhook secret": webhook_secret,
        "webhook secret body": webhook_secret.removeprefix("whsec_"),
        "staff password": staff["password"],
        "student password": student["password"],
        **{f"wrong password {n}": w for n, w in enumerate(wrong)},
        **{f"password hash {n}": h for n, h in enumerate(password_hashes)},
    }
    markers = ["whsec_", "$argon2", "password_hash"]
    text = "\n".join(bodies)
    assert len(bodies) >= 40
    assert [name for name, value in hidden.items() if value in text] == []
    assert [marker for marker in markers if marker in text] == []

    log = log_path.read_bytes()[log_offset:].decode(errors="replace")
    assert f"/students/{sid}/subscribe/4" in log, "the log window holds this test's requests"
    in_log = {**hidden, "access token": token}
    assert [name for name, value in in_log.items() if value in log] == []
    assert [marker for marker in markers if marker in log] == []


# -- 4. webhook names that resolve to private addresses, at subscribe -----------------------


def fake_dns(table: dict[str, list[str]]) -> Callable:
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in table:
            return real(host, port, family, type, proto, flags)
        answers = []
        for address in table[host]:
            if ":" in address:
                answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 0, 0, 0)))
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0)))
        return answers

    return getaddrinfo


RESOLVED_PRIVATE = [
    ("loopback", ["127.0.0.1"]),
    ("cloud metadata", ["169.254.169.254"]),
    ("10/8", ["10.1.2.3"]),
    ("192.168/16", ["192.168.0.10"]),
    ("carrier-grade NAT", ["100.64.0.9"]),
    ("IPv6 loopback", ["::1"]),
    ("IPv6 unique local", ["fd00::5"]),
    ("IPv4-mapped private", ["::ffff:172.16.0.4"]),
    ("public first, then private", ["93.184.216.34", "10.0.0.1"]),
    ("private among public IPv6", ["2606:4700::1111", "fe80::1"]),
]
SUBSCRIBER, TARGET_CLASS = 77, 2


@pytest.fixture
def strict_app(stack, monkeypatch) -> Iterator[Client]:
    """The app in-process, configured as a deployed stage: webhooks must be public."""
    monkeypatch.setenv("ALLOW_PRIVATE_WEBHOOK_TARGETS", "false")
    services.reset()
    redis = connect()
    try:
        with Client(app) as client:
            yield client
    finally:
        monkeypatch.undo()
        services.reset()
        redis.delete(redis_keys.subscriptions(SUBSCRIBER), redis_keys.class_subscribers(TARGET_CLASS))


def subscribe_in_process(client: Client, stack, url: str):
    return client.http.post(
        f"/students/{SUBSCRIBER}/subscribe/{TARGET_CLASS}",
        headers={"Authorization": bearer(stack, f"student{SUBSCRIBER}"), "Content-Type": "application/json"},
        body=json.dumps({"webhook_url": url}).encode(),
    )


@pytest.mark.parametrize(("label", "addresses"), RESOLVED_PRIVATE, ids=[label for label, _ in RESOLVED_PRIVATE])
def test_a_name_that_resolves_to_a_private_address_is_refused_at_subscribe(
    strict_app, stack, monkeypatch, label, addresses
):
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns({"hooks.attacker.example": addresses}))

    response = subscribe_in_process(strict_app, stack, "https://hooks.attacker.example/hook")

    body = assert_error(response, 422, "invalid_webhook_url")
    assert "non-public" in body["message"]
    assert connect().hgetall(redis_keys.subscriptions(SUBSCRIBER)) == {}


def test_a_name_that_resolves_to_public_addresses_is_accepted_at_subscribe(strict_app, stack, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns({"hooks.example.org": ["93.184.216.34", "2606:4700::1111"]}))

    response = subscribe_in_process(strict_app, stack, "https://hooks.example.org/hook")

    assert response.status_code == 201, response.body
    assert str(TARGET_CLASS) in connect().hgetall(redis_keys.subscriptions(SUBSCRIBER))


# -- 5. login throttling per user and per client address --------------------------------------

PER_USER, PER_CLIENT, WINDOW = 3, 6, 120


@pytest.fixture
def throttled(stack, monkeypatch) -> Iterator[Callable[..., Any]]:
    """Log in through the app in-process with low limits, from a chosen client address."""
    monkeypatch.setenv("LOGIN_FAILURES_PER_USER", str(PER_USER))
    monkeypatch.setenv("LOGIN_FAILURES_PER_CLIENT", str(PER_CLIENT))
    monkeypatch.setenv("LOGIN_WINDOW_SECONDS", str(WINDOW))
    redis = connect()

    def forget_failures() -> None:
        stale = list(redis.scan_iter(match=redis_keys.login_failures("*", "*"), count=1000))
        if stale:
            redis.delete(*stale)

    forget_failures()
    services.reset()
    try:
        with Client(app) as client:

            def login(username: str, password: str, address: str, headers: dict | None = None):
                monkeypatch.setattr(chalice_local.LambdaEventConverter, "LOCAL_SOURCE_IP", address)
                return client.http.post(
                    "/auth/login",
                    headers={"Content-Type": "application/json", **(headers or {})},
                    body=json.dumps({"username": username, "password": password}).encode(),
                )

            yield login
    finally:
        monkeypatch.undo()
        services.reset()
        forget_failures()


def assert_throttled(response) -> int:
    assert_error(response, 429, "too_many_attempts")
    retry_after = response.headers["Retry-After"]
    assert re.fullmatch(r"[1-9][0-9]*", retry_after), retry_after
    assert int(retry_after) <= WINDOW
    return int(retry_after)


def test_failed_logins_lock_the_username_even_for_the_right_password(throttled):
    for _ in range(PER_USER):
        assert_error(throttled("student401", "wrong-password", "203.0.113.1"), 401, "invalid_credentials")

    assert_throttled(throttled("student401", "titan", "203.0.113.1"))
    # The lock is the username's: another address does not lift it ...
    assert_throttled(throttled("student401", "titan", "198.51.100.7"))
    # ... and another user at the first address (below its own limit) still signs in.
    assert throttled("student402", "titan", "203.0.113.1").status_code == 200


def test_a_successful_login_resets_the_users_count(throttled):
    for _ in range(PER_USER - 1):
        assert_error(throttled("student403", "wrong-password", "203.0.113.2"), 401)
    assert throttled("student403", "titan", "203.0.113.2").status_code == 200
    for _ in range(PER_USER - 1):
        assert_error(throttled("student403", "wrong-password", "203.0.113.3"), 401)
    assert throttled("student403", "titan", "203.0.113.3").status_code == 200


def test_failures_from_one_address_lock_that_address_for_every_user(throttled):
    # Unknown usernames count as well: one guess each, well below the per-user limit.
    for n in range(PER_CLIENT):
        assert_error(throttled(f"nobody{n}", "guess", "203.0.113.9"), 401, "invalid_credentials")

    assert_throttled(throttled("student404", "titan", "203.0.113.9"))
    # A forwarded-for header is the client's word, not the gateway's: it changes nothing.
    spoofed = {"X-Forwarded-For": "192.0.2.44", "X-Real-IP": "192.0.2.44", "Forwarded": "for=192.0.2.44"}
    assert_throttled(throttled("student404", "titan", "203.0.113.9", spoofed))
    # The same user from an address of its own is counted separately.
    assert throttled("student404", "titan", "203.0.113.10").status_code == 200
