"""Conditional GET of waitlist positions over HTTP (chalice local) and in-process.

RFC 9110 §8.8.3 (ETag), §13.1.2 (If-None-Match), §15.4.5 (304 Not Modified).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import redis.connection
from chalice.test import Client

from app import app
from chalicelib import services
from chalicelib.adapters import aws
from chalicelib.domain.auth import AuthService

ALL = "/waitlist/students/1"
CLASS_4 = "/waitlist/students/1/classes/4"
DEMO_BODY = {
    "Waitlists": [
        {"class_id": 8, "waitlist_position": 1},
        {"class_id": 4, "waitlist_position": 3},
        {"class_id": 13, "waitlist_position": 6},
    ]
}


def assert_validators(response: httpx.Response) -> str:
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2, "a strong, quoted entity tag"
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Vary"] == "Authorization"
    assert len(response.headers.get_list("Content-Type")) <= 1
    return etag


def assert_not_modified(response: httpx.Response, etag: str) -> None:
    assert response.status_code == 304
    assert response.content == b""
    assert assert_validators(response) == etag


def get(client: httpx.Client, path: str, etag: str | None = None) -> httpx.Response:
    return client.get(path, headers={"If-None-Match": etag} if etag is not None else {})


def test_demonstration_sequence_for_student_1(fresh):
    with fresh.client("student1") as student1:
        first = get(student1, ALL)
        assert first.status_code == 200
        assert first.json() == DEMO_BODY
        assert first.headers["Content-Type"] == "application/json"
        etag = assert_validators(first)

        assert_not_modified(get(student1, ALL, etag), etag)

        assert student1.delete("/waitlist/students/1/classes/8").status_code == 200

        changed = get(student1, ALL, etag)
        assert changed.status_code == 200
        assert changed.json() == {"Waitlists": DEMO_BODY["Waitlists"][1:]}
        new_etag = assert_validators(changed)
        assert new_etag != etag

        assert_not_modified(get(student1, ALL, new_etag), new_etag)


@pytest.mark.parametrize(
    ("field", "status"),
    [
        pytest.param("{etag}", 304, id="single tag"),
        pytest.param('"a", {etag}, "b"', 304, id="list with the match in the middle"),
        pytest.param("W/{etag}", 304, id="weak tag"),
        pytest.param("*", 304, id="star"),
        pytest.param('"a", "b"', 200, id="list without the tag"),
        pytest.param("{bare}", 200, id="unquoted garbage"),
        pytest.param("", 200, id="empty header"),
        pytest.param("{etag}, {bare}", 200, id="garbage after the tag"),
    ],
)
@pytest.mark.parametrize("path", [ALL, CLASS_4])
def test_if_none_match_cases(sample, path, field, status):
    with sample.client("student1") as student1:
        etag = get(student1, path).headers["ETag"]
        response = get(student1, path, field.format(etag=etag, bare=etag.strip('"')))
    assert response.status_code == status
    assert assert_validators(response) == etag
    if status == 304:
        assert response.content == b""
    else:
        assert response.json()


def test_keep_alive_200_304_200_304_on_one_connection(sample):
    with sample.client("student1") as student1:
        etag = get(student1, ALL).headers["ETag"]
        responses = [get(student1, ALL, tag) for tag in (None, etag, None, etag)]
        assert [r.status_code for r in responses] == [200, 304, 200, 304]
        peers = {r.extensions["network_stream"].get_extra_info("client_addr") for r in responses}
        assert len(peers) == 1 and None not in peers, "all four answers came over one connection"
        # The connection is still sound after the last 304.
        assert get(student1, CLASS_4).status_code == 200


def test_someone_ahead_leaving_changes_the_etag(fresh):
    with fresh.client("student1") as student1:
        before = {path: get(student1, path).headers["ETag"] for path in (ALL, CLASS_4)}
        with fresh.client("student79") as student79:
            assert student79.delete("/waitlist/students/79/classes/4").status_code == 200
        for path, etag in before.items():
            response = get(student1, path, etag)
            assert response.status_code == 200
            assert response.headers["ETag"] != etag
        assert get(student1, CLASS_4).json() == {"class_id": 4, "waitlist_position": 2}


def test_someone_ahead_being_promoted_changes_the_etag(fresh):
    with fresh.client("student1") as student1:
        etag = get(student1, CLASS_4).headers["ETag"]
        with fresh.client("student55") as student55:
            assert student55.put("/students/55/classes/4/drop").json()["promoted"] == [
                {"class_id": 4, "student_id": 79}
            ]
        response = get(student1, CLASS_4, etag)
        assert response.status_code == 200
        assert response.json() == {"class_id": 4, "waitlist_position": 2}
        assert response.headers["ETag"] != etag


def test_someone_behind_leaving_keeps_the_etag(fresh):
    with fresh.client("student1") as student1:
        etag = get(student1, ALL).headers["ETag"]
        with fresh.client("student82") as student82:
            assert student82.delete("/waitlist/students/82/classes/8").status_code == 200
        assert_not_modified(get(student1, ALL, etag), etag)


def test_etag_is_per_body_not_per_student(fresh):
    with fresh.client("student1") as student1, fresh.client("student79") as student79:
        mine = get(student1, ALL)
        theirs = get(student79, "/waitlist/students/79")
    assert theirs.json() == {"Waitlists": [{"class_id": 4, "waitlist_position": 1}]}
    assert mine.headers["ETag"] != theirs.headers["ETag"]


@pytest.fixture
def round_trips(stack, monkeypatch) -> Iterator[Counter]:
    """Count Redis round trips (each write of a command or pipeline to a socket) and
    DynamoDB requests made in this process. The authorizer's round trips (its revocation
    list, refreshed every few seconds) are counted apart: deployed, it is a function of its
    own whose answers API Gateway caches per token."""
    counts: Counter = Counter()
    send = redis.connection.AbstractConnection.send_packed_command
    identify = AuthService.identify
    in_authorizer = False

    def counting_send(self, command, check_health=True):
        counts["authorizer redis" if in_authorizer else "redis"] += 1
        return send(self, command, check_health)

    def counting_identify(service, token):
        nonlocal in_authorizer
        in_authorizer = True
        try:
            return identify(service, token)
        finally:
            in_authorizer = False

    def count_dynamodb(**_kwargs) -> None:
        counts["dynamodb"] += 1

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting_send)
    monkeypatch.setattr(AuthService, "identify", counting_identify)
    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb", count_dynamodb)
    try:
        yield counts
    finally:
        events.unregister("before-call.dynamodb", count_dynamodb)


def test_200_and_304_use_at_most_2_redis_round_trips_and_no_dynamodb(fresh, round_trips):
    headers = {"Authorization": f"Bearer {fresh.token('student1')}"}
    with Client(app, stage_name="local") as client:
        # The first request builds the services and may open a Redis connection (a handshake).
        warm = client.http.get(ALL, headers=headers)
        assert warm.status_code == 200
        assert round_trips["dynamodb"] == 0
        etag = warm.headers["ETag"]
        for path, none_match, status, redis_trips in [
            (ALL, None, 200, 2),
            (ALL, etag, 304, 2),
            (CLASS_4, None, 200, 1),
            (CLASS_4, "*", 304, 1),
        ]:
            round_trips.clear()
            extra = {"If-None-Match": none_match} if none_match else {}
            response = client.http.get(path, headers={**headers, **extra})
            assert response.status_code == status
            if status == 304:
                assert response.body == b""
            assert round_trips["redis"] == redis_trips <= 2, path
            assert round_trips["authorizer redis"] <= 1, path
            assert round_trips["dynamodb"] == 0, path

        # A request that falls due for the authorizer's refresh: one round trip more, its own.
        services.auth().revocations._loaded_at = float("-inf")
        round_trips.clear()
        assert client.http.get(ALL, headers={**headers, "If-None-Match": etag}).status_code == 304
        assert round_trips == Counter({"redis": 2, "authorizer redis": 1})

    # The hooks see the service's own clients: a lookup through it is counted.
    round_trips.clear()
    services.enrollment().users.get(1)
    services.enrollment().waitlists.length(4)
    assert round_trips == Counter(dynamodb=1, redis=1)
