"""Fault scenarios on the whole local stack, each with its figure.

    python -m bench.faults [--promotions 150] [--seed 8] [--only broker,kill,outage,slow]

Starts its own stack on free loopback ports: the serialized moto launcher, the bootstrap
(tables titan-faults-*, Redis database 9, RabbitMQ virtual host titan-faults), `chalice
local`, the outbox relay, one email and one webhook poller, and, inside this process, an
SMTP server and a webhook receiver that count what arrives per event id and can be stopped
and started again. Each scenario starts from the sample data, subscribes (email and
webhook) every student it will promote, then makes a burst of promotions through the API
(in each of the five full classes, in turn: drop the longest-enrolled student, so that
the head of the waitlist is promoted, then let a new student join the waitlist) while it
injects its fault:

- broker: the broker closes every connection of the virtual host (`rabbitmqctl
  close_connection`, never a connection of another virtual host) three times;
- kill: the relay and the pollers are killed with SIGKILL at seeded random points of the
  burst and started again after a seeded random pause;
- outage: the SMTP server and the webhook receiver stop for a while and start again;
- slow: the moto server answers every request late (--latency-ms) for the whole scenario.

Afterwards it waits (bounded) until every event has reached both channels and nothing is
left in flight, checks the state and the receipts with bench.invariants, prints a markdown
report and saves it to bench/results/faults.md. Exits 1 when an event is lost, arrives
twice outside the crash window that at-least-once delivery leaves (a sender killed after
the receiver accepted, before the claim was marked done), an invariant breaks, or the API
answers a 5xx. tests/e2e/test_faults.py runs the same scenarios, smaller, on the test stack.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import random
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from bench import load
from bench.invariants import DROP, ENROLL, Call, Event, Ledger, Snapshot, Verdict, check
from bench.invariants import table as invariants_table
from infra import bootstrap, sample_data
from tests.support.broker import ensure_vhost
from tests.support.processes import ROOT, Process, chalice_local, free_port, python, wait_for_port

log = logging.getLogger("bench.faults")

RESULTS = ROOT / "bench" / "results" / "faults.md"
VHOST = "titan-faults"
FAULTS_ENV = {
    "STAGE": "local",
    "TABLE_PREFIX": "titan-faults",
    "REDIS_URL": "redis://127.0.0.1:6379/9",
    "AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
    "JWT_SECRET": "faults-bench-only-signing-key-0123456789abcdef-0123",
    "TOKEN_TTL_SECONDS": "7200",
    "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    # Short delay queues, and attempts enough to outlast the outage scenario: about 55 s
    # of retries (0.5 + 1 + 28 x 2, each stretched by up to 20 % of jitter).
    "RETRY_DELAYS": "0.5,1,2",
    "MAX_ATTEMPTS": "30",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "faults",
    "AWS_SECRET_ACCESS_KEY": "faults",
    "PYTHONUNBUFFERED": "1",
}
CHANNELS = ("email", "webhook")
WORKERS = ("relay", "email poller", "webhook poller")
# The sample's full classes: each drop there promotes the head of the waitlist.
FULL_CLASSES = tuple(sorted(c for c, plan in sample_data.CLASSES.items() if plan.full))
REQUEST_TIMEOUT = 60.0
# A second receipt of an event counts as the at-least-once crash window when the poller
# of that channel was killed within this many seconds after the first receipt.
CRASH_WINDOW_SECONDS = 2.0
DELIVERED_ONCE = "every event delivered once"


# -- the broker ---------------------------------------------------------------------------


def vhost_of(amqp_url: str) -> str:
    return unquote(urlparse(amqp_url).path[1:]) or "/"


def vhost_connections(vhost: str) -> list[str]:
    """The Erlang pids of the broker's client connections on `vhost`."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "vhost", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = (line.split("\t") for line in listed.splitlines())
    return [row[0].strip() for row in rows if len(row) == 2 and row[1].strip() == vhost]


