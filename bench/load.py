"""Mixed load on the whole local stack, then the invariants.

    python -m bench.load [--clients 24] [--seconds 60] [--max-requests 200000] [--seed 8]

Starts its own stack on free loopback ports: the serialized moto launcher, the bootstrap
(tables titan-load-*, Redis database 1, RabbitMQ virtual host titan-load), `chalice local`
(infra.chalice_local), the outbox relay, one email and one webhook poller, and, inside this
process, an SMTP server counting messages per Message-ID and an HTTP receiver counting
POSTs per webhook-id. A share of the students subscribe first. Then `--clients` threads,
each with its own keep-alive HTTP client and its own students, send mixed traffic for
`--seconds` (at most `--max-requests` requests): enroll, drop, leave a waitlist, instructor
drop, subscribe, and waitlist polling with If-None-Match. Afterwards it waits (bounded)
until the outbox is published and the queues are empty, runs bench.invariants, prints a
markdown report, saves it to bench/results/load.md (the ledger to
test-artifacts/load/ledger.json) and stops everything it started. Exits 1 on a 5xx or a
broken invariant.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.invariants import DROP, ENROLL, INSTRUCTOR_DROP, Call, Ledger, Snapshot, Verdict, check
from bench.invariants import table as invariants_table
from infra.bootstrap import clear_redis
from tests.support.broker import ensure_vhost
from tests.support.processes import ROOT, Process, chalice_local, free_port, python, wait_for_port

RESULTS = ROOT / "bench" / "results" / "load.md"
LEDGER = ROOT / "test-artifacts" / "load" / "ledger.json"
VHOST = "titan-load"
JWT_SECRET = "load-bench-only-signing-key-0123456789abcdef-0123456789"
LOAD_ENV = {
    "STAGE": "local",
    "TABLE_PREFIX": "titan-load",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
    "JWT_SECRET": JWT_SECRET,
    "TOKEN_TTL_SECONDS": "7200",
    "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "load",
    "AWS_SECRET_ACCESS_KEY": "load",
    "PYTHONUNBUFFERED": "1",
}

# Requests of one client, by weight; instructor drop is two requests (list, then drop).
MIX = {
    "enroll": 30,
    "drop": 9,
    "leave": 6,
    "instructor": 5,
    "subscribe": 5,
    "poll all": 28,
    "poll one": 17,
}
# Operations answered from Redis alone, and those that always call DynamoDB (1 to 3 calls,
# bench/results/operations.md). Leaving a waitlist calls it only to announce position changes.
REDIS_ONLY = ("poll waitlists", "poll one position")
WITH_DYNAMODB = (ENROLL, DROP, INSTRUCTOR_DROP, "instructor: list enrolled", "subscribe")
OPERATIONS = (
    ENROLL,
    DROP,
    "leave waitlist",
    "instructor: list enrolled",
    INSTRUCTOR_DROP,
    "subscribe",
    "poll waitlists",
    "poll one position",
)
POSITION_CHANGED = "waitlist.position_changed"
REQUEST_TIMEOUT = 30.0


# -- receivers ------------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: counts messages per Message-ID (the event id)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.receipts: Counter[str] = Counter()
        self.port = free_port()
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_id = BytesHeaderParser().parsebytes(envelope.content)["Message-ID"] or ""
        with self.lock:
            self.receipts[message_id.strip().strip("<>").split("@")[0]] += 1
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class _HookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hooks.record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    hooks: Hooks


class Hooks:
    """HTTP receiver: counts POSTs per webhook-id and checks each signature against the
    secret the subscribe answer returned for that path."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.receipts: Counter[str] = Counter()
        self.secrets: dict[str, str] = {}
        self.bad_signatures = 0
        self.unchecked = 0
        self.server = _HookServer(("127.0.0.1", 0), _HookHandler)
        self.server.hooks = self
        self.thread = threading.Thread(target=self.server.serve_forever, name="hooks", daemon=True)

    def url(self, student_id: int, class_id: int) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path(student_id, class_id)}"

    @staticmethod
    def path(student_id: int, class_id: int) -> str:
        return f"/hooks/{student_id}/{class_id}"

    def remember(self, student_id: int, class_id: int, secret: str) -> None:
        with self.lock:
            self.secrets[self.path(student_id, class_id)] = secret

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        with self.lock:
            secret = self.secrets.get(path)
        valid: bool | None = None
        if secret:
            try:
                Webhook(secret).verify(body, headers)
                valid = True
            except WebhookVerificationError:
                valid = False
        with self.lock:
            self.receipts[headers.get("webhook-id", "")] += 1
            self.bad_signatures += valid is False
            self.unchecked += valid is None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- what the clients know ----------------------------------------------------------------


