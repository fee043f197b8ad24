"""The promises of ARCHITECTURE.md, checked against the stored state after a load run.

    python -m bench.invariants [--ledger test-artifacts/load/ledger.json]

Reads the stack named by the environment (TABLE_PREFIX, REDIS_URL, AWS_ENDPOINT_URL_DYNAMODB),
scanning whole tables: this is a checker, not a request path. Without a ledger it checks the
state alone (capacity, waitlist limits, counts, enrolled-and-waitlisted, outbox drained, no
promotion event repeated). With the ledger written by `bench.load` (every request's outcome
and time window, the sample data's enrollments, the receipts of the SMTP server and the
webhook receiver) it also accounts for every promotion and every delivery. Exits 1 when an
invariant is broken.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROMOTED = "enrollment.promoted"
ENROLL, DROP, INSTRUCTOR_DROP = "enroll", "drop", "instructor: drop"
# Requests whose answer does not list the promotions they may make: an enroll that finds a
# seat opened while it joined the waitlist, and a drop that is refused (409) but still
# fills seats left open by an interrupted promotion (chalicelib/domain/enrollment.py).
UNLISTED_PROMOTERS = (ENROLL, DROP, INSTRUCTOR_DROP)
# Shown per broken invariant, so that a report stays readable.
EXAMPLES = 5


@dataclass(frozen=True)
class Call:
    """One request of the load, as the client saw it. status 0: no answer (transport error)."""

    operation: str
    student_id: int | None
    class_id: int | None
    status: int
    started: float
    ended: float
    promoted: tuple[tuple[int, int], ...] = ()

    @classmethod
    def load(cls, data: dict) -> Call:
        return cls(**{**data, "promoted": tuple(tuple(p) for p in data.get("promoted", ()))})

    @property
    def known(self) -> bool:
        """The outcome is known: an answer below 500."""
        return 0 < self.status < 500


@dataclass
class Ledger:
    """What the load did and saw, for the checks that compare it with the state."""

    calls: list[Call]
    initial_enrolled: dict[int, set[int]]
    mail_receipts: Counter[str]
    webhook_receipts: Counter[str]
    bad_signatures: int = 0

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "calls": [asdict(c) for c in self.calls],
            "initial_enrolled": {str(c): sorted(s) for c, s in self.initial_enrolled.items()},
            "mail_receipts": dict(self.mail_receipts),
            "webhook_receipts": dict(self.webhook_receipts),
            "bad_signatures": self.bad_signatures,
        }
        path.write_text(json.dumps(data))

    @classmethod
    def read(cls, path: Path) -> Ledger:
        data = json.loads(path.read_text())
        return cls(
            calls=[Call.load(c) for c in data["calls"]],
            initial_enrolled={int(c): set(s) for c, s in data["initial_enrolled"].items()},
            mail_receipts=Counter(data["mail_receipts"]),
            webhook_receipts=Counter(data["webhook_receipts"]),
            bad_signatures=data.get("bad_signatures", 0),
        )


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str
    student_id: int
    class_id: int
    created: float
    published: bool
    email: bool
    webhook: bool
    deliveries: dict = field(hash=False, compare=False)


@dataclass
class Snapshot:
    """Everything the checks read, taken once."""

    capacity: dict[int, int]
    enrolled_count: dict[int, int]
    enrolled: dict[int, set[int]]
    waitlists: dict[int, list[int]]
    student_index: dict[int, set[int]]
    events: list[Event]

    @classmethod
    def take(cls) -> Snapshot:
        from chalicelib.adapters import aws, redis_keys
        from chalicelib.adapters.redis_client import connect
        from chalicelib.config import get_settings

        settings = get_settings()
        client = aws.client("dynamodb")
        redis = connect()
        capacity, counts = {}, {}
        for item in _scan(client, settings.classes_table):
            capacity[int(item["class_id"])] = int(item["max_enroll"])
            counts[int(item["class_id"])] = int(item.get("enrolled_count", 0))
        enrolled: dict[int, set[int]] = defaultdict(set)
        for item in _scan(client, settings.enrollments_table):
            if item["state"] == "enrolled":
                enrolled[int(item["class_id"])].add(int(item["student_id"]))
        waitlists = {
            _key_id(key): [int(s) for s in redis.zrange(key, 0, -1)]
            for key in redis.scan_iter(match=redis_keys.class_waitlist("*"), count=1000)
        }
        index = {
            _key_id(key): {int(c) for c in redis.zrange(key, 0, -1)}
            for key in redis.scan_iter(match=redis_keys.student_waitlists("*"), count=1000)
        }
        outcomes: dict[str, dict] = {}
        for row in _scan(client, settings.deliveries_table):
            outcomes.setdefault(row["event_id"], {})[row["channel"]] = row
        events = [_event(item, outcomes.get(item["event_id"], {})) for item in _scan(client, settings.outbox_table)]
        return cls(capacity, counts, dict(enrolled), waitlists, index, events)


def _scan(client: Any, table: str) -> Iterator[dict]:
    from chalicelib.adapters.dynamodb import deserialize

    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = client.scan(**kwargs)
        yield from (deserialize(i) for i in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _key_id(key: str) -> int:
    return int(key.split(":")[1])


def _event(item: dict, deliveries: dict) -> Event:
    body = json.loads(item["body"])
    return Event(
        event_id=item["event_id"],
        type=item["type"],
        student_id=int(item["student_id"]),
        class_id=int(item["class_id"]),
        created=epoch(item["created_at"]),
        published="unpublished" not in item,
        email=bool(body.get("email")),
        webhook=bool(body.get("webhook_url")),
        deliveries=deliveries,
    )


def epoch(timestamp: str) -> float:
    """Seconds since the epoch of an API timestamp (UTC, ISO 8601, microseconds, Z)."""
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Verdict:
    name: str
    held: bool | None  # None: could not be decided
    detail: str

    @property
    def label(self) -> str:
        return {True: "holds", False: "**BROKEN**", None: "undecided"}[self.held]


def _examples(items: Iterable[Any]) -> str:
    listed = list(items)
    if not listed:
        return "none"
    shown = ", ".join(str(i) for i in listed[:EXAMPLES])
    return shown + (f" and {len(listed) - EXAMPLES} more" if len(listed) > EXAMPLES else "")


def _verdict(name: str, broken: list, fine: str, what: str) -> Verdict:
    if broken:
        return Verdict(name, False, f"{len(broken)} {what}: {_examples(broken)}")
    return Verdict(name, True, fine)


# -- state alone --------------------------------------------------------------------------


def capacity(s: Snapshot) -> Verdict:
    over = [f"class {c}: {s.enrolled_count[c]}/{m}" for c, m in sorted(s.capacity.items()) if s.enrolled_count[c] > m]
    full = sum(1 for c, m in s.capacity.items() if s.enrolled_count[c] == m)
    return _verdict(
        "no class over capacity", over, f"{len(s.capacity)} classes, {full} exactly full", "classes over capacity"
    )


def waitlist_length(s: Snapshot, limit: int) -> Verdict:
    over = [f"class {c}: {len(w)}" for c, w in sorted(s.waitlists.items()) if len(w) > limit]
    longest = max((len(w) for w in s.waitlists.values()), default=0)
    return _verdict(
        f"no waitlist over {limit}", over, f"{len(s.waitlists)} waitlists, longest {longest}", "waitlists too long"
    )


def waitlists_per_student(s: Snapshot, limit: int) -> Verdict:
    member: dict[int, set[int]] = defaultdict(set)
    for class_id, students in s.waitlists.items():
        for student_id in students:
            member[student_id].add(class_id)
    over = [f"student {st}: {len(cs)}" for st, cs in sorted(member.items()) if len(cs) > limit]
    # The per-student index is what the limit is enforced on: it must agree with the lists.
    disagree = [
        f"student {st}"
        for st in sorted(set(member) | set(s.student_index))
        if member.get(st, set()) != s.student_index.get(st, set())
    ]
    at_limit = sum(1 for cs in member.values() if len(cs) == limit)
    return _verdict(
        f"no student on more than {limit} waitlists",
        over + [f"{d}: index differs from the waitlists" for d in disagree],
        f"{len(member)} students waiting, {at_limit} on {limit}; student index agrees",
        "violations",
    )


def counts_match_records(s: Snapshot) -> Verdict:
    wrong = [
        f"class {c}: count {n}, records {len(s.enrolled.get(c, ()))}"
        for c, n in sorted(s.enrolled_count.items())
        if n != len(s.enrolled.get(c, ()))
    ]
    stray = [f"class {c}: records but no class" for c in sorted(set(s.enrolled) - set(s.enrolled_count))]
    total = sum(s.enrolled_count.values())
    return _verdict(
        "enrolled_count = 'enrolled' records",
        wrong + stray,
        f"{total} enrolled in all, every class agrees",
        "mismatches",
    )


def enrolled_and_waitlisted(s: Snapshot) -> Verdict:
    both = [
        f"student {st} in class {c}"
        for c, students in sorted(s.waitlists.items())
        for st in students
        if st in s.enrolled.get(c, set())
    ]
    return _verdict("nobody enrolled and waitlisted in a class", both, "none", "students in both")


def outbox_drained(s: Snapshot) -> Verdict:
    left = [e.event_id for e in s.events if not e.published]
    return _verdict("outbox drained", left, f"{len(s.events)} events, all published", "events unpublished")


def promotion_events_unique(s: Snapshot, ledger: Ledger | None) -> Verdict:
    """A student can be promoted into a class again only after leaving it: at most one
    promotion event per (class, student) more than the drops that student had there."""
    events = Counter((e.class_id, e.student_id) for e in s.events if e.type == PROMOTED)
    if ledger is None:
        return Verdict("promotion events not repeated", None, f"{sum(events.values())} events; needs the ledger")
    drops = Counter(
        (c.class_id, c.student_id) for c in ledger.calls if c.operation in (DROP, INSTRUCTOR_DROP) and c.status == 200
    )
    undecided = {
        (c.class_id, c.student_id) for c in ledger.calls if c.operation in (DROP, INSTRUCTOR_DROP) and not c.known
    }
    too_many = [
        f"class {c} student {st}: {n} events, {drops[(c, st)]} drops"
        for (c, st), n in sorted(events.items())
        if (c, st) not in undecided and n > drops[(c, st)] + (0 if st in ledger.initial_enrolled.get(c, set()) else 1)
    ]
    return _verdict(
        "promotion events not repeated",
        too_many,
        f"{sum(events.values())} events over {len(events)} (class, student) pairs, none more than the drops allow",
        "pairs with more events than promotions possible",
    )


# -- state against the ledger -------------------------------------------------------------


def promotions_have_events(s: Snapshot, ledger: Ledger) -> Verdict:
    """Each promotion listed by a drop answer has its own event, written during that request;
    each other promotion event was written during a request that may promote unlisted."""
    slack = 0.002  # timestamps are microseconds on both sides; allow for rounding
    by_pair: dict[tuple[int, int], list[Event]] = defaultdict(list)
    for event in sorted((e for e in s.events if e.type == PROMOTED), key=lambda e: e.created):
        by_pair[(event.class_id, event.student_id)].append(event)
    matched: set[str] = set()
    lost = []
    listed = 0
    for call in ledger.calls:
        if call.operation not in (DROP, INSTRUCTOR_DROP) or call.status != 200:
            continue
        for class_id, student_id in call.promoted:
            listed += 1
            found = next(
                (
                    e
                    for e in by_pair[(class_id, student_id)]
                    if e.event_id not in matched and call.started - slack <= e.created <= call.ended + slack
                ),
                None,
            )
            if found is None:
                lost.append(f"class {class_id} student {student_id}")
            else:
                matched.add(found.event_id)
    windows: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for call in ledger.calls:
        # A successful drop lists every promotion it made; only the others may hide one.
        listing = call.operation in (DROP, INSTRUCTOR_DROP) and call.status == 200
        if call.operation in UNLISTED_PROMOTERS and call.class_id is not None and not listing:
            windows[call.class_id].append((call.started - slack, call.ended + slack))
    unexplained = [
        f"{e.event_id} (class {e.class_id} student {e.student_id})"
        for pair in by_pair.values()
        for e in pair
        if e.event_id not in matched and not any(a <= e.created <= b for a, b in windows[e.class_id])
    ]
    total = sum(len(p) for p in by_pair.values())
    if lost or unexplained:
        return Verdict(
            "every promotion has exactly one event",
            False,
            f"{len(lost)} listed promotions without an event ({_examples(lost)}); "
            f"{len(unexplained)} events outside any request that could promote ({_examples(unexplained)})",
        )
    return Verdict(
        "every promotion has exactly one event",
        True,
        f"{listed} promotions listed by drop answers, each matched to its own event; "
        f"{total - listed} more events written during enroll requests or refused drops, "
        f"which promote without listing; {total} `enrollment.promoted` events in all",
    )


def enrollments_accounted(s: Snapshot, ledger: Ledger) -> Verdict:
    """For each (class, student): enrolled at the start + enroll answers 201 that took an
    open seat + promotion events - successful drops = enrolled at the end (0 or 1). A 201
    whose request window holds that student's promotion event in the class was the promotion."""
    events: dict[tuple[int, int], list[float]] = defaultdict(list)
    for e in s.events:
        if e.type == PROMOTED:
            events[(e.class_id, e.student_id)].append(e.created)
    balance: Counter[tuple[int, int]] = Counter()
    undecided: set[tuple[int, int]] = set()
    for class_id, students in ledger.initial_enrolled.items():
        for student_id in students:
            balance[(class_id, student_id)] += 1
    for pair, created in events.items():
        balance[pair] += len(created)
    for call in ledger.calls:
        pair = (call.class_id, call.student_id)
        if call.operation not in (ENROLL, DROP, INSTRUCTOR_DROP) or call.student_id is None:
            continue
        if not call.known:
            undecided.add(pair)
        elif call.operation == ENROLL and call.status == 201:
            promoted_here = any(call.started - 0.002 <= t <= call.ended + 0.002 for t in events.get(pair, ()))
            balance[pair] += 0 if promoted_here else 1
        elif call.operation != ENROLL and call.status == 200:
            balance[pair] -= 1
    final = {(c, st) for c, students in s.enrolled.items() for st in students}
    wrong = [
        f"class {c} student {st}: expected {balance[(c, st)]}, found {int((c, st) in final)}"
        for c, st in sorted(set(balance) | final)
        if (c, st) not in undecided and balance[(c, st)] != int((c, st) in final)
    ]
    verdict = _verdict(
        "every enrollment accounted for",
        wrong,
        f"{len(final)} enrollments at the end = start + open-seat enrolls + promotions - drops, per student",
        "(class, student) pairs off",
    )
    if undecided and verdict.held:
        return Verdict(verdict.name, None, f"{verdict.detail}; {len(undecided)} pairs undecided (no answer or 5xx)")
    return verdict