def close_connections(vhost: str, reason: str = "fault test") -> int:
    """Have the broker close every client connection of `vhost`, and only those (never
    `rabbitmqctl close_all_connections`: other runs share the broker); how many."""
    if vhost == "/":
        raise ValueError("refusing to close the connections of the default virtual host")
    pids = vhost_connections(vhost)
    closing = [
        subprocess.Popen(
            ["rabbitmqctl", "-q", "close_connection", pid, reason],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    for process in closing:
        process.wait(60)
    return len(pids)


def queue_depths(vhost: str, names: Iterable[str]) -> dict[str, int]:
    """Messages in each queue, ready or handed to a consumer and not yet acknowledged."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    counts = dict(line.split() for line in listed.splitlines() if line.strip())
    return {name: int(counts.get(name, 0)) for name in names}


# -- receivers ----------------------------------------------------------------------------


def _mail_id(content: bytes) -> str:
    message_id = BytesHeaderParser().parsebytes(content)["Message-ID"] or ""
    return message_id.strip().strip("<>").split("@")[0]


class Mailbox(load.Mailbox):
    """bench.load's SMTP server (it can stop and start again on its port), also noting
    when each message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            self.arrivals.append((time.time(), _mail_id(envelope.content)))
        return reply

    def clear(self) -> None:
        with self.lock:
            self.receipts.clear()
            self.arrivals.clear()


class _StoppableHandler(load._HookHandler):
    def do_POST(self) -> None:
        if self.server.stopped:
            # A kept-alive connection of a stopped receiver: no answer, nothing delivered.
            self.close_connection = True
            return
        super().do_POST()


class Receiver(load.Hooks):
    """bench.load's webhook receiver (counts per webhook-id, checks signatures) on a fixed
    port, able to stop and start again. Stopped, it refuses connections and answers
    nothing on connections kept alive from before; a request it is already answering
    completes, as with a server shut down gracefully."""

    def __init__(self) -> None:
        super().__init__()
        self.port = self.server.server_address[1]
        self.server.RequestHandlerClass = _StoppableHandler
        self.server.stopped = False
        self.arrivals: list[tuple[float, str]] = []
        self.running = False

    def url(self, student_id: int, class_id: int) -> str:
        return f"http://127.0.0.1:{self.port}{self.path(student_id, class_id)}"

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        super().record(path, headers, body)
        with self.lock:
            self.arrivals.append((time.time(), headers.get("webhook-id", "")))

    def start(self) -> None:
        if self.running:
            return
        if self.server.stopped:
            self.server = load._HookServer(("127.0.0.1", self.port), _StoppableHandler)
            self.server.hooks = self
            self.server.stopped = False
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.server.stopped:
            return
        self.server.stopped = True
        if self.running:
            self.server.shutdown()
        self.server.server_close()
        self.running = False

    def clear(self) -> None:
        with self.lock:
            self.receipts.clear()
            self.arrivals.clear()
            self.secrets.clear()
            self.bad_signatures = 0
            self.unchecked = 0


# -- what a scenario works on -------------------------------------------------------------


@dataclass
class Rig:
    """A running stack: the API, the receivers the pollers deliver to, and the relay and
    pollers (named as in WORKERS) that a scenario may kill and start again."""

    url: str
    amqp_url: str
    jwt_secret: str
    mailbox: Mailbox
    receiver: Receiver
    workers: dict[str, Process]


@dataclass
class Plan:
    """Per full class: who is dropped first (the enrolled, oldest first; then whoever was
    promoted), and the new students who join the waitlist, one after each drop. Each drop
    promotes the head of the waitlist, so the burst makes `per_class` promotions per class,
    paced to `rate` promotions per second in all so that the faults strike a pipeline at
    work (None: as fast as the API answers)."""

    per_class: int
    joiners: dict[int, list[int]]
    rate: float | None

    @classmethod
    def make(cls, promotions: int, rate: float | None) -> Plan:
        taken = {s for c in sample_data.CLASSES for s in sample_data.enrolled(c)}
        taken |= {s for _, waiting in sample_data.WAITLISTS for s in waiting}
        free = [s for s in sample_data.STUDENTS if s not in taken]
        per_class = math.ceil(promotions / len(FULL_CLASSES))
        if per_class * len(FULL_CLASSES) > len(free):
            raise ValueError(f"at most {len(free) // len(FULL_CLASSES) * len(FULL_CLASSES)} promotions")
        joiners = {c: free[i :: len(FULL_CLASSES)][:per_class] for i, c in enumerate(FULL_CLASSES)}
        return cls(per_class, joiners, rate)

    @property
    def promotions(self) -> int:
        return self.per_class * len(FULL_CLASSES)

    def subscriptions(self, class_id: int) -> list[int]:
        """Everyone who may be promoted in the class: its sample waitlist, then the joiners."""
        return [*dict(sample_data.WAITLISTS).get(class_id, []), *self.joiners[class_id]]

    def students(self) -> set[int]:
        return {s for c in FULL_CLASSES for s in self.subscriptions(c)} | {
            s for c in FULL_CLASSES for s in sample_data.enrolled(c)
        }


class Progress:
    """Promotions so far; fault injectors wait on it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.promotions = 0
        self.finished = False

    def add(self, count: int) -> None:
        with self._condition:
            self.promotions += count
            self._condition.notify_all()

    def finish(self) -> None:
        with self._condition:
            self.finished = True
            self._condition.notify_all()

    def wait_for(self, promotions: int, timeout: float = 600) -> None:
        """Until `promotions` were made or the burst is over."""
        with self._condition:
            self._condition.wait_for(lambda: self.promotions >= promotions or self.finished, timeout)


@dataclass
class Timeline:
    """What the fault did and when (epoch seconds)."""

    notes: list[tuple[float, str]] = field(default_factory=list)
    kills: list[tuple[float, str]] = field(default_factory=list)
    fault_end: float | None = None

    def note(self, text: str, ends_fault: bool = False) -> None:
        now = time.time()
        self.notes.append((now, text))
        if ends_fault:
            self.fault_end = now


Injector = Callable[[Rig, Progress, int, Timeline], None]


def tokens(jwt_secret: str, students: Iterable[int]) -> dict[int, str]:
    from chalicelib.adapters.tokens import JwtCodec
    from chalicelib.domain.model import Identity, Role

    codec = JwtCodec(jwt_secret, 7200)
    return {s: codec.issue(Identity(s, Role.STUDENT, f"student{s}")) for s in students}


def subscribe_all(rig: Rig, plan: Plan, minted: dict[int, str]) -> Counter[int]:
    """Every student who may be promoted asks for email and webhook, one thread per class;
    the statuses of the answers."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def subscribe(class_id: int) -> None:
        with httpx.Client(base_url=rig.url, timeout=REQUEST_TIMEOUT) as http:
            for student_id in plan.subscriptions(class_id):
                try:
                    response = http.post(
                        f"/students/{student_id}/subscribe/{class_id}",
                        json={
                            "email": f"student{student_id}@example.edu",
                            "webhook_url": rig.receiver.url(student_id, class_id),
                        },
                        headers={"Authorization": f"Bearer {minted[student_id]}"},
                    )
                except httpx.HTTPError:
                    status = 0
                else:
                    status = response.status_code
                    if status == 201:
                        rig.receiver.remember(student_id, class_id, response.json()["subscription"]["secret"])
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=subscribe, args=(c,)) for c in FULL_CLASSES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


class Burst:
    """One thread per full class: drop the longest-enrolled student (the head of the
    waitlist is promoted), then a new student joins the waitlist; every request recorded."""

    def __init__(self, url: str, minted: dict[int, str], plan: Plan, progress: Progress) -> None:
        self.url = url
        self.minted = minted
        self.plan = plan
        self.progress = progress
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.running = len(FULL_CLASSES)
        self.threads = [threading.Thread(target=self._run, args=(c,), name=f"burst-{c}") for c in FULL_CLASSES]
        self.started = 0.0
        self.ended = 0.0

    def start(self) -> None:
        self.started = time.time()
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    @property
    def promotions(self) -> int:
        return sum(len(c.promoted) for c in self.calls)

    def _run(self, class_id: int) -> None:
        enrolled = deque(sample_data.enrolled(class_id))
        turn = FULL_CLASSES.index(class_id)
        try:
            with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT) as http:
                for i, joiner in enumerate(self.plan.joiners[class_id]):
                    if self.plan.rate:
                        due = self.started + (i * len(FULL_CLASSES) + turn) / self.plan.rate
                        time.sleep(max(due - time.time(), 0))
                    if enrolled:
                        student_id = enrolled.popleft()
                        call = self._send(http, DROP, "PUT", student_id, class_id, "drop")
                        enrolled.extend(s for _, s in call.promoted)
                        self.progress.add(len(call.promoted))
                    call = self._send(http, ENROLL, "POST", joiner, class_id, "enroll")
                    if call.status == 201:
                        enrolled.append(joiner)
        finally:
            with self.lock:
                self.running -= 1
                if not self.running:
                    self.ended = time.time()
                    self.progress.finish()

    def _send(self, http: httpx.Client, operation: str, method: str, student_id: int, class_id: int, verb: str) -> Call:
        started = time.time()
        try:
            response = http.request(
                method,
                f"/students/{student_id}/classes/{class_id}/{verb}",
                headers={"Authorization": f"Bearer {self.minted[student_id]}"},
            )
        except httpx.HTTPError:
            call = Call(operation, student_id, class_id, 0, started, time.time())
        else:
            promoted: tuple[tuple[int, int], ...] = ()
            if operation == DROP and response.status_code == 200:
                promoted = tuple((int(p["class_id"]), int(p["student_id"])) for p in response.json()["promoted"])
            call = Call(operation, student_id, class_id, response.status_code, started, time.time(), promoted)
        with self.lock:
            self.calls.append(call)
        return call


