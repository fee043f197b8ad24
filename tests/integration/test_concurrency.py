"""Concurrent requests over HTTP against the threaded `chalice local`: seats are never
oversold, counts match the records, and every student ends in exactly one place.

Checks read DynamoDB and Redis directly, in-process, through the same adapters."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import httpx
import pytest

from chalicelib import services
from chalicelib.adapters.dynamodb import deserialize, serialize
from chalicelib.adapters.tables import BY_STUDENT_INDEX
from chalicelib.adapters.tokens import JwtCodec
from chalicelib.config import get_settings
from chalicelib.domain import events
from chalicelib.domain.model import ClassSection, EnrollmentState, Identity, Role
from tests.conftest import TEST_ENV

REGISTRAR = 551
INSTRUCTOR = 501
# Students on no sample waitlist, so the three-waitlists limit never interferes.
FREE_STUDENTS = range(300, 500)

_codec = JwtCodec(TEST_ENV["JWT_SECRET"], 3600)
_class_ids = count(9000)


def token(user_id: int) -> str:
    role = Role.STUDENT if user_id <= 500 else Role.INSTRUCTOR if user_id <= 550 else Role.REGISTRAR
    return _codec.issue(Identity(user_id, role, f"{role.value}{user_id}"))


def client(stack, user_id: int) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token(user_id)}"}, timeout=60)


def concurrently(stack, calls: list[tuple[int, str, str]]) -> list[httpx.Response]:
    """Send each (student id, method, path) on its own open connection, all released at once."""
    barrier = threading.Barrier(len(calls))

    def send(call: tuple[int, str, str]) -> httpx.Response:
        student_id, method, path = call
        with client(stack, student_id) as http:
            # Open the keep-alive connection first, so the race is between requests, not connects.
            http.get(f"/students/{student_id}/classes").raise_for_status()
            barrier.wait(timeout=60)
            return http.request(method, path)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def create_class(stack, max_enroll: int) -> int:
    class_id = next(_class_ids)
    body = {
        "class_id": class_id,
        "department": "CPSC",
        "course_code": "499",
        "section": 1,
        "name": f"Concurrency {class_id}",
        "instructor_id": INSTRUCTOR,
        "max_enroll": max_enroll,
    }
    with client(stack, REGISTRAR) as registrar:
        response = registrar.post("/registrar/classes", json=body)
    assert response.status_code == 201, response.text
    return class_id


def enroll_one_by_one(stack, class_id: int, students: range, status: int) -> None:
    for student_id in students:
        with client(stack, student_id) as http:
            response = http.post(f"/students/{student_id}/classes/{class_id}/enroll")
        assert response.status_code == status, response.text


# -- direct reads of the stores ---------------------------------------------------------


def section(class_id: int) -> ClassSection:
    found, _, _, _ = services.enrollment().catalog.load(class_id)
    assert found is not None
    return found


def students_in(class_id: int, state: EnrollmentState) -> list[int]:
    return services.enrollment().catalog.students(class_id, state)


def waitlist(class_id: int) -> list[int]:
    return [entry.student_id for entry in services.enrollment().waitlists.entries(class_id)]


def promoted_events(student_id: int, class_id: int) -> int:
    catalog = services.enrollment().catalog
    response = catalog.client.query(
        TableName=get_settings().outbox_table,
        IndexName=BY_STUDENT_INDEX,
        KeyConditionExpression="student_id = :s",
        ExpressionAttributeValues=serialize({":s": student_id}),
    )
    items = [deserialize(item) for item in response["Items"]]
    return sum(1 for i in items if i["class_id"] == class_id and i["type"] == events.PROMOTED)


def assert_consistent(class_id: int) -> ClassSection:
    """The class's count is its enrolled records; nobody is both enrolled and waiting; no seat
    stays open while someone waits (automatic enrollment is not frozen here)."""
    current = section(class_id)
    enrolled = students_in(class_id, EnrollmentState.ENROLLED)
    waiting = waitlist(class_id)
    assert current.enrolled_count == len(enrolled) <= current.max_enroll
    assert len(set(enrolled)) == len(enrolled)
    assert not set(enrolled) & set(waiting)
    assert current.open_seats == 0 or not waiting
    return current


class SeatWatch:
    """Polls the class while requests run: the count must never pass the capacity."""

    def __init__(self, class_id: int) -> None:
        self.class_id = class_id
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.samples) < 10_000:
            current = section(self.class_id)
            self.samples.append((current.enrolled_count, current.max_enroll))
            self._stop.wait(0.005)

    def __enter__(self) -> SeatWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


# -- the races ------------------------------------------------------------------------


def test_fifty_students_race_for_the_last_seat(fresh):
    class_id = create_class(fresh, max_enroll=1)
    students = list(FREE_STUDENTS[:50])

    responses = concurrently(fresh, [(s, "POST", f"/students/{s}/classes/{class_id}/enroll") for s in students])

    by_status = Counter(r.status_code for r in responses)
    assert by_status == {201: 1, 202: 15, 409: 34}, [r.text for r in responses if r.status_code >= 500]
    winner = next(s for s, r in zip(students, responses, strict=True) if r.status_code == 201)
    positions = {
        s: r.json()["waitlist_position"] for s, r in zip(students, responses, strict=True) if r.status_code == 202
    }
    assert sorted(positions.values()) == list(range(1, 16))
    assert waitlist(class_id) == sorted(positions, key=positions.get)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"waitlist_full"}

    assert students_in(class_id, EnrollmentState.ENROLLED) == [winner]
    assert section(class_id).enrolled_count == 1
    assert_consistent(class_id)


@pytest.mark.parametrize(
    ("max_enroll", "expected"),
    [(5, 201), (1, 201), (0, 202)],
    ids=["open-class", "last-seat", "full-class"],
)
def test_one_student_enrolls_ten_times_at_once(fresh, max_enroll, expected):
    class_id = create_class(fresh, max_enroll=max_enroll)
    student = FREE_STUDENTS[0]

    responses = concurrently(fresh, [(student, "POST", f"/students/{student}/classes/{class_id}/enroll")] * 10)

    assert Counter(r.status_code for r in responses) == {expected: 1, 409: 9}
    enrolled = students_in(class_id, EnrollmentState.ENROLLED)
    assert enrolled == ([student] if expected == 201 else [])
    assert section(class_id).enrolled_count == len(enrolled)
    assert waitlist(class_id) == ([] if expected == 201 else [student])
    codes = {r.json()["code"] for r in responses if r.status_code == 409}
    assert codes == {"already_enrolled" if expected == 201 else "already_waitlisted"}
    assert_consistent(class_id)


@pytest.mark.parametrize("round_", range(3))
def test_drops_and_enrolls_at_once_keep_counts_and_places(fresh, round_):
    capacity = 10
    class_id = create_class(fresh, max_enroll=capacity)
    holders = FREE_STUDENTS[:capacity]
    waiting = FREE_STUDENTS[capacity : capacity + 5]
    newcomers = FREE_STUDENTS[capacity + 5 : capacity + 15]
    enroll_one_by_one(fresh, class_id, holders, 201)
    enroll_one_by_one(fresh, class_id, waiting, 202)

    calls = [(s, "PUT", f"/students/{s}/classes/{class_id}/drop") for s in holders]
    calls += [(s, "POST", f"/students/{s}/classes/{class_id}/enroll") for s in newcomers]
    with SeatWatch(class_id) as watch:
        responses = concurrently(fresh, calls)

    assert watch.samples and all(enrolled <= cap for enrolled, cap in watch.samples)
    outcome = dict(zip([s for s, _, _ in calls], responses, strict=True))
    assert {outcome[s].status_code for s in holders} == {200}
    assert {outcome[s].status_code for s in newcomers} <= {201, 202, 409}

    current = assert_consistent(class_id)
    enrolled = set(students_in(class_id, EnrollmentState.ENROLLED))
    queued = set(waitlist(class_id))
    refused = {s for s in newcomers if outcome[s].status_code == 409}
    assert set(students_in(class_id, EnrollmentState.DROPPED)) == set(holders)
    assert not (enrolled | queued) & set(holders)
    for student in (*waiting, *newcomers):
        places = [student in enrolled, student in queued, student in refused]
        assert places.count(True) == 1, (student, places)
    # Fifteen students want ten free seats: every seat is taken and five still wait.
    assert current.enrolled_count == capacity
    assert len(queued) == 5
    # Whoever was enrolled from the waitlist has exactly one promotion event; a newcomer
    # answered 201 took a seat directly (none) or was promoted inside its own request (one).
    for student in enrolled:
        answered_enrolled = student in newcomers and outcome[student].status_code == 201
        assert promoted_events(student, class_id) in ({0, 1} if answered_enrolled else {1})


@pytest.mark.parametrize("round_", range(2))
def test_newcomers_racing_drops_get_every_freed_seat(fresh, round_):
    capacity = 10
    class_id = create_class(fresh, max_enroll=capacity)
    holders = FREE_STUDENTS[:capacity]
    newcomers = FREE_STUDENTS[capacity : 2 * capacity]
    enroll_one_by_one(fresh, class_id, holders, 201)

    calls = [(s, "PUT", f"/students/{s}/classes/{class_id}/drop") for s in holders]
    calls += [(s, "POST", f"/students/{s}/classes/{class_id}/enroll") for s in newcomers]
    responses = concurrently(fresh, calls)

    assert Counter(r.status_code for r in responses[:capacity]) == {200: capacity}
    assert {r.status_code for r in responses[capacity:]} <= {201, 202}
    # A newcomer that read a full class and queued after the last drop looked for a
    # waiting student must still get the seat: none may stay open while someone waits.
    assert_consistent(class_id)
    assert sorted(students_in(class_id, EnrollmentState.ENROLLED)) == list(newcomers)
    assert waitlist(class_id) == []
