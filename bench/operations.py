"""DynamoDB requests, Redis round trips and latency of each API operation.

python -m bench.operations [--runs N] [--warmup W]

Starts its own moto DynamoDB server (infra/dynamodb_server.py) on a free loopback port,
loads the sample data into its own tables (titan-bench-*) and Redis database (12, which
must hold no key at the start: another process's keys there would be wiped), and
sends each operation through Chalice's in-process test client, so that the counters see
every call the application makes: DynamoDB requests by operation name (botocore's
before-call event on the application's client) and Redis round trips (one per command
or script call, one per pipeline). Prints a markdown table, checks the targets, saves
the table to bench/results/operations.md and stops everything it started. Exits 1 when
a target is missed, any Scan is seen, or a route of the app is neither measured nor
listed in NOT_MEASURED with its reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.bootstrap import clear_redis
from tests.support.processes import ROOT, Process, free_port, python, wait_for_port

RESULTS = ROOT / "bench" / "results" / "operations.md"

BENCH_ENV = {
    "STAGE": "local",
    "TABLE_PREFIX": "titan-bench",
    "REDIS_URL": "redis://127.0.0.1:6379/12",
    "JWT_SECRET": "bench-only-signing-key-0123456789abcdef-0123456789",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "PYTHONUNBUFFERED": "1",
}

# Classes made for the benchmark, next to the sample data's 1-16 (and 1001 up, allocated).
OPEN_CLASS, DROP_CLASS, LEAVE_CLASS, RAISE_CLASS = 901, 902, 903, 904
INSTRUCTOR_DROP_CLASS, CREATED_CLASS, REMOVED_CLASS, UNFREEZE_CLASS = 905, 906, 907, 908
# Students 300-499 wait on no sample waitlist; those from 440 up take the fixed roles.
ENROLLERS = range(300, 440)
DROP_PAIR = (440, 441)
INSTRUCTOR_DROP_PAIR = (442, 443)
LEAVERS = (450, 451, 452)
RAISE_HOLDER, RAISE_WAITING = 460, (461, 462)
REMOVED_ENROLLED, REMOVED_WAITING = (464, 465), (466, 467)
UNFREEZE_HOLDER, UNFREEZE_WAITING = 468, 469
SUBSCRIBER, LISTER, UNSUBSCRIBER, NOTIFIED = 470, 471, 472, 473
# Enrolled in four sample classes (1, 2, 13, 14).
MANY_CLASSES = 278
# Class 6 is taught by 506; the benchmark hands it to 507 and back.
REASSIGNED_CLASS, REASSIGNED_TO = 6, 507
REGISTRAR = 551
# The instructor of every benchmark class.
BENCH_INSTRUCTOR = 501

# Routes of the app that the table leaves out, with the reason the report gives.
NOT_MEASURED = dict.fromkeys(
    ("GET /openapi.json", "GET /docs", "GET /docs/{asset}"),
    "static documentation (the OpenAPI document, built once per process from the route table, "
    "and Swagger UI's page and files): they reach neither DynamoDB nor Redis",
)


class Tally:
    """What the application asks of DynamoDB and Redis while `counting` is on."""

    def __init__(self) -> None:
        self.counting = False
        self.dynamodb: Counter[str] = Counter()
        self.redis = 0
        # The authorizer's own round trips (its revocation list, refreshed every few seconds):
        # deployed, it is a function of its own whose answers API Gateway caches per token.
        self.authorizer = 0
        self.in_authorizer = False
        # Every DynamoDB call after attach, counted or not (warm-up and restore steps too).
        self.every_dynamodb_call: Counter[str] = Counter()

    def start(self) -> None:
        self.dynamodb = Counter()
        self.redis = 0
        self.authorizer = 0
        self.counting = True

    def stop(self) -> tuple[Counter[str], int, int]:
        self.counting = False
        return self.dynamodb, self.redis, self.authorizer

    def _round_trip(self) -> None:
        if not self.counting:
            return
        if self.in_authorizer:
            self.authorizer += 1
        else:
            self.redis += 1

    def attach(self, dynamodb: Any, redis: Any) -> None:
        """Hook the application's own DynamoDB client and Redis client, and the authorizer's
        token check (to tell its round trips from the route's)."""
        from chalicelib.domain.auth import AuthService

        identify = AuthService.identify

        def counted_identify(service: AuthService, token: str) -> Any:
            self.in_authorizer = True
            try:
                return identify(service, token)
            finally:
                self.in_authorizer = False

        AuthService.identify = counted_identify  # type: ignore[method-assign]

        def on_call(model: Any, **_: Any) -> None:
            self.every_dynamodb_call[model.name] += 1
            if self.counting:
                self.dynamodb[model.name] += 1

        dynamodb.meta.events.register("before-call.dynamodb", on_call)

        execute_command = redis.execute_command
        make_pipeline = redis.pipeline

        def counted_command(*args: Any, **kwargs: Any) -> Any:
            # Script calls (EVALSHA) come through here too.
            self._round_trip()
            return execute_command(*args, **kwargs)

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            execute = pipe.execute

            def counted_execute(*a: Any, **k: Any) -> Any:
                self._round_trip()
                return execute(*a, **k)

            pipe.execute = counted_execute
            return pipe

        redis.execute_command = counted_command
        redis.pipeline = counted_pipeline


@dataclass
class Operation:
    name: str
    request: str
    expected: int
    send: Callable[[int], Any]
    # Untimed and uncounted, after each run: puts the state back for the next one.
    restore: Callable[[int], None] = lambda run: None
    # Untimed, before the first run and after the last, for a starting state that would
    # disturb the other operations (the freeze flag is global).
    setup: Callable[[], None] = lambda: None
    teardown: Callable[[], None] = lambda: None
    dynamodb_max: int | None = None
    redis_max: int | None = None


@dataclass
class Measured:
    operation: Operation
    latencies: list[float] = field(default_factory=list)
    dynamodb: list[Counter[str]] = field(default_factory=list)
    redis: list[int] = field(default_factory=list)
    authorizer: list[int] = field(default_factory=list)

    @staticmethod
    def _span(values: list[int]) -> str:
        low, high = min(values), max(values)
        return str(low) if low == high else f"{low}-{high}"

    @property
    def dynamodb_requests(self) -> list[int]:
        return [sum(c.values()) for c in self.dynamodb]

    @property
    def dynamodb_operations(self) -> str:
        names = sorted({name for c in self.dynamodb for name in c})
        return ", ".join(f"{name} {self._span([c[name] for c in self.dynamodb])}" for name in names) or "-"

    @property
    def misses(self) -> list[str]:
        op = self.operation
        found = []
        if op.dynamodb_max is not None and max(self.dynamodb_requests) > op.dynamodb_max:
            found.append(f"DynamoDB > {op.dynamodb_max}")
        if op.redis_max is not None and max(self.redis) > op.redis_max:
            found.append(f"Redis > {op.redis_max}")
        if any(c["Scan"] for c in self.dynamodb):
            found.append("Scan")
        return found

    def row(self) -> str:
        op = self.operation
        targets = [
            f"{store} {'=' if limit == 0 else '<='} {limit}"
            for store, limit in (("DynamoDB", op.dynamodb_max), ("Redis", op.redis_max))
            if limit is not None
        ]
        verdict = (
            ("missed: " + ", ".join(self.misses)) if self.misses else ("met: " if targets else "") + ", ".join(targets)
        )
        ordered = sorted(self.latencies)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000
        return (
            f"| {op.name} | `{op.request}` | {op.expected} | **{self._span(self.dynamodb_requests)}** "
            f"| {self.dynamodb_operations} | **{self._span(self.redis)}** | {self._span(self.authorizer)} "
            f"| {statistics.median(ordered) * 1000:.2f} | {p90:.2f} | {verdict or '-'} |"
        )


def measure(operation: Operation, tally: Tally, runs: int, warmup: int) -> Measured:
    measured = Measured(operation)
    operation.setup()
    for run in range(warmup + runs):
        tally.start()
        started = time.perf_counter()
        response = operation.send(run)
        elapsed = time.perf_counter() - started
        dynamodb, redis, authorizer = tally.stop()
        if response.status_code != operation.expected:
            raise SystemExit(
                f"{operation.name}: expected {operation.expected}, got {response.status_code} "
                f"{response.body!r}: the benchmark would measure the wrong path"
            )
        if run >= warmup:
            measured.latencies.append(elapsed)
            measured.dynamodb.append(dynamodb)
            measured.redis.append(redis)
            measured.authorizer.append(authorizer)
        operation.restore(run)
    operation.teardown()
    return measured


def operations(client: Any, runs: int, warmup: int) -> list[Operation]:
    """The operations, each on state that its restore step brings back after every run."""
    from chalicelib import services
    from chalicelib.adapters.tokens import JwtCodec
    from chalicelib.config import get_settings
    from chalicelib.domain import events
    from chalicelib.domain.model import ClassSection, EnrollmentState, Identity, Role, WriteOutcome

    if warmup + runs > len(ENROLLERS):
        raise SystemExit(f"--runs plus --warmup may be at most {len(ENROLLERS)}")
    enrollment = services.enrollment()
    catalog, waitlists, users = enrollment.catalog, enrollment.waitlists, enrollment.users
    codec = JwtCodec(get_settings().jwt_secret, 3600)

    def identity(user_id: int) -> Identity:
        role = Role.STUDENT if user_id <= 500 else Role.INSTRUCTOR if user_id <= 550 else Role.REGISTRAR
        return Identity(user_id, role, f"{role.value}{user_id}")

    def send(method: str, path: str, user_id: int | None = None, body: dict | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if user_id is not None:
            headers["Authorization"] = f"Bearer {codec.issue(identity(user_id))}"
        payload = json.dumps(body).encode() if body is not None else b""
        return client.http.request(method, path, headers=headers, body=payload)

    def new_class(class_id: int, max_enroll: int) -> None:
        section = ClassSection(class_id, "BENCH", "100", 1, f"Bench {class_id}", BENCH_INSTRUCTOR, max_enroll)
        assert catalog.create_class(section), class_id

    def enroll(student_id: int, class_id: int) -> None:
        enrollment.enroll(identity(student_id), student_id, class_id)

    def subscribe(student_id: int, class_id: int) -> None:
        email = f"student{student_id}@example.edu"
        services.subscriptions().subscribe(identity(student_id), student_id, class_id, email, None, None)

    def delete_account(username: str) -> None:
        found = users.credentials(username)
        expect(found is not None and users.delete(found[0].user_id), username)

    # Enroll with an open seat: a different student each run, in a class with room for all.
    new_class(OPEN_CLASS, len(ENROLLERS))
    # Drop with promotion: one seat, two students; the one who drops joins the waitlist
    # again and is promoted by the next run's drop. The instructor's drop does the same.
    for class_id, pair in ((DROP_CLASS, DROP_PAIR), (INSTRUCTOR_DROP_CLASS, INSTRUCTOR_DROP_PAIR)):
        new_class(class_id, 1)
        for student_id in pair:
            enroll(student_id, class_id)
    # Leave a waitlist: three waiting in a full class; the first leaves, two move up, and
    # the leaver queues again at the end.
    new_class(LEAVE_CLASS, 0)
    for student_id in LEAVERS:
        enroll(student_id, LEAVE_CLASS)
    # Raise capacity: one seat taken, two waiting; the raise promotes the first, and the
    # restore step drops them, lowers the capacity again and queues them at the end.
    new_class(RAISE_CLASS, 1)
    for student_id in (RAISE_HOLDER, *RAISE_WAITING):
        enroll(student_id, RAISE_CLASS)

    # Remove a class with two enrolled, two waiting and two subscribed; the restore step
    # builds it again.
    def build_removed_class() -> None:
        new_class(REMOVED_CLASS, len(REMOVED_ENROLLED))
        for student_id in (*REMOVED_ENROLLED, *REMOVED_WAITING):
            enroll(student_id, REMOVED_CLASS)
        for student_id in (REMOVED_ENROLLED[0], REMOVED_WAITING[0]):
            subscribe(student_id, REMOVED_CLASS)

    build_removed_class()
    # Unfreeze that promotes: a full class with one waiting; the setup freezes and opens the
    # seat (no promotion while frozen), as the restore step does after every run.
    new_class(UNFREEZE_CLASS, 1)
    enroll(UNFREEZE_HOLDER, UNFREEZE_CLASS)
    enroll(UNFREEZE_WAITING, UNFREEZE_CLASS)

    def unfreeze_setup() -> None:
        catalog.set_frozen(True)
        expect(catalog.drop(UNFREEZE_CLASS, UNFREEZE_HOLDER) is WriteOutcome.DONE, "unfreeze")

    def unfreeze_restore(run: int) -> None:
        expect(catalog.students(UNFREEZE_CLASS, EnrollmentState.ENROLLED) == [UNFREEZE_WAITING], "unfreeze")
        catalog.set_frozen(True)
        catalog.drop(UNFREEZE_CLASS, UNFREEZE_WAITING)
        enroll(UNFREEZE_HOLDER, UNFREEZE_CLASS)
        enroll(UNFREEZE_WAITING, UNFREEZE_CLASS)
        catalog.drop(UNFREEZE_CLASS, UNFREEZE_HOLDER)
        expect([e.student_id for e in waitlists.entries(UNFREEZE_CLASS)] == [UNFREEZE_WAITING], "unfreeze")

    def unfreeze_teardown() -> None:
        # Back to unfrozen the way the API does it, so no seat stays open with someone waiting.
        services.registrar().set_frozen(identity(REGISTRAR), False)

    # Subscriptions: one student lists two, another has one to remove.
    for class_id in (4, 8):
        subscribe(LISTER, class_id)
    subscribe(UNSUBSCRIBER, 4)
    # Notification history: three events on two channels, with outcomes for some.
    contact = events.Contact(email=f"student{NOTIFIED}@example.edu", webhook_url="https://hooks.example.edu/titan")
    history = [
        events.position_changed(NOTIFIED, 4, "Bench history", 1, 2, contact),
        events.position_changed(NOTIFIED, 4, "Bench history", 1, 1, contact),
        events.promoted(NOTIFIED, 4, "Bench history", 1, contact),
    ]
    catalog.add_events(history)
    deliveries = services.notifications().store
    deliveries.record("email", [(e.event_id, "delivered", 1, None) for e in history])
    deliveries.record(
        "webhook", [(history[0].event_id, "failed", 8, "HTTP 500"), (history[1].event_id, "retrying", 2, "timeout")]
    )
    # An account to remove; the restore step puts its two items back under the same id.
    removed = users.create("bench.removed", "!", Role.INSTRUCTOR, "Bench Removed", "bench.removed@example.edu")
    assert removed is not None

    # Who acts in run `run` follows from the rotation, so no lookup falls into the measurement;
    # each restore step checks that the rotation holds.
    def drop_run(run: int) -> Any:
        dropper = DROP_PAIR[run % 2]
        return send("PUT", f"/students/{dropper}/classes/{DROP_CLASS}/drop", dropper)

    def drop_restore(run: int) -> None:
        expect(catalog.students(DROP_CLASS, EnrollmentState.ENROLLED) == [DROP_PAIR[(run + 1) % 2]], "drop")
        enroll(DROP_PAIR[run % 2], DROP_CLASS)

    def instructor_drop_run(run: int) -> Any:
        dropped = INSTRUCTOR_DROP_PAIR[run % 2]
        path = f"/instructors/{BENCH_INSTRUCTOR}/classes/{INSTRUCTOR_DROP_CLASS}/students/{dropped}/drop"
        return send("POST", path, BENCH_INSTRUCTOR)

    def instructor_drop_restore(run: int) -> None:
        enrolled = catalog.students(INSTRUCTOR_DROP_CLASS, EnrollmentState.ENROLLED)
        expect(enrolled == [INSTRUCTOR_DROP_PAIR[(run + 1) % 2]], "instructor drop")
        enroll(INSTRUCTOR_DROP_PAIR[run % 2], INSTRUCTOR_DROP_CLASS)

    def leave_run(run: int) -> Any:
        leaver = LEAVERS[run % len(LEAVERS)]
        return send("DELETE", f"/waitlist/students/{leaver}/classes/{LEAVE_CLASS}", leaver)

    def leave_restore(run: int) -> None:
        enroll(LEAVERS[run % len(LEAVERS)], LEAVE_CLASS)
        order = [LEAVERS[(run + 1 + i) % len(LEAVERS)] for i in range(len(LEAVERS))]
        expect([e.student_id for e in waitlists.entries(LEAVE_CLASS)] == order, "leave")

    def raise_restore(run: int) -> None:
        promoted = RAISE_WAITING[run % 2]
        expect(set(catalog.students(RAISE_CLASS, EnrollmentState.ENROLLED)) == {RAISE_HOLDER, promoted}, "raise")
        catalog.drop(RAISE_CLASS, promoted)
        catalog.update_class(RAISE_CLASS, 1, None)
        enroll(promoted, RAISE_CLASS)

    def waitlisted_restore(run: int) -> None:
        waitlists.remove(4, ENROLLERS[run])

    def class_body(class_id: int | None) -> dict:
        body = {"department": "BENCH", "course_code": "NEW", "section": 1, "name": "Bench new"}
        return {**body, "instructor_id": BENCH_INSTRUCTOR, "max_enroll": 10, "class_id": class_id}

    def allocated_restore(run: int) -> None:
        # The only class with this course code is the one the run created, at an id of its own.
        created = [s.class_id for s in catalog.list_classes() if s.course_code == "NEW"]
        expect(len(created) == 1 and created[0] > 1000, "create class (allocated id)")
        catalog.delete_class(created[0])

    def removed_restore(run: int) -> None:
        expect(
            waitlists.length(REMOVED_CLASS) == 0 and not catalog.students(REMOVED_CLASS, EnrollmentState.ENROLLED),
            "remove class",
        )
        build_removed_class()

    def removed_user_restore(run: int) -> None:
        expect(users.get(removed.user_id) is None, "remove user")
        users.client.transact_write_items(TransactItems=users.put_items(removed, "!", conditional=True))

    def account(username: str, role: str | None = None) -> dict:
        body = {"username": username, "password": "bench-password", "name": "Bench", "email": f"{username}@example.edu"}
        return {**body, "role": role} if role else body

    return [
        Operation(
            "register",
            "POST /auth/register",
            201,
            lambda run: send("POST", "/auth/register", body=account("bench.register")),
            restore=lambda run: delete_account("bench.register"),
        ),
        Operation(
            "login",
            "POST /auth/login",
            200,
            lambda run: send("POST", "/auth/login", body={"username": "student1", "password": "titan"}),
        ),
        Operation("list classes", "GET /classes", 200, lambda run: send("GET", "/classes", 1)),
        Operation(
            "enroll (open seat)",
            "POST /students/{sid}/classes/{cid}/enroll",
            201,
            lambda run: send("POST", f"/students/{ENROLLERS[run]}/classes/{OPEN_CLASS}/enroll", ENROLLERS[run]),
            dynamodb_max=3,
        ),
        Operation(
            "enroll (waitlisted)",
            "POST /students/{sid}/classes/{cid}/enroll",
            202,
            lambda run: send("POST", f"/students/{ENROLLERS[run]}/classes/4/enroll", ENROLLERS[run]),
            restore=waitlisted_restore,
            dynamodb_max=3,
        ),
        Operation(
            "drop with promotion",
            "PUT /students/{sid}/classes/{cid}/drop",
            200,
            drop_run,
            restore=drop_restore,
            dynamodb_max=5,
        ),
        Operation(
            "student's classes (4)",
            "GET /students/{sid}/classes",
            200,
            lambda run: send("GET", f"/students/{MANY_CLASSES}/classes", MANY_CLASSES),
        ),
        Operation(
            "leave waitlist (2 move up)",
            "DELETE /waitlist/students/{sid}/classes/{cid}",
            200,
            leave_run,
            restore=leave_restore,
        ),
        Operation(
            "waitlist positions (all, 3 lists)",
            "GET /waitlist/students/{sid}",
            200,
            lambda run: send("GET", "/waitlist/students/1", 1),
            dynamodb_max=0,
            redis_max=2,
        ),
        Operation(
            "waitlist position (one)",
            "GET /waitlist/students/{sid}/classes/{cid}",
            200,
            lambda run: send("GET", "/waitlist/students/1/classes/4", 1),
            dynamodb_max=0,
            redis_max=2,
        ),
        *(
            Operation(
                f"instructor: {kind}",
                f"GET /instructors/{{iid}}/classes/{{cid}}/{kind}",
                200,
                lambda run, kind=kind: send("GET", f"/instructors/504/classes/4/{kind}", 504),
            )
            for kind in ("enrollment", "dropped", "waitlist")
        ),
        Operation(
            "instructor: drop with promotion",
            "POST /instructors/{iid}/classes/{cid}/students/{sid}/drop",
            200,
            instructor_drop_run,
            restore=instructor_drop_restore,
            dynamodb_max=5,
        ),
        Operation(
            "registrar: create class (id given)",
            "POST /registrar/classes",
            201,
            lambda run: send("POST", "/registrar/classes", REGISTRAR, class_body(CREATED_CLASS)),
            restore=lambda run: expect(catalog.delete_class(CREATED_CLASS), "create class (id given)"),
        ),
        Operation(
            "registrar: create class (id allocated)",
            "POST /registrar/classes",
            201,
            lambda run: send("POST", "/registrar/classes", REGISTRAR, class_body(None)),
            restore=allocated_restore,
        ),
        Operation(
            "registrar: patch capacity (no waitlist)",
            "PATCH /registrar/classes/{cid}",
            200,
            lambda run: send("PATCH", "/registrar/classes/5", REGISTRAR, {"max_enroll": 36 + run % 2}),
        ),
        Operation(
            "registrar: raise capacity (promotes 1)",
            "PATCH /registrar/classes/{cid}",
            200,
            lambda run: send("PATCH", f"/registrar/classes/{RAISE_CLASS}", REGISTRAR, {"max_enroll": 2}),
            restore=raise_restore,
        ),
        Operation(
            "registrar: remove class (2 enrolled, 2 waiting, 2 subscribed)",
            "DELETE /registrar/classes/{cid}",
            200,
            lambda run: send("DELETE", f"/registrar/classes/{REMOVED_CLASS}", REGISTRAR),
            restore=removed_restore,
        ),
        Operation(
            "registrar: change instructor",
            "PUT /registrar/classes/{cid}/instructors/{iid}",
            200,
            lambda run: send("PUT", f"/registrar/classes/{REASSIGNED_CLASS}/instructors/{REASSIGNED_TO}", REGISTRAR),
            restore=lambda run: expect(catalog.set_instructor(REASSIGNED_CLASS, 506) is not None, "change instructor"),
        ),
        Operation(
            "registrar: freeze",
            "PUT /registrar/automatic-enrollment/freeze",
            200,
            lambda run: send("PUT", "/registrar/automatic-enrollment/freeze", REGISTRAR, {"frozen": True}),
            restore=lambda run: catalog.set_frozen(False),
        ),
        Operation(
            "registrar: unfreeze (promotes 1)",
            "PUT /registrar/automatic-enrollment/freeze",
            200,
            lambda run: send("PUT", "/registrar/automatic-enrollment/freeze", REGISTRAR, {"frozen": False}),
            restore=unfreeze_restore,
            setup=unfreeze_setup,
            teardown=unfreeze_teardown,
        ),
        Operation(
            "registrar: create user",
            "POST /registrar/users",
            201,
            lambda run: send("POST", "/registrar/users", REGISTRAR, account("bench.instructor", "instructor")),
            restore=lambda run: delete_account("bench.instructor"),
        ),
        Operation(
            "registrar: remove user",
            "DELETE /registrar/users/{uid}",
            200,
            lambda run: send("DELETE", f"/registrar/users/{removed.user_id}", REGISTRAR),
            restore=removed_user_restore,
        ),
        Operation(
            "subscribe (email)",
            "POST /students/{sid}/subscribe/{cid}",
            201,
            lambda run: send(
                "POST", f"/students/{SUBSCRIBER}/subscribe/4", SUBSCRIBER, {"email": f"student{SUBSCRIBER}@example.edu"}
            ),
            restore=lambda run: expect(enrollment.subscriptions.remove(SUBSCRIBER, 4), "subscribe"),
        ),
        Operation(
            "subscriptions (2)",
            "GET /students/{sid}/subscriptions",
            200,
            lambda run: send("GET", f"/students/{LISTER}/subscriptions", LISTER),
        ),
        Operation(
            "unsubscribe",
            "DELETE /students/{sid}/unsubscribe/{cid}",
            200,
            lambda run: send("DELETE", f"/students/{UNSUBSCRIBER}/unsubscribe/4", UNSUBSCRIBER),
            restore=lambda run: subscribe(UNSUBSCRIBER, 4),
        ),
        Operation(
            "notifications (3 events, 2 channels)",
            "GET /students/{sid}/notifications",
            200,
            lambda run: send("GET", f"/students/{NOTIFIED}/notifications", NOTIFIED),
        ),
        Operation("health", "GET /health", 200, lambda run: send("GET", "/health")),
    ]


def expect(condition: bool, operation: str) -> None:
    if not condition:
        raise SystemExit(f"{operation}: the state between runs is not what the rotation assumes")


def route_gaps(routes: dict[str, dict[str, Any]], measured: list[Operation]) -> list[str]:
    """What keeps the table from covering the app: a route neither measured nor in
    NOT_MEASURED, or an operation or NOT_MEASURED entry naming no route."""
    served = {f"{method} {path}" for path, methods in routes.items() for method in methods}
    requests = {op.request for op in measured}
    return [
        *(
            f"{route}: neither measured nor in NOT_MEASURED"
            for route in sorted(served - requests - NOT_MEASURED.keys())
        ),
        *(f"{request}: no such route" for request in sorted((requests | NOT_MEASURED.keys()) - served)),
    ]


def report(results: list[Measured], runs: int, warmup: int, seen: Counter[str], gaps: list[str]) -> str:
    reasons: dict[str, list[str]] = {}
    for route, reason in NOT_MEASURED.items():
        reasons.setdefault(reason, []).append(f"`{route}`")
    lines = [
        "# API operations: DynamoDB requests, Redis round trips, latency",
        "",
        f"`python -m bench.operations --runs {runs} --warmup {warmup}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} "
        "at the end), loopback only.",
        "",
        "Each operation runs through Chalice's in-process test client (authorizer, routes, domain, "
        "adapters) against the serialized moto server over loopback HTTP and the real Redis. "
        "Counts are per request, as the range over the measured runs; latency is the median and 90th "
        f"percentile of {runs} runs after {warmup} warm-up runs; they include the moto server's own "
        "time and vary with the machine's load. Requests other than login carry a minted token. "
        "Mutating operations are put back in their starting state between runs, outside the measurement. "
        "Redis round trips are the route's; the authorizer's are counted apart: it refreshes its list of "
        "removed accounts at most every few seconds per process, and deployed it is a function of its own "
        "whose answers API Gateway caches per token. The unfreeze starts frozen with one class holding an "
        "open seat and a waiting student; it also tries every other class that has a waitlist, full or not.",
        "",
        "| operation | request | status | DynamoDB requests | DynamoDB operations | Redis round trips "
        "| authorizer's Redis round trips | median ms | p90 ms | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(m.row() for m in results),
        "",
        "Every DynamoDB request the application made after the bootstrap (measured, warm-up and "
        "restore steps): " + ", ".join(f"{name} {n}" for name, n in sorted(seen.items())) + f". Scan: {seen['Scan']}.",
        "",
        "Routes not measured: "
        + "; ".join(f"{', '.join(routes)}: {reason}" for reason, routes in reasons.items())
        + (
            f". Route coverage broken (the run fails): {'; '.join(gaps)}." if gaps else ". Every other route has a row."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measured runs per operation (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs first (default 3)")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0:
        raise SystemExit("--runs must be at least 1 and --warmup not negative")

    dynamodb_port = free_port()
    endpoint = f"http://127.0.0.1:{dynamodb_port}"
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(BENCH_ENV, AWS_ENDPOINT_URL_DYNAMODB=endpoint, AWS_ENDPOINT_URL_DYNAMODB_STREAMS=endpoint)
    dynamodb = Process(
        "bench-operations-dynamodb",
        python("-m", "infra.dynamodb_server", "--port", str(dynamodb_port)),
        dict(os.environ),
    )
    from chalicelib.adapters.redis_client import connect

    if connect().dbsize():
        # The bootstrap would wipe them, and whoever writes there would change the state under the runs.
        raise SystemExit(
            f"Redis {BENCH_ENV['REDIS_URL']} holds keys: another process may be using it "
            "(if they are a stopped run's, empty it with FLUSHDB)"
        )
    try:
        dynamodb.start()
        wait_for_port(dynamodb_port)
        from chalice.test import Client

        from app import app
        from chalicelib.adapters import aws
        from chalicelib.config import get_settings
        from infra.bootstrap import bootstrap

        bootstrap(get_settings())
        tally = Tally()
        tally.attach(aws.client("dynamodb"), connect())
        with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
            measured = operations(client, args.runs, args.warmup)
            gaps = route_gaps(app.routes, measured)
            results = [measure(op, tally, args.runs, args.warmup) for op in measured]
    finally:
        clear_redis()
        dynamodb.stop()

    seen = tally.every_dynamodb_call
    text = report(results, args.runs, args.warmup, seen, gaps)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"saved to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    missed = [f"{m.operation.name}: {', '.join(m.misses)}" for m in results if m.misses]
    if seen["Scan"]:
        missed.append(f"{seen['Scan']} Scan requests")
    missed.extend(gaps)
    if missed:
        print("targets missed: " + "; ".join(missed), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
