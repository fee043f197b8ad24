"""The sample-data bootstrap (`python -m infra.bootstrap`, as `make bootstrap` and the
Procfile run it) is idempotent and resets: whatever happened since, a second run leaves
every table, every Redis key and every queue as the first run left them, within the
issue's 30 seconds."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable

import httpx
import pika

from chalicelib.adapters import topology
from chalicelib.adapters.passwords import Argon2Hasher
from chalicelib.config import get_settings
from infra import sample_data
from tests.integration.conftest import Stack
from tests.support.broker import depth
from tests.support.processes import ROOT, python
from tests.support.responses import ok
from tests.support.state import changes, snapshot

LIMIT_SECONDS = 30
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
ARGON2ID = re.compile(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


def run_bootstrap(stack: Stack) -> float:
    """One run in a process of its own, as a user starts it; its duration in seconds."""
    started = time.monotonic()
    done = subprocess.run(
        python("-m", "infra.bootstrap"), cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return elapsed


def regenerated(state: dict) -> dict:
    """The snapshot with the values each run writes anew replaced by their shape, after
    checking that shape:

    - the login items' password hashes: each run hashes "titan" again, and Argon2 draws a
      new random salt for every hash, so the same password gives another string;
    - the enrollment items' `updated_at`: the time the run wrote them.
    """
    settings = get_settings()
    hashes: set[str] = set()
    tables = {}
    for table, items in state["dynamodb"].items():
        kept = []
        for text in items:
            item = json.loads(text)
            if table == settings.users_table and "password_hash" in item:
                password_hash = item["password_hash"]["S"]
                assert ARGON2ID.fullmatch(password_hash), item
                hashes.add(password_hash)
                item["password_hash"] = {"S": "<argon2id hash>"}
            if table == settings.enrollments_table:
                assert TIMESTAMP.fullmatch(item["updated_at"]["S"]), item
                item["updated_at"] = {"S": "<timestamp>"}
            kept.append(json.dumps(item, sort_keys=True))
        tables[table] = sorted(kept)
    hasher = Argon2Hasher()
    assert hashes and all(hasher.verify(h, sample_data.DEMO_PASSWORD) for h in hashes)
    return {"dynamodb": tables, "redis": state["redis"]}


def publish_event(amqp_url: str) -> None:
    """A notification on the exchange, as the relay publishes it (no poller runs here)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id="e-reset")
        channel.basic_publish(topology.EXCHANGE, "", b'{"event_id":"e-reset"}', properties, mandatory=True)
    finally:
        connection.close()


def change_everything(api: Callable[..., httpx.Response]) -> None:
    """Every kind of state the API writes, on the sample data."""
    ok(api("student100", "POST", "/students/100/classes/1/enroll"), 201)
    ok(api("student101", "POST", "/students/101/classes/4/enroll"), 202)  # class 4 is full: waitlisted
    subscription = {"email": "student79@example.edu", "webhook_url": "https://93.184.216.34/hooks/79"}
    ok(api("student79", "POST", "/students/79/subscribe/4", json=subscription), 201)
    ok(api("student55", "PUT", "/students/55/classes/4/drop"))  # promotes 79: an outbox event
    ok(api("student1", "DELETE", "/waitlist/students/1/classes/13"))
    new_class = {
        "department": "CPSC",
        "course_code": "499",
        "section": 3,
        "name": "Reset Me",
        "instructor_id": 501,
        "max_enroll": 5,
    }
    ok(api("registrar551", "POST", "/registrar/classes", json=new_class), 201)
    ok(api("registrar551", "PATCH", "/registrar/classes/2", json={"max_enroll": 40}))
    ok(
        api(
            "registrar551",
            "POST",
            "/registrar/users",
            json={"username": "temp_prof", "password": "lecture-hall", "role": "instructor"},
        ),
        201,
    )
    ok(api("registrar551", "PUT", "/registrar/automatic-enrollment/freeze", json={"frozen": True}))
    assert api(None, "POST", "/auth/login", json={"username": "student2", "password": "wrong"}).status_code == 401


def test_a_second_bootstrap_resets_everything_to_what_the_first_left(stack: Stack, api) -> None:
    settings = get_settings()
    queues = [topology.queue(channel) for channel in topology.CHANNELS]
    first_run = run_bootstrap(stack)
    first = snapshot()

    change_everything(api)
    publish_event(settings.amqp_url)

    changed = snapshot()
    touched = {line.split(":")[0] for line in changes(first, changed)}
    assert {
        settings.classes_table,
        settings.enrollments_table,
        settings.users_table,
        settings.settings_table,
        settings.outbox_table,
    } <= touched, touched
    assert any(line.startswith("redis ") for line in changes(first, changed))
    assert all(depth(settings.amqp_url, queue) == 1 for queue in queues)

    second_run = run_bootstrap(stack)
    second = snapshot()

    assert changes(regenerated(first), regenerated(second)) == []
    assert [depth(settings.amqp_url, queue) for queue in queues] == [0] * len(queues)
    assert first_run < LIMIT_SECONDS and second_run < LIMIT_SECONDS, (first_run, second_run)