@dataclass
class Beliefs:
    """Who is enrolled or waiting where, as the answers told the clients. Only used to pick
    plausible requests; promotions made inside enroll requests are not seen, so a few
    requests meet a changed state (and get a 404 or 409, as a real client would)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    enrolled: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    waitlisted: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    subscribed: set[tuple[int, int]] = field(default_factory=set)

    def enroll(self, student_id: int, class_id: int) -> None:
        with self.lock:
            self.enrolled[student_id].add(class_id)
            self.waitlisted[student_id].discard(class_id)

    def unenroll(self, student_id: int, class_id: int) -> None:
        with self.lock:
            self.enrolled[student_id].discard(class_id)

    def wait(self, student_id: int, class_id: int) -> None:
        with self.lock:
            self.waitlisted[student_id].add(class_id)

    def unwait(self, student_id: int, class_id: int) -> None:
        with self.lock:
            self.waitlisted[student_id].discard(class_id)

    def waiting_on(self, student_id: int, class_ids: set[int]) -> None:
        with self.lock:
            self.waitlisted[student_id] = set(class_ids)

    def subscribe(self, student_id: int, class_id: int) -> None:
        with self.lock:
            self.subscribed.add((student_id, class_id))

    def of(self, student_id: int) -> tuple[set[int], set[int]]:
        with self.lock:
            return set(self.enrolled[student_id]), set(self.waitlisted[student_id])

    def is_subscribed(self, student_id: int, class_id: int) -> bool:
        with self.lock:
            return (student_id, class_id) in self.subscribed


@dataclass
class Recorder:
    """Every request's outcome, plus the answers of 4xx and 5xx for the report."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[Call] = field(default_factory=list)
    codes: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)

    def reset(self) -> Counter[int]:
        """Forget everything recorded so far; the statuses of what is forgotten."""
        with self.lock:
            statuses = Counter(c.status for c in self.calls)
            self.calls = []
            self.codes.clear()
            self.server_errors.clear()
            self.transport_errors.clear()
        return statuses

    def add(self, call: Call, code: str = "", text: str = "") -> None:
        with self.lock:
            self.calls.append(call)
            if 400 <= call.status < 500:
                self.codes[(call.operation, call.status, code)] += 1
            elif call.status >= 500:
                self.server_errors[f"{call.operation} {call.status}: {text[:160]}"] += 1
            elif call.status == 0:
                self.transport_errors[f"{call.operation}: {text[:160]}"] += 1


class Budget:
    """At most `limit` requests and none after `deadline`, across all clients."""

    def __init__(self, limit: int, deadline: float) -> None:
        self.lock = threading.Lock()
        self.left = limit
        self.deadline = deadline

    def take(self) -> bool:
        if time.monotonic() >= self.deadline:
            return False
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


@dataclass
class Plan:
    url: str
    classes: list[int]
    tokens: dict[int, str]
    beliefs: Beliefs
    recorder: Recorder
    hooks: Hooks
    # Enroll picks a class with these weights: the sample's full classes are in demand.
    popularity: dict[int, int] = field(default_factory=dict)


