"""Issue 8, faults end to end: a burst of promotions made through the API while the broker
closes every connection of the test's virtual host, the relay and the pollers are killed
with SIGKILL, the SMTP server and the webhook receiver are down, or DynamoDB answers
slowly; afterwards every event has reached each channel exactly once. These are the
scenarios of `python -m bench.faults`, smaller; its figures are in bench/results/faults.md."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from bench import faults
from tests.e2e.conftest import E2E
from tests.support.processes import Process, python, wait_for_port

PROMOTIONS = 30
RATE = 10.0  # promotions per second: the burst lasts 3 s
SETTLE_SECONDS = 120

pytestmark = [
    pytest.mark.slow,
    # The tests start the pollers themselves, on their own SMTP server.
    pytest.mark.pollers(email=0, webhook=0),
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl"),
]


@pytest.fixture
def receivers() -> Iterator[tuple[faults.Mailbox, faults.Receiver]]:
    """An SMTP server and a webhook receiver that count arrivals per event id and can go down."""
    mailbox, receiver = faults.Mailbox(), faults.Receiver()
    mailbox.start()
    receiver.start()
    yield mailbox, receiver
    mailbox.stop()
    receiver.stop()


def start_pollers(e2e: E2E, mailbox: faults.Mailbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, Process]:
    monkeypatch.setitem(e2e.env, "SMTP_PORT", str(mailbox.port))
    # The test's delay queues are short (0.2 s, 0.4 s): enough attempts to outlast an
    # outage of a few seconds.
    monkeypatch.setitem(e2e.env, "MAX_ATTEMPTS", "40")
    (email,) = e2e.start_pollers("email")
    (webhook,) = e2e.start_pollers("webhook")
    assert e2e.relay is not None
    return {"relay": e2e.relay, "email poller": email, "webhook poller": webhook}


@pytest.fixture
def rig(e2e: E2E, receivers: tuple[faults.Mailbox, faults.Receiver], monkeypatch: pytest.MonkeyPatch) -> faults.Rig:
    mailbox, receiver = receivers
    workers = start_pollers(e2e, mailbox, monkeypatch)
    return faults.Rig(e2e.stack.url, e2e.settings.amqp_url, e2e.settings.jwt_secret, mailbox, receiver, workers)


def run(rig: faults.Rig, name: str, inject: faults.Injector) -> faults.Outcome:
    return faults.run_scenario(rig, name, name, faults.Plan.make(PROMOTIONS, RATE), inject, SETTLE_SECONDS)


def assert_state_held(outcome: faults.Outcome) -> None:
    """Every invariant but the checker's own delivery counts (the channel figures say more)."""
    broken = [v for v in outcome.verdicts if v.held is False and not v.name.startswith(faults.DELIVERED_ONCE)]
    assert broken == []
    assert outcome.server_errors == 0
    assert outcome.dead_letters == 0
    assert outcome.drained
    assert outcome.bad_signatures == 0


def assert_exactly_once(outcome: faults.Outcome) -> None:
    assert outcome.promotions == PROMOTIONS
    for channel, figures in outcome.channels.items():
        assert (channel, figures.expected, figures.delivered) == (channel, PROMOTIONS, PROMOTIONS)
        assert (channel, figures.duplicates, figures.lost, figures.unexpected) == (channel, 0, 0, 0)
        assert (channel, figures.not_recorded) == (channel, 0)
    assert [v for v in outcome.verdicts if v.held is False] == []
    assert_state_held(outcome)


def test_the_broker_closing_every_connection_during_a_burst_loses_and_repeats_nothing(rig: faults.Rig):
    outcome = run(rig, "broker", faults.broker_closes((0.3, 0.7)))

    closures = [text for _, text in outcome.timeline.notes if text.startswith("broker closed")]
    assert len(closures) == 2 and all(" 0 connections" not in text for text in closures)
    assert_exactly_once(outcome)


def test_relay_and_pollers_killed_at_random_points_deliver_every_event(rig: faults.Rig):
    schedule = faults.kill_schedule(3, seed=8)

    outcome = run(rig, "kill", faults.random_kills(schedule))

    assert len(outcome.timeline.kills) == sum(len(k.victims) for k in schedule)
    for channel, figures in outcome.channels.items():
        assert (channel, figures.delivered, figures.lost, figures.unexpected) == (channel, PROMOTIONS, 0, 0)
        # At-least-once leaves one window: a poller killed after the receiver accepted and
        # before the claim was marked done sends that event again (README, "Known limits").
        assert (channel, figures.duplicates) == (channel, figures.crash_window)
        assert (channel, figures.not_recorded) == (channel, 0)
    assert_state_held(outcome)


def test_smtp_server_and_webhook_receiver_down_for_a_while_get_every_event_once_afterwards(rig: faults.Rig):
    outcome = run(rig, "outage", faults.receivers_down(3.0, share=0.2))

    (stopped, _), (back, _) = outcome.timeline.notes
    assert back - stopped >= 3.0
    for channel, arrivals in (("email", rig.mailbox.arrivals), ("webhook", rig.receiver.arrivals)):
        assert not [at for at, _ in arrivals if stopped < at < back], f"{channel} received while down"
        # Some events waited for the servers: the outage was felt, and retried through.
        assert any(at >= back for at, _ in arrivals), channel
    assert_exactly_once(outcome)


def test_a_slow_dynamodb_answers_every_request_and_loses_nothing(
    e2e: E2E, receivers: tuple[faults.Mailbox, faults.Receiver], monkeypatch: pytest.MonkeyPatch
):
    """The session's moto server is replaced, for this test, by one 50 ms late on every request."""
    stack = e2e.stack
    e2e.stop_all()
    stack.dynamodb.stop()
    slow = Process(
        "dynamodb-slow",
        python("-m", "infra.dynamodb_server", "--port", str(stack.dynamodb_port), "--latency-ms", "50"),
        stack.env,
    ).start()
    try:
        wait_for_port(stack.dynamodb_port)
        stack.reset()
        e2e.start_relay()
        mailbox, receiver = receivers
        workers = start_pollers(e2e, mailbox, monkeypatch)
        rig = faults.Rig(stack.url, e2e.settings.amqp_url, e2e.settings.jwt_secret, mailbox, receiver, workers)

        outcome = run(rig, "slow", faults.no_injection)
    finally:
        e2e.stop_all()
        slow.stop()
        stack.dynamodb.start()
        wait_for_port(stack.dynamodb_port)
        stack.reset()

    assert_exactly_once(outcome)
    assert outcome.statuses == {200: PROMOTIONS, 202: PROMOTIONS}