# -- the faults ---------------------------------------------------------------------------


def broker_closes(shares: tuple[float, ...] = (0.25, 0.5, 0.75)) -> Injector:
    """The broker closes every connection of the stack's virtual host at these shares of the burst."""

    def inject(rig: Rig, progress: Progress, total: int, timeline: Timeline) -> None:
        vhost = vhost_of(rig.amqp_url)
        for share in shares:
            progress.wait_for(math.ceil(total * share))
            # Whoever was cut by the previous closure needs a moment to reconnect.
            deadline = time.monotonic() + 5
            while not vhost_connections(vhost) and time.monotonic() < deadline:
                time.sleep(0.2)
            closed = close_connections(vhost)
            timeline.note(f"broker closed the {closed} connections of `{vhost}`", ends_fault=True)

    return inject


@dataclass(frozen=True)
class Kill:
    share: float  # of the burst's promotions made when it strikes
    victims: tuple[str, ...]
    pause: float  # seconds before they start again

    def __str__(self) -> str:
        return f"at {self.share:.0%} of the burst: {', '.join(self.victims)}, restarted after {self.pause:.1f} s"


def kill_schedule(kills: int, seed: int) -> list[Kill]:
    """Seeded random points of the burst, each killing one worker or all three at once."""
    rng = random.Random(seed)
    shares = sorted(rng.uniform(0.05, 0.95) for _ in range(kills))
    choices = [(w,) for w in WORKERS] + [WORKERS]
    return [Kill(share, rng.choice(choices), round(rng.uniform(0.2, 1.5), 1)) for share in shares]