class Client:
    """One simulated client: a keep-alive HTTP client, its own students, one request at a time."""

    def __init__(self, plan: Plan, students: list[int], rng: random.Random) -> None:
        self.plan = plan
        self.students = students
        self.rng = rng
        self.http = httpx.Client(base_url=plan.url, timeout=REQUEST_TIMEOUT)
        self.etags: dict[tuple[int, int | None], str] = {}

    def close(self) -> None:
        self.http.close()

    # one request

    def send(
        self,
        operation: str,
        method: str,
        path: str,
        user_id: int,
        student_id: int | None,
        class_id: int | None,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, httpx.Response | None]:
        sent = {"Authorization": f"Bearer {self.plan.tokens[user_id]}", **(headers or {})}
        started = time.time()
        try:
            response = self.http.request(method, path, json=body, headers=sent)
        except httpx.HTTPError as error:
            self.plan.recorder.add(
                Call(operation, student_id, class_id, 0, started, time.time()), text=type(error).__name__
            )
            return 0, None, None
        ended = time.time()
        data: Any = None
        if response.content:
            try:
                data = response.json()
            except ValueError:
                data = None
        promoted: tuple[tuple[int, int], ...] = ()
        if response.status_code == 200 and operation in (DROP, INSTRUCTOR_DROP):
            promoted = tuple((int(p["class_id"]), int(p["student_id"])) for p in data.get("promoted", []))
        code = data.get("code", "") if isinstance(data, dict) else ""
        self.plan.recorder.add(
            Call(operation, student_id, class_id, response.status_code, started, ended, promoted),
            code=code,
            text=response.text,
        )
        return response.status_code, data, response

    # the operations

    def step(self, budget: Budget) -> bool:
        """One operation of the mix; False when the budget is spent."""
        choice = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        known = {s: self.plan.beliefs.of(s) for s in self.students}
        holding = [s for s, (enrolled, _) in known.items() if enrolled]
        waiting = [s for s, (_, waits) in known.items() if waits]
        # Who does what: a drop needs an enrolled student; leaving and polling one position
        # need a waiting one; waiting students are the ones who poll and subscribe.
        if choice == "drop" and not holding:
            choice = "enroll"
        if choice in ("leave", "poll one") and not waiting:
            choice = "poll all"
        pool = {"drop": holding, "leave": waiting, "poll one": waiting}.get(choice)
        if pool is None and choice in ("poll all", "subscribe") and waiting and self.rng.random() < 0.8:
            pool = waiting
        student_id = self.rng.choice(pool or self.students)
        enrolled, waits = known[student_id]
        if not budget.take():
            return False
        if choice == "enroll":
            self.enroll(student_id, enrolled | waits)
        elif choice == "drop":
            self.drop(student_id, self.rng.choice(sorted(enrolled)))
        elif choice == "leave":
            self.leave(student_id, self.rng.choice(sorted(waits)))
        elif choice == "instructor":
            self.instructor_drop(budget)
        elif choice == "subscribe":
            self.subscribe(student_id, waits)
        elif choice == "poll all":
            self.poll_all(student_id)
        else:
            self.poll_one(student_id, self.rng.choice(sorted(waits)))
        return True

    def enroll(self, student_id: int, taken: set[int]) -> None:
        choices = [c for c in self.plan.classes if c not in taken] or self.plan.classes
        class_id = self.rng.choices(choices, weights=[self.plan.popularity.get(c, 1) for c in choices])[0]
        status, data, _ = self.send(
            ENROLL, "POST", f"/students/{student_id}/classes/{class_id}/enroll", student_id, student_id, class_id
        )
        code = data.get("code") if isinstance(data, dict) else None
        if status == 201 or code == "already_enrolled":
            self.plan.beliefs.enroll(student_id, class_id)
        elif status == 202 or code == "already_waitlisted":
            self.plan.beliefs.wait(student_id, class_id)

    def _dropped(self, status: int, data: Any, student_id: int, class_id: int) -> None:
        if status in (200, 409):
            self.plan.beliefs.unenroll(student_id, class_id)
        if status == 200:
            for promotion in data.get("promoted", []):
                self.plan.beliefs.enroll(int(promotion["student_id"]), int(promotion["class_id"]))

    def drop(self, student_id: int, class_id: int) -> None:
        status, data, _ = self.send(
            DROP, "PUT", f"/students/{student_id}/classes/{class_id}/drop", student_id, student_id, class_id
        )
        self._dropped(status, data, student_id, class_id)

    def leave(self, student_id: int, class_id: int) -> None:
        status, _, _ = self.send(
            "leave waitlist",
            "DELETE",
            f"/waitlist/students/{student_id}/classes/{class_id}",
            student_id,
            student_id,
            class_id,
        )
        if status in (200, 404):
            self.plan.beliefs.unwait(student_id, class_id)

    def instructor_drop(self, budget: Budget) -> None:
        class_id = self.rng.choice(self.plan.classes)
        instructor_id = 500 + class_id
        base = f"/instructors/{instructor_id}/classes/{class_id}"
        status, data, _ = self.send(
            "instructor: list enrolled", "GET", f"{base}/enrollment", instructor_id, None, class_id
        )
        students = [int(s["student_id"]) for s in data["students"]] if status == 200 else []
        if not students or not budget.take():
            return
        student_id = self.rng.choice(students)
        status, data, _ = self.send(
            INSTRUCTOR_DROP, "POST", f"{base}/students/{student_id}/drop", instructor_id, student_id, class_id
        )
        self._dropped(status, data, student_id, class_id)

    def subscribe(self, student_id: int, waiting: set[int]) -> None:
        """Students mostly ask to be told about the classes they wait for."""
        beliefs = self.plan.beliefs
        wanted = [c for c in sorted(waiting) if not beliefs.is_subscribed(student_id, c)]
        others = [c for c in self.plan.classes if not beliefs.is_subscribed(student_id, c)]
        class_id = self.rng.choice(wanted or others or self.plan.classes)
        subscribe(self, student_id, class_id)

    def poll_all(self, student_id: int) -> None:
        key = (student_id, None)
        status, data, response = self.send(
            "poll waitlists",
            "GET",
            f"/waitlist/students/{student_id}",
            student_id,
            student_id,
            None,
            headers={"If-None-Match": self.etags[key]} if key in self.etags else None,
        )
        if status == 200 and response is not None:
            self.etags[key] = response.headers["ETag"]
            self.plan.beliefs.waiting_on(student_id, {int(w["class_id"]) for w in data["Waitlists"]})

    def poll_one(self, student_id: int, class_id: int) -> None:
        key = (student_id, class_id)
        status, _, response = self.send(
            "poll one position",
            "GET",
            f"/waitlist/students/{student_id}/classes/{class_id}",
            student_id,
            student_id,
            class_id,
            headers={"If-None-Match": self.etags[key]} if key in self.etags else None,
        )
        if status == 200 and response is not None:
            self.etags[key] = response.headers["ETag"]
        elif status == 404:
            self.etags.pop(key, None)
            self.plan.beliefs.unwait(student_id, class_id)


