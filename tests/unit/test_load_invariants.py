"""The load benchmark's invariant checker finds each kind of broken promise (bench/invariants.py)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from bench import invariants
from bench.invariants import DROP, ENROLL, PROMOTED, Call, Event, Ledger, Snapshot

DELIVERED = {"email": {"status": "delivered"}, "webhook": {"status": "delivered"}}


def event(event_id: str, student_id: int, created: float, **changes) -> Event:
    fields = dict(
        event_id=event_id,
        type=PROMOTED,
        student_id=student_id,
        class_id=1,
        created=created,
        published=True,
        email=True,
        webhook=True,
        deliveries=DELIVERED,
    )
    return Event(**{**fields, **changes})


def world() -> tuple[Snapshot, Ledger]:
    """Class 1 (2 seats) holds 10 and 11; 10 drops and 20 is promoted; 30 enrolls while a seat
    is open and is promoted inside that request; 40 waits."""
    snapshot = Snapshot(
        capacity={1: 2, 2: 5},
        enrolled_count={1: 2, 2: 0},
        enrolled={1: {11, 20}},
        waitlists={1: [40]},
        student_index={40: {1}},
        events=[event("e1", 20, 100.5)],
    )
    ledger = Ledger(
        calls=[
            Call(DROP, 10, 1, 200, 100.0, 101.0, ((1, 20),)),
            Call(DROP, 11, 1, 200, 102.0, 103.0),
            Call(ENROLL, 30, 1, 201, 104.0, 105.0),
            Call(ENROLL, 40, 1, 202, 104.0, 105.0),
        ],
        initial_enrolled={1: {10, 11}},
        mail_receipts=Counter({"e1": 1, "e2": 1}),
        webhook_receipts=Counter({"e1": 1, "e2": 1}),
    )
    # 11's drop opened a seat that 30's enroll filled by promoting 30.
    snapshot.events.append(event("e2", 30, 104.5))
    snapshot.enrolled[1] = {20, 30}
    return snapshot, ledger


def verdicts(snapshot: Snapshot, ledger: Ledger) -> dict[str, invariants.Verdict]:
    found = invariants.check(ledger, 15, 3, snapshot)
    return {v.name: v for v in found}


def broken(snapshot: Snapshot, ledger: Ledger) -> set[str]:
    return {name for name, v in verdicts(snapshot, ledger).items() if v.held is not True}


def test_a_consistent_run_holds_everywhere() -> None:
    snapshot, ledger = world()
    assert broken(snapshot, ledger) == set()


@pytest.mark.parametrize(
    ("change", "invariant"),
    [
        (lambda s: s.enrolled_count.update({2: 6}), "no class over capacity"),
        (lambda s: s.waitlists.update({2: list(range(100, 116))}), "no waitlist over 15"),
        (
            lambda s: (
                s.waitlists.update({2: [40], 3: [40], 4: [40]}),
                s.student_index.update({40: {1, 2, 3, 4}}),
            ),
            "no student on more than 3 waitlists",
        ),
        (lambda s: s.student_index.update({40: set()}), "no student on more than 3 waitlists"),
        (lambda s: s.enrolled_count.update({1: 1}), "enrolled_count = 'enrolled' records"),
        (lambda s: s.waitlists[1].append(20), "nobody enrolled and waitlisted in a class"),
        (lambda s: s.events.__setitem__(0, dataclasses.replace(s.events[0], published=False)), "outbox drained"),
    ],
)
def test_each_state_invariant_catches_its_break(change, invariant: str) -> None:
    snapshot, ledger = world()
    change(snapshot)
    assert invariant in broken(snapshot, ledger)


def test_a_listed_promotion_without_its_event_is_caught() -> None:
    snapshot, ledger = world()
    snapshot.events = [e for e in snapshot.events if e.event_id != "e1"]
    assert "every promotion has exactly one event" in broken(snapshot, ledger)


def test_an_event_outside_any_promoting_request_is_caught() -> None:
    snapshot, ledger = world()
    snapshot.events[1] = dataclasses.replace(snapshot.events[1], created=200.0)
    assert "every promotion has exactly one event" in broken(snapshot, ledger)


def test_a_second_event_for_one_promotion_is_caught() -> None:
    snapshot, ledger = world()
    snapshot.events.append(event("e3", 20, 100.6))
    ledger.mail_receipts["e3"] = ledger.webhook_receipts["e3"] = 1
    found = broken(snapshot, ledger)
    assert {"promotion events not repeated", "every enrollment accounted for"} <= found


def test_an_enrollment_without_a_cause_is_caught() -> None:
    snapshot, ledger = world()
    snapshot.enrolled[1].add(50)
    snapshot.enrolled_count[1] = 3
    snapshot.capacity[1] = 3
    assert broken(snapshot, ledger) == {"every enrollment accounted for"}


def test_an_open_seat_enroll_counts_as_an_enrollment() -> None:
    snapshot, ledger = world()
    ledger.calls.append(Call(ENROLL, 50, 2, 201, 106.0, 107.0))
    snapshot.enrolled[2] = {50}
    snapshot.enrolled_count[2] = 1
    assert broken(snapshot, ledger) == set()


@pytest.mark.parametrize(
    ("receipts", "channel"),
    [
        ({"e1": 0, "e2": 1}, "email"),
        ({"e1": 2, "e2": 1}, "email"),
        ({"e1": 1, "e2": 1, "stray": 1}, "webhook"),
    ],
)
def test_deliveries_lost_repeated_or_unexpected_are_caught(receipts: dict, channel: str) -> None:
    snapshot, ledger = world()
    setattr(ledger, f"{'mail' if channel == 'email' else 'webhook'}_receipts", Counter(receipts))
    assert broken(snapshot, ledger) == {f"every event delivered once by {channel}"}


def test_a_delivery_the_history_does_not_record_is_caught() -> None:
    snapshot, ledger = world()
    snapshot.events[0] = dataclasses.replace(
        snapshot.events[0], deliveries={**DELIVERED, "webhook": {"status": "retrying"}}
    )
    assert broken(snapshot, ledger) == {"every event delivered once by webhook"}


def test_unanswered_requests_leave_the_accounting_undecided() -> None:
    snapshot, ledger = world()
    ledger.calls.append(Call(ENROLL, 60, 2, 0, 106.0, 107.0))
    assert verdicts(snapshot, ledger)["every enrollment accounted for"].held is None


def test_the_ledger_survives_a_round_trip(tmp_path) -> None:
    _, ledger = world()
    ledger.save(tmp_path / "ledger.json")
    again = Ledger.read(tmp_path / "ledger.json")
    assert again.calls == ledger.calls
    assert again.initial_enrolled == ledger.initial_enrolled
    assert again.mail_receipts == ledger.mail_receipts