def random_kills(schedule: list[Kill]) -> Injector:
    """SIGKILL, a pause, start again; each kill waits until the pollers consume again, so
    that it strikes processes at work rather than still starting."""

    def inject(rig: Rig, progress: Progress, total: int, timeline: Timeline) -> None:
        for kill in schedule:
            progress.wait_for(math.ceil(total * kill.share))
            for name in kill.victims:
                rig.workers[name].kill()
                timeline.kills.append((time.time(), name))
            timeline.note(f"SIGKILL: {', '.join(kill.victims)}")
            time.sleep(kill.pause)
            for name in kill.victims:
                rig.workers[name].start()
            timeline.note(f"started again: {', '.join(kill.victims)}", ends_fault=True)
            deadline = time.monotonic() + 30
            while not all(load.consumers(c) for c in CHANNELS) and time.monotonic() < deadline:
                time.sleep(0.1)

    return inject


def receivers_down(seconds: float, share: float = 0.15) -> Injector:
    """The SMTP server and the webhook receiver stop from this share of the burst on, for `seconds`."""

    def inject(rig: Rig, progress: Progress, total: int, timeline: Timeline) -> None:
        progress.wait_for(math.ceil(total * share))
        rig.mailbox.stop()
        rig.receiver.stop()
        timeline.note("SMTP server and webhook receiver stopped")
        time.sleep(seconds)
        rig.mailbox.start()
        rig.receiver.start()
        timeline.note("SMTP server and webhook receiver started again", ends_fault=True)

    return inject


def no_injection(rig: Rig, progress: Progress, total: int, timeline: Timeline) -> None:
    """The fault is in the stack itself (a slow moto server) for the whole scenario."""


# -- a scenario ---------------------------------------------------------------------------


@dataclass
class ChannelFigures:
    expected: int
    receipts: int
    delivered: int
    duplicates: int
    crash_window: int  # duplicates whose sender was killed right after the first receipt
    lost: int
    unexpected: int
    not_recorded: int  # expected events whose delivery history does not say delivered
    last_first_receipt: float | None

    @property
    def exactly_once(self) -> bool:
        """Every event arrived, nothing else did, and any second arrival is the crash window's."""
        return self.lost == 0 and self.unexpected == 0 and self.duplicates == self.crash_window