def subscribe(client: Client, student_id: int, class_id: int) -> int:
    """Email, webhook or both (to this run's receivers); a quarter also want position changes."""
    plan, rng = client.plan, client.rng
    channels = rng.choices(["email", "webhook", "both"], weights=[4, 3, 3])[0]
    body: dict[str, Any] = {}
    if channels in ("email", "both"):
        body["email"] = f"student{student_id}@example.edu"
    if channels in ("webhook", "both"):
        body["webhook_url"] = plan.hooks.url(student_id, class_id)
    if rng.random() < 0.25:
        body["events"] = ["enrollment.promoted", POSITION_CHANGED]
    status, data, _ = client.send(
        "subscribe", "POST", f"/students/{student_id}/subscribe/{class_id}", student_id, student_id, class_id, body
    )
    if status == 201:
        secret = data["subscription"].get("secret")
        if secret:
            plan.hooks.remember(student_id, class_id, secret)
    if status in (201, 409):
        plan.beliefs.subscribe(student_id, class_id)
    return status


# -- measurements of the backing services ---------------------------------------------------


class Probe:
    """Times a tiny DynamoDB GetItem (through the serialized moto server) and a Redis PING
    every `interval` seconds: how long a request waits for moto while the load runs."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.phase = "idle"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def _run(self) -> None:
        import boto3

        from chalicelib.adapters.redis_client import connect
        from chalicelib.adapters.tables import FREEZE_KEY
        from chalicelib.config import get_settings

        dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
        table = get_settings().settings_table
        redis = connect()
        while not self.stopping.wait(self.interval):
            started = time.perf_counter()
            dynamodb.get_item(TableName=table, Key={"name": {"S": FREEZE_KEY}})
            middle = time.perf_counter()
            redis.ping()
            ended = time.perf_counter()
            self.samples[self.phase]["moto GetItem"].append(middle - started)
            self.samples[self.phase]["Redis PING"].append(ended - middle)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(10)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the stack --------------------------------------------------------------------------------


class Stack:
    def __init__(self, env: dict[str, str], dynamodb_port: int, api_port: int) -> None:
        self.env = env
        self.dynamodb_port = dynamodb_port
        self.api_port = api_port
        tag = f"load-{os.getpid()}"
        self.dynamodb = Process(
            f"{tag}-dynamodb", python("-m", "infra.dynamodb_server", "--port", str(dynamodb_port)), env
        )
        self.api = Process(
            f"{tag}-api",
            chalice_local(api_port),
            env,
        )
        self.relay = Process(f"{tag}-relay", python("-m", "consumers.relay", "--idle", "0.1"), env)
        self.pollers = [
            Process(f"{tag}-{c}-poller", python("-m", "consumers.rmq_poller", "--channel", c, "--window", "0.1"), env)
            for c in ("email", "webhook")
        ]

    @property
    def processes(self) -> dict[str, Process]:
        return {
            "moto (DynamoDB)": self.dynamodb,
            "chalice local (API)": self.api,
            "relay": self.relay,
            "email poller": self.pollers[0],
            "webhook poller": self.pollers[1],
        }

    def start(self) -> None:
        from chalicelib.config import get_settings
        from infra.bootstrap import bootstrap

        self.dynamodb.start()
        wait_for_port(self.dynamodb_port)
        bootstrap(get_settings())
        for process in (self.api, self.relay, *self.pollers):
            process.start()
        wait_for_port(self.api_port)
        deadline = time.monotonic() + 60
        while not (_logged(self.relay, "relay reading the stream") and all(consumers(c) for c in ("email", "webhook"))):
            if time.monotonic() > deadline:
                raise SystemExit("the relay or a poller did not start within 60 s (see test-artifacts/logs)")
            dead = [p.name for p in (self.relay, *self.pollers, self.api) if not p.running]
            if dead:
                raise SystemExit(f"exited at start: {', '.join(dead)} (see test-artifacts/logs)")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in (self.api, *self.pollers, self.relay, self.dynamodb):
            process.stop()


def _logged(process: Process, text: str) -> bool:
    try:
        return text in process.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def _amqp(call: Callable[[Any], Any]) -> Any:
    import pika

    from chalicelib.config import get_settings

    connection = pika.BlockingConnection(pika.URLParameters(get_settings().amqp_url))
    try:
        return call(connection.channel())
    finally:
        connection.close()


def consumers(channel: str) -> int:
    from chalicelib.adapters import topology

    return _amqp(lambda c: c.queue_declare(topology.queue(channel), passive=True).method.consumer_count)


def queue_depths() -> dict[str, int]:
    """Messages (ready and unacknowledged) in each queue of the run's virtual host."""
    from chalicelib.adapters import topology
    from chalicelib.config import get_settings

    names = topology.queues(get_settings().retry_delays)
    if shutil.which("rabbitmqctl"):
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", VHOST, "name", "messages", "--no-table-headers"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        counts = dict(line.split() for line in listed.splitlines() if line.strip())
        return {name: int(counts.get(name, 0)) for name in names}
    # Without rabbitmqctl: ready messages only.
    return _amqp(lambda c: {n: c.queue_declare(n, passive=True).method.message_count for n in names})