def delivered_once(s: Snapshot, ledger: Ledger) -> list[Verdict]:
    verdicts = []
    for channel, receipts, wanted in (
        ("email", ledger.mail_receipts, lambda e: e.email),
        ("webhook", ledger.webhook_receipts, lambda e: e.webhook),
    ):
        expected = {e.event_id for e in s.events if wanted(e)}
        lost = sorted(i for i in expected if receipts[i] == 0)
        twice = sorted(f"{i} x{receipts[i]}" for i in expected if receipts[i] > 1)
        unknown = sorted(i for i in receipts if i not in expected)
        not_done = sorted(
            f"{e.event_id}: {(e.deliveries.get(channel) or {}).get('status')}"
            for e in s.events
            if wanted(e) and (e.deliveries.get(channel) or {}).get("status") != "delivered"
        )
        problems = [f"lost {i}" for i in lost] + [f"twice {i}" for i in twice] + [f"unexpected {i}" for i in unknown]
        problems += [f"history {i}" for i in not_done]
        if channel == "webhook" and ledger.bad_signatures:
            problems.append(f"{ledger.bad_signatures} receipts with an invalid signature")
        verdicts.append(
            _verdict(
                f"every event delivered once by {channel}",
                problems,
                f"{len(expected)} events for {channel}, {sum(receipts.values())} receipts, each once; "
                "delivery history says delivered",
                f"problems ({len(lost)} lost, {len(twice)} duplicated, {len(unknown)} unexpected, "
                f"{len(not_done)} not recorded delivered)",
            )
        )
    return verdicts