@dataclass
class Outcome:
    name: str
    fault: str
    promotions: int
    events: int
    channels: dict[str, ChannelFigures]
    dead_letters: int
    requests: int
    statuses: Counter[int]
    latencies: list[float]
    subscribe_statuses: Counter[int]
    burst_seconds: float
    recover_seconds: float | None
    drained: bool
    drain_seconds: float
    timeline: Timeline
    started: float
    verdicts: list[Verdict]
    bad_signatures: int
    rate: float | None

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)

    @property
    def ok(self) -> bool:
        """Every event once (second arrivals only in the crash window), its history recorded,
        valid signatures, no 5xx, the pipeline idle, and every other invariant held. The
        checker's own delivery verdicts count every second arrival; the channel figures
        stand in for them."""
        deliveries = all(c.exactly_once and c.not_recorded == 0 for c in self.channels.values())
        state = all(v.held is not False for v in self.verdicts if not v.name.startswith(DELIVERED_ONCE))
        return deliveries and state and self.bad_signatures == 0 and self.server_errors == 0 and self.drained


def run_scenario(
    rig: Rig,
    name: str,
    fault: str,
    plan: Plan,
    inject: Injector,
    settle_seconds: float = 240,
) -> Outcome:
    """Subscribe, make the burst while `inject` works, wait until everything arrived and
    nothing is in flight, then take the figures and check the invariants."""
    from chalicelib.adapters import topology
    from chalicelib.config import get_settings

    settings = get_settings()
    rig.mailbox.clear()
    rig.receiver.clear()
    minted = tokens(rig.jwt_secret, plan.students())
    subscribed = subscribe_all(rig, plan, minted)
    progress, timeline = Progress(), Timeline()
    burst = Burst(rig.url, minted, plan, progress)
    log.info("%s: %d promotions while the fault works", name, plan.promotions)
    burst.start()
    try:
        inject(rig, progress, plan.promotions, timeline)
    finally:
        burst.join()
    promotions = burst.promotions
    log.info("%s: burst over (%d promotions); waiting for the deliveries", name, promotions)
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline and not (
        len(rig.mailbox.receipts) >= promotions and len(rig.receiver.receipts) >= promotions
    ):
        time.sleep(0.1)
    drained, drain_seconds, depths = wait_idle(vhost_of(rig.amqp_url), settings, max(deadline - time.monotonic(), 5))
    snapshot = Snapshot.take()
    ledger = Ledger(
        calls=list(burst.calls),
        initial_enrolled={c: set(sample_data.enrolled(c)) for c in sample_data.CLASSES},
        mail_receipts=Counter(rig.mailbox.receipts),
        webhook_receipts=Counter(rig.receiver.receipts),
        bad_signatures=rig.receiver.bad_signatures,
    )
    verdicts = check(ledger, settings.waitlist_capacity, settings.max_waitlists_per_student, snapshot)
    arrivals = {"email": list(rig.mailbox.arrivals), "webhook": list(rig.receiver.arrivals)}
    channels = {
        channel: channel_figures(
            [e for e in snapshot.events if (e.email if channel == "email" else e.webhook)],
            channel,
            arrivals[channel],
            [t for t, worker in timeline.kills if worker == f"{channel} poller"],
        )
        for channel in CHANNELS
    }
    last = [c.last_first_receipt for c in channels.values() if c.last_first_receipt is not None]
    fault_end = timeline.fault_end or burst.ended
    dead = sum(n for q, n in depths.items() if q in {topology.dead_letter_queue(c) for c in CHANNELS})
    return Outcome(
        name=name,
        fault=fault,
        promotions=promotions,
        events=len(snapshot.events),
        channels=channels,
        dead_letters=dead,
        requests=len(burst.calls),
        statuses=Counter(c.status for c in burst.calls),
        latencies=[c.ended - c.started for c in burst.calls if c.status],
        subscribe_statuses=subscribed,
        burst_seconds=burst.ended - burst.started,
        recover_seconds=max(max(last) - fault_end, 0.0) if last else None,
        drained=drained,
        drain_seconds=drain_seconds,
        timeline=timeline,
        started=burst.started,
        verdicts=verdicts,
        bad_signatures=rig.receiver.bad_signatures,
        rate=plan.rate,
    )