def unpublished() -> int:
    from chalicelib.adapters.outbox import DynamoOutbox
    from chalicelib.config import get_settings

    return len(DynamoOutbox(get_settings()).unpublished(1000))


@dataclass
class Drain:
    seconds: float
    settled: bool
    unpublished: int
    depths: dict[str, int]


def drain(limit_seconds: float) -> Drain:
    """Wait until no event is unpublished and no live queue holds a message, twice in a row."""
    from chalicelib.adapters import topology

    dead = {topology.dead_letter_queue(c) for c in topology.CHANNELS}
    started = time.monotonic()
    quiet = 0
    left, depths = unpublished(), queue_depths()
    while time.monotonic() - started < limit_seconds:
        left, depths = unpublished(), queue_depths()
        quiet = quiet + 1 if left == 0 and not any(n for q, n in depths.items() if q not in dead) else 0
        if quiet >= 2:
            return Drain(time.monotonic() - started, True, left, depths)
        time.sleep(0.5)
    return Drain(time.monotonic() - started, False, left, depths)


# -- the run ------------------------------------------------------------------------------------


def tokens(student_ids: list[int], instructor_ids: list[int]) -> dict[int, str]:
    from chalicelib.adapters.tokens import JwtCodec
    from chalicelib.domain.model import Identity, Role

    codec = JwtCodec(JWT_SECRET, int(LOAD_ENV["TOKEN_TTL_SECONDS"]))
    minted = {s: codec.issue(Identity(s, Role.STUDENT, f"student{s}")) for s in student_ids}
    minted |= {i: codec.issue(Identity(i, Role.INSTRUCTOR, f"instructor{i}")) for i in instructor_ids}
    return minted


