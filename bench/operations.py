"""DynamoDB requests, Redis round trips and latency of each API operation.

python -m bench.operations [--runs N] [--warmup W]

Starts its own moto DynamoDB server (infra/dynamodb_server.py) on a free loopback port,
loads the sample data into its own tables (titan-bench-*) and Redis database (13), and
sends each operation through Chalice's in-process test client, so that the counters see
every call the application makes: DynamoDB requests by operation name (botocore's
before-call event on the application's client) and Redis round trips (one per command
or script call, one per pipeline). Prints a markdown table, checks the targets, saves
the table to bench/results/operations.md and stops everything it started. Exits 1 when
a target is missed or any Scan is seen.
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
    "REDIS_URL": "redis://127.0.0.1:6379/13",
    "JWT_SECRET": "bench-only-signing-key-0123456789abcdef-0123456789",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "PYTHONUNBUFFERED": "1",
}

# Classes made for the benchmark, next to the sample data's 1-16.
OPEN_CLASS, DROP_CLASS, LEAVE_CLASS, RAISE_CLASS = 901, 902, 903, 904
# Students 300-499 wait on no sample waitlist; those from 440 up take the fixed roles.
ENROLLERS = range(300, 440)
DROP_PAIR = (440, 441)
LEAVERS = (450, 451, 452)
RAISE_HOLDER, RAISE_WAITING = 460, (461, 462)


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
    return measured


def operations(client: Any, runs: int, warmup: int) -> list[Operation]:
    """The operations, each on state that its restore step brings back after every run."""
    from chalicelib import services
    from chalicelib.adapters.tokens import JwtCodec
    from chalicelib.config import get_settings
    from chalicelib.domain.model import ClassSection, EnrollmentState, Identity, Role

    if warmup + runs > len(ENROLLERS):
        raise SystemExit(f"--runs plus --warmup may be at most {len(ENROLLERS)}")
    enrollment = services.enrollment()
    catalog, waitlists = enrollment.catalog, enrollment.waitlists
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
        assert catalog.create_class(ClassSection(class_id, "BENCH", "100", 1, f"Bench {class_id}", 501, max_enroll)), (
            class_id
        )

    def enroll(student_id: int, class_id: int) -> None:
        enrollment.enroll(identity(student_id), student_id, class_id)

    # Enroll with an open seat: a different student each run, in a class with room for all.
    new_class(OPEN_CLASS, len(ENROLLERS))
    # Drop with promotion: one seat, two students; the one who drops joins the waitlist
    # again and is promoted by the next run's drop.
    new_class(DROP_CLASS, 1)
    enroll(DROP_PAIR[0], DROP_CLASS)
    enroll(DROP_PAIR[1], DROP_CLASS)
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

    # Who acts in run `run` follows from the rotation, so no lookup falls into the measurement;
    # each restore step checks that the rotation holds.
    def drop_run(run: int) -> Any:
        dropper = DROP_PAIR[run % 2]
        return send("PUT", f"/students/{dropper}/classes/{DROP_CLASS}/drop", dropper)

    def drop_restore(run: int) -> None:
        expect(catalog.students(DROP_CLASS, EnrollmentState.ENROLLED) == [DROP_PAIR[(run + 1) % 2]], "drop")
        enroll(DROP_PAIR[run % 2], DROP_CLASS)

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

    return [
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
            "registrar: patch capacity (no waitlist)",
            "PATCH /registrar/classes/{cid}",
            200,
            lambda run: send("PATCH", "/registrar/classes/5", 551, {"max_enroll": 36 + run % 2}),
        ),
        Operation(
            "registrar: raise capacity (promotes 1)",
            "PATCH /registrar/classes/{cid}",
            200,
            lambda run: send("PATCH", f"/registrar/classes/{RAISE_CLASS}", 551, {"max_enroll": 2}),
            restore=raise_restore,
        ),
    ]


def expect(condition: bool, operation: str) -> None:
    if not condition:
        raise SystemExit(f"{operation}: the state between runs is not what the rotation assumes")


def report(results: list[Measured], runs: int, warmup: int, seen: Counter[str]) -> str:
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
        "whose answers API Gateway caches per token.",
        "",
        "| operation | request | status | DynamoDB requests | DynamoDB operations | Redis round trips "
        "| authorizer's Redis round trips | median ms | p90 ms | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(m.row() for m in results),
        "",
        "Every DynamoDB request the application made after the bootstrap (measured, warm-up and "
        "restore steps): " + ", ".join(f"{name} {n}" for name, n in sorted(seen.items())) + f". Scan: {seen['Scan']}.",
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
    try:
        dynamodb.start()
        wait_for_port(dynamodb_port)
        from chalice.test import Client

        from app import app
        from chalicelib.adapters import aws
        from chalicelib.adapters.redis_client import connect
        from chalicelib.config import get_settings
        from infra.bootstrap import bootstrap

        bootstrap(get_settings())
        tally = Tally()
        tally.attach(aws.client("dynamodb"), connect())
        with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
            results = [measure(op, tally, args.runs, args.warmup) for op in operations(client, args.runs, args.warmup)]
        clear_redis()
    finally:
        dynamodb.stop()

    seen = tally.every_dynamodb_call
    text = report(results, args.runs, args.warmup, seen)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"saved to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    missed = [f"{m.operation.name}: {', '.join(m.misses)}" for m in results if m.misses]
    if seen["Scan"]:
        missed.append(f"{seen['Scan']} Scan requests")
    if missed:
        print("targets missed: " + "; ".join(missed), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