def channel_figures(
    events: list[Event], channel: str, arrivals: list[tuple[float, str]], kills: list[float]
) -> ChannelFigures:
    """What arrived on a channel against the events meant for it; `kills`: when its poller was killed."""
    expected = {e.event_id for e in events}
    counts = Counter(event_id for _, event_id in arrivals)
    first: dict[str, float] = {}
    for at, event_id in sorted(arrivals):
        first.setdefault(event_id, at)
    twice = [e for e, n in counts.items() if n > 1]
    in_window = [
        e for e in twice if any(first[e] <= k <= first[e] + CRASH_WINDOW_SECONDS for k in kills) and e in expected
    ]
    reached = [first[e] for e in expected if e in first]
    return ChannelFigures(
        expected=len(expected),
        receipts=len(arrivals),
        delivered=len(expected & set(counts)),
        duplicates=sum(counts[e] - 1 for e in twice),
        crash_window=sum(counts[e] - 1 for e in in_window),
        lost=len(expected - set(counts)),
        unexpected=len(set(counts) - expected),
        not_recorded=sum(1 for e in events if (e.deliveries.get(channel) or {}).get("status") != "delivered"),
        last_first_receipt=max(reached) if reached else None,
    )


def wait_idle(vhost: str, settings: Any, limit_seconds: float) -> tuple[bool, float, dict[str, int]]:
    """Until no event is unpublished and no queue but the dead letters holds a message,
    twice in a row: (settled, seconds waited, the queue depths)."""
    from chalicelib.adapters import topology
    from chalicelib.adapters.outbox import DynamoOutbox

    names = topology.queues(settings.retry_delays)
    dead = {topology.dead_letter_queue(c) for c in CHANNELS}
    outbox = DynamoOutbox(settings)
    started = time.monotonic()
    quiet = 0
    depths = queue_depths(vhost, names)
    while True:
        depths = queue_depths(vhost, names)
        idle = not outbox.unpublished(1) and not any(n for q, n in depths.items() if q not in dead)
        quiet = quiet + 1 if idle else 0
        if quiet >= 2:
            return True, time.monotonic() - started, depths
        if time.monotonic() - started > limit_seconds:
            return False, time.monotonic() - started, depths
        time.sleep(0.5)


# -- the bench's own stack ----------------------------------------------------------------


class Stack:
    """The Procfile's processes on free ports; the moto server can be restarted slow."""

    def __init__(self, env: dict[str, str], dynamodb_port: int, api_port: int) -> None:
        self.env = env
        self.dynamodb_port = dynamodb_port
        self.api_port = api_port
        self.tag = f"faults-{os.getpid()}"
        self.latency_ms = 0.0
        self.dynamodb = self._moto(0.0)
        self.api = Process(
            f"{self.tag}-api",
            chalice_local(api_port),
            env,
        )
        self.workers = {
            "relay": Process(f"{self.tag}-relay", python("-m", "consumers.relay", "--idle", "0.1"), env),
            **{
                f"{c} poller": Process(
                    f"{self.tag}-{c}-poller",
                    python("-m", "consumers.rmq_poller", "--channel", c, "--window", "0.1"),
                    env,
                )
                for c in CHANNELS
            },
        }

    def _moto(self, latency_ms: float) -> Process:
        args = ["-m", "infra.dynamodb_server", "--port", str(self.dynamodb_port), "--latency-ms", f"{latency_ms:g}"]
        return Process(f"{self.tag}-dynamodb", python(*args), self.env)

    def reset(self, latency_ms: float) -> None:
        """The sample data on a moto server `latency_ms` slow, and the relay and pollers afresh."""
        from chalicelib.config import get_settings
        from infra.bootstrap import bootstrap

        for worker in self.workers.values():
            worker.stop()
        if not self.dynamodb.running or latency_ms != self.latency_ms:
            self.dynamodb.stop()
            self.dynamodb = self._moto(latency_ms).start()
            self.latency_ms = latency_ms
            wait_for_port(self.dynamodb_port)
        bootstrap(get_settings())
        if not self.api.running:
            self.api.start()
            wait_for_port(self.api_port)
        for worker in self.workers.values():
            worker.start()
        deadline = time.monotonic() + 60
        while not all(load.consumers(c) for c in CHANNELS):
            dead = [n for n, p in (*self.workers.items(), ("api", self.api)) if not p.running]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"did not start: {', '.join(dead) or 'pollers'} (see test-artifacts/logs)")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in (self.api, *self.workers.values(), self.dynamodb):
            process.stop()