def presubscribe(plan: Plan, clients: list[Client], share: float, per_student: int) -> tuple[int, float]:
    """Before the load: the students on the sample waitlists subscribe to those classes, and
    `share` of all students to `per_student` random classes, spread over the clients."""
    from infra import sample_data

    wanted: set[tuple[int, int]] = {(s, c) for c, students in sample_data.WAITLISTS for s in students}
    chooser = random.Random(1)
    for student_id in sample_data.STUDENTS:
        if chooser.random() < share:
            wanted |= {(student_id, c) for c in chooser.sample(plan.classes, per_student)}
    owner = {s: client for client in clients for s in client.students}
    work: dict[Client, list[tuple[int, int]]] = defaultdict(list)
    for student_id, class_id in sorted(wanted):
        work[owner[student_id]].append((student_id, class_id))
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda c=c, items=items: [subscribe(c, s, k) for s, k in items])
        for c, items in work.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(wanted), time.monotonic() - started


def run_clients(clients: list[Client], budget: Budget) -> float:
    def loop(client: Client) -> None:
        while client.step(budget):
            pass

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(c,), name=f"client-{i}") for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


# -- the report ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


@dataclass
class Run:
    args: argparse.Namespace
    calls: list[Call]
    seconds: float
    started_at: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    subscriptions: tuple[int, float]
    setup_statuses: Counter[int]
    recorder: Recorder
    drained: Drain
    verdicts: list[Verdict]
    cpu: dict[str, float]
    probe: Probe
    events: Counter[str]
    mail: Counter[str]
    hooks: Hooks