def check(
    ledger: Ledger | None,
    waitlist_limit: int = 15,
    student_limit: int = 3,
    snapshot: Snapshot | None = None,
) -> list[Verdict]:
    snapshot = snapshot or Snapshot.take()
    verdicts = [
        capacity(snapshot),
        waitlist_length(snapshot, waitlist_limit),
        waitlists_per_student(snapshot, student_limit),
        counts_match_records(snapshot),
        enrolled_and_waitlisted(snapshot),
        outbox_drained(snapshot),
        promotion_events_unique(snapshot, ledger),
    ]
    if ledger is not None:
        verdicts += [
            promotions_have_events(snapshot, ledger),
            enrollments_accounted(snapshot, ledger),
            *delivered_once(snapshot, ledger),
        ]
    return verdicts


def table(verdicts: list[Verdict]) -> str:
    rows = [f"| {v.name} | {v.label} | {v.detail} |" for v in verdicts]
    return "\n".join(["| invariant | result | detail |", "| --- | --- | --- |", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=Path, help="the ledger bench.load saved (promotion and delivery checks)")
    args = parser.parse_args()
    from chalicelib.config import get_settings

    settings = get_settings()
    verdicts = check(
        Ledger.read(args.ledger) if args.ledger else None,
        settings.waitlist_capacity,
        settings.max_waitlists_per_student,
    )
    print(table(verdicts))
    if any(v.held is False for v in verdicts):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