# -- the report ---------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def report(outcomes: list[Outcome], args: argparse.Namespace, started: float) -> str:
    lines = [
        "# Faults: every event delivered exactly once after recovery",
        "",
        f"`python -m bench.faults --promotions {args.promotions} --rate {args.rate:g} --seed {args.seed} "
        f"--kills {args.kills} --outage {args.outage:g} --latency-ms {args.latency_ms:g}`, "
        f"{datetime.fromtimestamp(started, UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other work. Loopback only.",
        "",
        "Each scenario runs on a stack of its own, the processes of the Procfile (serialized moto launcher, "
        "`chalice local`, outbox relay, one email and one webhook poller), reset to the sample data: tables "
        f"`titan-faults-*`, Redis database 9, RabbitMQ virtual host `{VHOST}`, delay queues of "
        f"{FAULTS_ENV['RETRY_DELAYS'].replace(',', ', ')} s and {FAULTS_ENV['MAX_ATTEMPTS']} attempts. The SMTP "
        "server and the webhook receiver run inside the bench and note every arrival by event id (Message-ID, "
        "webhook-id; signatures checked). Every student who can be promoted first subscribes to email and "
        "webhook. The burst, through the API: in each of the five full classes in turn, the longest-enrolled "
        "student drops (the head of the waitlist is promoted) and a new student joins the waitlist.",
        "",
        "| scenario | fault | promotions | deliveries expected | arrived | lost | second arrivals "
        "| history not delivered | dead letters | API 5xx | API p50 / p99 | time to recover |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        c = list(o.channels.values())
        twice = sum(x.duplicates for x in c)
        in_window = sum(x.crash_window for x in c)
        lines.append(
            f"| {o.name} | {short_fault(o)} | {o.promotions} | {sum(x.expected for x in c)} "
            f"| {sum(x.delivered for x in c)} | **{sum(x.lost for x in c)}** "
            f"| **{twice}**{f' (all {in_window} in the crash window)' if twice and twice == in_window else ''} "
            f"| {sum(x.not_recorded for x in c)} | {o.dead_letters} | {o.server_errors} "
            f"| {ms(percentile(o.latencies, 0.5))} / {ms(percentile(o.latencies, 0.99))} ms "
            f"| {seconds(o.recover_seconds)} |"
        )
    lines += [
        "",
        "Deliveries expected: one email and one webhook per promotion event. Time to recover: from the end "
        "of the fault (the last closure, the last restart, the servers' return; for the slow moto server, "
        "the end of the burst) to the first arrival of the last event on both channels.",
        "",
        "## Summary",
        "",
        summary(outcomes),
    ]
    for o in outcomes:
        pace = f"paced at {o.rate:g} promotions/s" if o.rate else "as fast as the API answered"
        lines += [
            "",
            f"## {o.name}: {o.fault}",
            "",
            f"{o.promotions} promotions in {o.burst_seconds:.1f} s ({pace}; {o.requests} API requests: "
            + ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(o.statuses.items()))
            + f"; p50 {ms(percentile(o.latencies, 0.5))} ms, p99 {ms(percentile(o.latencies, 0.99))} ms), "
            f"after {sum(o.subscribe_statuses.values())} subscriptions ("
            + ", ".join(f"{s}: {n}" for s, n in sorted(o.subscribe_statuses.items()))
            + f"). {o.events} outbox events. Pipeline {'idle' if o.drained else 'NOT idle'} "
            f"{o.drain_seconds:.1f} s after the last first arrival; {o.dead_letters} dead letters.",
            "",
            "| channel | expected | arrivals | events arrived | lost | second arrivals | in the crash window "
            "| unexpected | history not delivered |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *(
                f"| {name} | {c.expected} | {c.receipts} | {c.delivered} | {c.lost} | {c.duplicates} "
                f"| {c.crash_window} | {c.unexpected} | {c.not_recorded} |"
                for name, c in o.channels.items()
            ),
            "",
        ]
        if o.timeline.notes:
            lines += [f"- +{at - o.started:.1f} s: {text}" for at, text in o.timeline.notes]
            lines.append("")
        lines += [
            "The checker (bench.invariants) on the state and the arrivals; its delivery lines count every "
            "second arrival, the table above says which are the crash window's:"
            if any(c.duplicates for c in o.channels.values())
            else "The checker (bench.invariants) on the state and the arrivals:",
            "",
            invariants_table(o.verdicts),
        ]
    return "\n".join(lines) + "\n"


def short_fault(outcome: Outcome) -> str:
    return outcome.fault.split(":")[0]


def ms(value: float) -> str:
    return f"{value * 1000:.0f}"