def report(run: Run) -> str:
    calls, seconds = run.calls, run.seconds
    statuses = Counter(c.status for c in calls)
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    client_errors = sum(n for s, n in statuses.items() if 400 <= s < 500)
    latencies = [c.ended - c.started for c in calls if c.status]
    by_operation: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_operation[call.operation].append(call)
    load = ", ".join(f"{n:.2f}" for n in run.load_before)
    load_end = ", ".join(f"{n:.2f}" for n in run.load_after)
    args = run.args
    lines = [
        "# Load: mixed traffic on the whole local stack, then the invariants",
        "",
        f"`python -m bench.load --clients {args.clients} --seconds {args.seconds:g}`, "
        f"{datetime.fromtimestamp(run.started_at, UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other work: load average (1, 5, 15 min) {load} before the run, "
        f"{load_end} after it. Loopback only.",
        "",
        "The stack, each part its own process as in the Procfile: the serialized moto launcher, "
        "`chalice local` (infra.chalice_local), the outbox relay, one email and one webhook poller; "
        "an SMTP server (aiosmtpd) and a webhook receiver inside the load process. Tables `titan-load-*`, "
        f"Redis database 1, RabbitMQ virtual host `{VHOST}`, the sample data. Before the load "
        f"{run.subscriptions[0]} subscriptions (email, webhook or both; a quarter also to position changes) "
        f"were asked through the API in {run.subscriptions[1]:.1f} s (answers: "
        + ", ".join(f"{s or 'none'}: {n}" for s, n in sorted(run.setup_statuses.items()))
        + f"). Then {args.clients} clients (threads, "
        "one keep-alive httpx client each, each with its own students, one request at a time, no pause) sent "
        f"the mix {', '.join(f'{k} {v}' for k, v in MIX.items())} (weights; instructor = list enrolled, then drop "
        "one) for the duration. Enroll picks a class the student is not in, five times as often one of the "
        "sample's full classes (4, 8, 10, 13, 16). Waitlist polls send the ETag they last got in If-None-Match.",
        "",
        "## Throughput and latency",
        "",
        "| requests | seconds | requests/s | 2xx | 304 | 4xx | **5xx** | no answer | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {len(calls):,} | {seconds:.1f} | **{len(calls) / seconds:.1f}** "
        f"| {sum(n for s, n in statuses.items() if 200 <= s < 300):,} | {statuses[304]:,} | {client_errors:,} "
        f"| **{server_errors}** | {statuses[0]} | {ms(percentile(latencies, 0.5))} "
        f"| {ms(percentile(latencies, 0.99))} |",
        "",
        "| operation | requests | requests/s | statuses | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for operation in OPERATIONS:
        done = by_operation.get(operation, [])
        if not done:
            continue
        spread = ", ".join(f"{s or 'none'}: {n}" for s, n in sorted(Counter(c.status for c in done).items()))
        times = [c.ended - c.started for c in done if c.status]
        lines.append(
            f"| {operation} | {len(done):,} | {len(done) / seconds:.1f} | {spread} "
            f"| {ms(percentile(times, 0.5))} | {ms(percentile(times, 0.99))} |"
        )
    lines += ["", "4xx answers by code:", ""]
    lines += ["| operation | status | code | count |", "| --- | --- | --- | --- |"]
    lines += [f"| {op} | {status} | `{code}` | {n} |" for (op, status, code), n in sorted(run.recorder.codes.items())]
    if run.recorder.server_errors or run.recorder.transport_errors:
        lines += ["", "5xx and unanswered requests:", ""]
        lines += [f"- {n} x {text}" for text, n in run.recorder.server_errors.most_common(10)]
        lines += [f"- {n} x {text}" for text, n in run.recorder.transport_errors.most_common(10)]
    per_ten = Counter(int((c.started - run.started_at) // 10) for c in calls)
    rates = [per_ten[i] / min(10.0, seconds - 10 * i) for i in sorted(per_ten)]
    lines += [
        "",
        "Requests/s in each 10 s of the run: " + ", ".join(f"{r:.0f}" for r in rates) + ".",
        "",
        "## Notification pipeline",
        "",
        f"Events written: {', '.join(f'{n} `{t}`' for t, n in sorted(run.events.items())) or 'none'}. "
        f"Received: {sum(run.mail.values())} emails, {sum(run.hooks.receipts.values())} webhook POSTs "
        f"({run.hooks.bad_signatures} with an invalid signature, {run.hooks.unchecked} without a known secret). "
        f"After the load the pipeline {'drained' if run.drained.settled else 'had NOT drained'} in "
        f"{run.drained.seconds:.1f} s (outbox unpublished: {run.drained.unpublished}; dead-letter queues: "
        + ", ".join(f"{q} {n}" for q, n in sorted(run.drained.depths.items()) if q.endswith(".dead"))
        + ").",
        "",
        "## Invariants (after the load and the drain)",
        "",
        invariants_table(run.verdicts),
        "",
        "## Where the time goes",
        "",
        "CPU used by each process during the load (CPU seconds / wall seconds; 1.00 = one core busy):",
        "",
        "| process | CPU s | cores |",
        "| --- | --- | --- |",
        *(f"| {name} | {cpu:.1f} | {cpu / seconds:.2f} |" for name, cpu in run.cpu.items()),
        "",
        "A GetItem of one tiny item on the moto server and a Redis PING, timed every 0.25 s from a "
        "thread of the load process:",
        "",
        "| probe | phase | samples | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for phase in ("idle", "load"):
        for probe, values in sorted(run.probe.samples.get(phase, {}).items()):
            lines.append(
                f"| {probe} | {phase} | {len(values)} | {ms(percentile(values, 0.5))} "
                f"| {ms(percentile(values, 0.99))} |"
            )
    lines += ["", reading(run, by_operation), ""]
    return "\n".join(lines)


def reading(run: Run, by_operation: dict[str, list[Call]]) -> str:
    """What the figures say about the bottleneck."""

    def p50(calls: list[Call]) -> float:
        return percentile([c.ended - c.started for c in calls if c.status], 0.5)

    redis_only = [c for op in REDIS_ONLY for c in by_operation.get(op, [])]
    with_dynamodb = [c for op in WITH_DYNAMODB for c in by_operation.get(op, [])]
    probes = {phase: run.probe.samples.get(phase, {}) for phase in ("idle", "load")}
    idle = percentile(probes["idle"].get("moto GetItem", []), 0.5)
    busy = percentile(probes["load"].get("moto GetItem", []), 0.5)
    redis = percentile(probes["load"].get("Redis PING", []), 0.5)
    moto_cores = next((cpu for name, cpu in run.cpu.items() if name.startswith("moto")), 0.0) / run.seconds
    text = (
        f"Requests answered from Redis alone (the waitlist polls) took p50 {ms(p50(redis_only))} ms; "
        f"those that call DynamoDB (enroll, drops, the instructor's list, subscribe: 1 to 3 calls each) took "
        f"p50 {ms(p50(with_dynamodb))} ms. Under load a tiny GetItem waited p50 {ms(busy)} ms at the moto "
        f"server ({ms(idle)} ms idle), while Redis answered a PING in p50 {ms(redis)} ms."
    )
    if busy > 5 * idle:
        text += (
            " Throughput is set by the moto launcher, which serves one DynamoDB request at a time: "
            f"requests queue there, and it got {moto_cores:.2f} of a core on a machine whose load average "
            "shows other work competing for the CPUs."
        )
    return text


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=24, help="concurrent clients (default 24)")
    parser.add_argument("--seconds", type=float, default=60, help="duration of the load (default 60)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on requests (default 200000)")
    parser.add_argument("--drain-seconds", type=float, default=300, help="longest wait for the pipeline")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 0 < args.seconds <= 3600 and 0 < args.max_requests <= 10_000_000):
        parser.error("keep 1 <= --clients <= 200, 0 < --seconds <= 3600, 0 < --max-requests <= 10000000")

    dynamodb_port, api_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{dynamodb_port}"
    mailbox, hooks = Mailbox(), Hooks()
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(
        LOAD_ENV,
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        AWS_ENDPOINT_URL_DYNAMODB_STREAMS=endpoint,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox.port),
    )
    from chalicelib.config import get_settings
    from infra import sample_data

    settings = get_settings()
    ensure_vhost(settings.amqp_url)
    stack = Stack(dict(os.environ), dynamodb_port, api_port)
    probe = Probe()
    students = list(sample_data.STUDENTS)
    classes = sorted(sample_data.CLASSES)
    beliefs = Beliefs()
    for class_id in classes:
        for student_id in sample_data.enrolled(class_id):
            beliefs.enroll(student_id, class_id)
    for class_id, waiting in sample_data.WAITLISTS:
        for student_id in waiting:
            beliefs.wait(student_id, class_id)
    recorder = Recorder()
    clients: list[Client] = []
    try:
        mailbox.start()
        hooks.start()
        print(f"starting the stack (moto on {dynamodb_port}, API on {api_port})", file=sys.stderr)
        stack.start()
        plan = Plan(
            f"http://127.0.0.1:{api_port}",
            classes,
            tokens(students, [500 + c for c in classes]),
            beliefs,
            recorder,
            hooks,
            popularity={c: 5 for c, plan in sample_data.CLASSES.items() if plan.full},
        )
        clients = [
            Client(plan, students[i :: args.clients], random.Random(args.seed * 1000 + i)) for i in range(args.clients)
        ]
        subscriptions = presubscribe(plan, clients, share=0.5, per_student=3)
        print(f"{subscriptions[0]} subscriptions made in {subscriptions[1]:.1f} s", file=sys.stderr)
        probe.start()
        time.sleep(3)  # idle probes
        setup_statuses = recorder.reset()
        probe.phase = "load"
        load_before = os.getloadavg()
        cpu_before = {n: cpu_seconds(p.popen.pid) for n, p in stack.processes.items() if p.popen}
        own_before = own_cpu_seconds()
        started_at = time.time()
        print(f"load: {args.clients} clients for {args.seconds:g} s", file=sys.stderr)
        seconds = run_clients(clients, Budget(args.max_requests, time.monotonic() + args.seconds))
        cpu = {
            n: (cpu_seconds(p.popen.pid) or 0.0) - (cpu_before.get(n) or 0.0)
            for n, p in stack.processes.items()
            if p.popen
        }
        cpu["load process (clients, receivers, probe)"] = own_cpu_seconds() - own_before
        probe.phase = "drain"
        load_after = os.getloadavg()
        print(f"{len(recorder.calls)} requests in {seconds:.1f} s; draining the pipeline", file=sys.stderr)
        drained = drain(args.drain_seconds)
        probe.stop()
        ledger = Ledger(
            calls=list(recorder.calls),
            initial_enrolled={c: set(sample_data.enrolled(c)) for c in classes},
            mail_receipts=Counter(mailbox.receipts),
            webhook_receipts=Counter(hooks.receipts),
            bad_signatures=hooks.bad_signatures,
        )
        ledger.save(LEDGER)
        snapshot = Snapshot.take()
        verdicts = check(ledger, settings.waitlist_capacity, settings.max_waitlists_per_student, snapshot)
        events = Counter(e.type for e in snapshot.events)
        run = Run(
            args,
            ledger.calls,
            seconds,
            started_at,
            load_before,
            load_after,
            subscriptions,
            setup_statuses,
            recorder,
            drained,
            verdicts,
            cpu,
            probe,
            events,
            ledger.mail_receipts,
            hooks,
        )
        clear_redis()
    finally:
        probe.stop()
        for client in clients:
            client.close()
        stack.stop()
        mailbox.stop()
        hooks.stop()

    text = report(run)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"saved to {RESULTS.relative_to(ROOT)}, ledger in {LEDGER.relative_to(ROOT)}", file=sys.stderr)
    if any(c.status >= 500 for c in run.calls) or any(v.held is False for v in run.verdicts):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