def summary(outcomes: list[Outcome]) -> str:
    """The figures in a paragraph, as the README quotes them."""
    parts = []
    for o in outcomes:
        c = list(o.channels.values())
        twice = sum(x.duplicates for x in c)
        parts.append(
            f"{short_fault(o)}: {sum(x.delivered for x in c)}/{sum(x.expected for x in c)} deliveries, "
            f"{sum(x.lost for x in c)} lost, {twice} second arrivals"
            + (f" ({sum(x.crash_window for x in c)} in the crash window)" if twice else "")
            + f", {o.server_errors} API 5xx, recovered {seconds(o.recover_seconds)} after the fault"
        )
    verdict = (
        "Every scenario kept every promise"
        if all(o.ok for o in outcomes)
        else "NOT every scenario kept every promise (see below)"
    )
    return f"{verdict}: " + "; ".join(parts) + "."


# -- main ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    fault: str
    inject: Injector
    rate: float | None  # promotions per second; None: as fast as the API answers
    latency_ms: float = 0.0  # of the moto server


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    schedule = kill_schedule(args.kills, args.seed)
    return {
        "broker": Scenario("broker closes every connection of the virtual host, 3 times", broker_closes(), args.rate),
        "kill": Scenario(
            f"{len(schedule)} SIGKILLs of relay/pollers at seeded random points (seed {args.seed}): "
            + "; ".join(str(k) for k in schedule),
            random_kills(schedule),
            args.rate,
        ),
        "outage": Scenario(
            f"SMTP server and webhook receiver down {args.outage:g} s", receivers_down(args.outage), args.rate
        ),
        # Unpaced: the burst goes as fast as the slowed API lets it.
        "slow": Scenario(
            f"moto server {args.latency_ms:g} ms late on every request", no_injection, None, args.latency_ms
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", type=int, default=150, help="promotions per scenario (default 150)")
    parser.add_argument("--rate", type=float, default=10.0, help="promotions per second in the burst")
    parser.add_argument("--seed", type=int, default=8, help="seed of the kill schedule")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs in the kill scenario")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the receivers stay down")
    parser.add_argument("--latency-ms", type=float, default=75.0, help="moto latency in the slow scenario")
    parser.add_argument("--only", default="broker,kill,outage,slow", help="scenarios to run, comma-separated")
    parser.add_argument("--settle", type=float, default=240.0, help="longest wait for the deliveries")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    if not (5 <= args.promotions <= 200 and 0 <= args.kills <= 20 and 0 < args.outage <= 40):
        parser.error("keep 5 <= --promotions <= 200, 0 <= --kills <= 20, 0 < --outage <= 40")
    if not (0 <= args.latency_ms <= 500 and 0 < args.settle <= 900 and 0.5 <= args.rate <= 100):
        parser.error("keep 0 <= --latency-ms <= 500, 0 < --settle <= 900 and 0.5 <= --rate <= 100")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for noisy in ("mail.log", "pika", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    mailbox, receiver = Mailbox(), Receiver()
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    dynamodb_port = free_port()
    endpoint = f"http://127.0.0.1:{dynamodb_port}"
    os.environ.update(
        FAULTS_ENV,
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        AWS_ENDPOINT_URL_DYNAMODB_STREAMS=endpoint,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox.port),
    )
    from chalicelib.config import get_settings

    settings = get_settings()
    known = scenarios(args)
    unknown = [s for s in chosen if s not in known]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(known)})")
    ensure_vhost(settings.amqp_url)
    stack = Stack(dict(os.environ), dynamodb_port, free_port())
    rig = Rig(f"http://127.0.0.1:{stack.api_port}", settings.amqp_url, settings.jwt_secret, mailbox, receiver, {})
    outcomes: list[Outcome] = []
    started = time.time()
    try:
        mailbox.start()
        receiver.start()
        for name in chosen:
            scenario = known[name]
            print(f"{name}: resetting the stack (moto latency {scenario.latency_ms:g} ms)", file=sys.stderr)
            stack.reset(scenario.latency_ms)
            rig.workers = stack.workers
            plan = Plan.make(args.promotions, scenario.rate)
            outcome = run_scenario(rig, name, scenario.fault, plan, scenario.inject, args.settle)
            outcomes.append(outcome)
            print(f"{name}: {'ok' if outcome.ok else 'FAILED'}", file=sys.stderr)
    finally:
        stack.stop()
        mailbox.stop()
        receiver.stop()
        bootstrap.clear_redis()

    text = report(outcomes, args, started)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"saved to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    if not all(o.ok for o in outcomes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
