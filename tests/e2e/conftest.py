"""End-to-end harness: every process of the stack for real (moto server, `chalice local`,
the relay, email and webhook pollers) on the test's own Redis database and RabbitMQ
virtual host, with an SMTP server (aiosmtpd) and an HTTP receiver running inside the
test process so that the tests can see, script and interrupt what arrives."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import pika
import pytest
from aiosmtpd.controller import Controller

from chalicelib.adapters import topology
from chalicelib.adapters.outbox import DeliveryHistory
from chalicelib.config import get_settings
from tests.integration.conftest import Stack
from tests.support.processes import Process, free_port, python

T = TypeVar("T")

POLLER_WINDOW = "0.1"


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


# -- SMTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def body(self) -> str:
        return self.message.get_body(("plain",)).get_content().strip()


class Mailbox:
    """An aiosmtpd server on a fixed loopback port that can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope) -> str:
        mail = Mail(tuple(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.recipients]

    def clear(self) -> None:
        with self._lock:
            self._mails.clear()


# -- HTTP receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    # What the receiver answered; None when the sender was gone before it could answer.
    status: int | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def event_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class _Gate:
    """Answer the first `answered` requests at once and hold the others until opened."""

    answered: int
    opened: threading.Event = field(default_factory=threading.Event)
    held: int = 0


def _peer_gone(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would
    server: _ReceiverServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver = self.server.receiver
        status = receiver.answer_for(self.path)
        if receiver.must_hold():
            receiver.wait_at_gate()
        if _peer_gone(self.connection):
            # The sender died waiting (a killed poller): this request was not delivered.
            receiver.record(Hit(self.path, _lower(self.headers), body, None))
            self.close_connection = True
            return
        receiver.record(Hit(self.path, _lower(self.headers), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class _ReceiverServer(ThreadingHTTPServer):
    request_queue_size = 256  # a whole batch connects at once
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """Answers each path from its script (a list of statuses; the last one repeats; 200
    when none), records every request, and can hold requests to catch a sender mid-batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[int]] = {}
        self._hits: list[Hit] = []
        self._gate: _Gate | None = None
        self.server = _ReceiverServer(("127.0.0.1", 0), _ReceiverHandler)
        self.server.receiver = self
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def script(self, path: str, *statuses: int) -> str:
        with self._lock:
            self._scripts[path] = list(statuses)
        return self.url(path)

    def answer_for(self, path: str) -> int:
        with self._lock:
            statuses = self._scripts.get(path)
            if not statuses:
                return 200
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    def hold(self, answered: int) -> None:
        with self._lock:
            self._gate = _Gate(answered)

    def must_hold(self) -> bool:
        with self._lock:
            gate = self._gate
            if gate is None or gate.opened.is_set():
                return False
            if gate.answered > 0:
                gate.answered -= 1
                return False
            gate.held += 1
            return True

    def wait_at_gate(self) -> None:
        gate = self._gate
        if gate is not None:
            gate.opened.wait(60)

    @property
    def held(self) -> int:
        with self._lock:
            return self._gate.held if self._gate else 0

    def open_gate(self) -> None:
        with self._lock:
            gate, self._gate = self._gate, None
        if gate is not None:
            gate.opened.set()

    def record(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(hit)

    def hits(self, path: str | None = None) -> list[Hit]:
        with self._lock:
            return [h for h in self._hits if path is None or h.path == path]

    def delivered(self, path: str | None = None) -> list[Hit]:
        return [h for h in self.hits(path) if h.delivered]

    def clear(self) -> None:
        self.open_gate()
        with self._lock:
            self._scripts.clear()
            self._hits.clear()

    def close(self) -> None:
        self.open_gate()
        self.server.shutdown()
        self.server.server_close()


# -- the stack -------------------------------------------------------------------------


class E2E:
    """The integration Stack plus the relay and the pollers, reset between scenarios."""

    def __init__(self, stack: Stack, mailbox: Mailbox, receiver: WebhookReceiver) -> None:
        self.stack = stack
        self.mailbox = mailbox
        self.receiver = receiver
        self.env = {**stack.env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mailbox.port)}
        self.settings = get_settings()
        self.relay: Process | None = None
        self.pollers: list[Process] = []
        self._started = 0

    # processes

    def _process(self, name: str, *args: str) -> Process:
        self._started += 1
        # One log per process and run: readiness is read from the log.
        return Process(f"e2e-{os.getpid()}-{self._started:03d}-{name}", python(*args), self.env)

    def start_relay(self) -> Process:
        process = self._process("relay", "-m", "consumers.relay", "--idle", "0.1").start()
        self.relay = process
        # Its first log line comes once it is built and about to read the outbox.
        wait_until(lambda: _logged(process, " relay INFO "), 30, "the relay to start")
        return process

    def start_pollers(self, channel: str, count: int = 1, *options: str) -> list[Process]:
        """Start `count` pollers on the channel's queue and wait until each consumes."""
        before = self.consumers(channel)
        started = [
            self._process(
                f"{channel}-poller",
                "-m",
                "consumers.rmq_poller",
                "--channel",
                channel,
                "--window",
                POLLER_WINDOW,
                *options,
            ).start()
            for _ in range(count)
        ]
        self.pollers.extend(started)
        wait_until(lambda: self.consumers(channel) >= before + count, 30, f"{count} {channel} poller(s) to consume")
        return started

    def restart(self, process: Process, channel: str) -> Process:
        """Start a poller again with the same arguments (after a crash)."""
        before = self.consumers(channel)
        again = Process(process.name + "-again", process.args, self.env).start()
        self.pollers.append(again)
        wait_until(lambda: self.consumers(channel) >= before + 1, 30, f"the {channel} poller to consume again")
        return again

    def stop_all(self) -> None:
        processes = [p for p in (self.relay, *self.pollers) if p is not None]
        for process in processes:  # all at once, then wait for each
            process.signal(signal.SIGTERM)
        for process in processes:
            process.stop()
        self.relay, self.pollers = None, []

    def reset(self, email_pollers: int = 1, webhook_pollers: int = 1) -> None:
        """Nothing running on stale state: stop everything, restore the sample data, empty
        every queue, start the relay and the pollers afresh."""
        self.stop_all()
        self.stack.reset()
        self.mailbox.stop()
        self.mailbox.start()
        self.mailbox.clear()
        self.receiver.clear()
        self.start_relay()
        if email_pollers:
            self.start_pollers("email", email_pollers)
        if webhook_pollers:
            self.start_pollers("webhook", webhook_pollers)

    # the broker

    def _channel_call(self, call: Callable[[Any], T]) -> T:
        connection = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))
        try:
            return call(connection.channel())
        finally:
            connection.close()

    def consumers(self, channel: str) -> int:
        return self._channel_call(
            lambda c: c.queue_declare(topology.queue(channel), passive=True).method.consumer_count
        )

    def ready(self, queue: str) -> int:
        return self._channel_call(lambda c: c.queue_declare(queue, passive=True).method.message_count)

    def drain(self, queue: str) -> list[tuple[Any, bytes]]:
        def take(channel: Any) -> list[tuple[Any, bytes]]:
            taken = []
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append((properties, body))

        return self._channel_call(take)

    def publish(self, bodies: list[bytes]) -> None:
        """Publish event bodies to the exchange as the relay does (a relay publishing twice)."""

        def send(channel: Any) -> None:
            channel.confirm_delivery()
            for body in bodies:
                event_id = json.loads(body)["event_id"]
                properties = pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=2,
                    message_id=event_id,
                    headers={"x-message-id": event_id},
                )
                channel.basic_publish(topology.EXCHANGE, "", body, properties, mandatory=True)

        self._channel_call(send)

    def settled(self) -> bool:
        """No message in flight: none in a channel queue or a delay queue, handed to a poller
        or not (dead letters stay where they are)."""
        dead = {topology.dead_letter_queue(c) for c in topology.CHANNELS}
        live = [q for q in topology.queues(self.settings.retry_delays) if q not in dead]
        vhost = unquote(urlparse(self.settings.amqp_url).path[1:]) or "/"
        if shutil.which("rabbitmqctl") is None:
            return all(self.ready(q) == 0 for q in live)
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages", "--no-table-headers"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        counts = dict(line.split() for line in listed.splitlines() if line.strip())
        return all(int(counts.get(q, 0)) == 0 for q in live)

    # the API and the outbox

    def client(self, username: str | None = None):
        return self.stack.client(username)

    def subscribe(
        self,
        student_id: int,
        class_id: int,
        email: str | None = None,
        webhook_url: str | None = None,
        events: list[str] | None = None,
    ) -> dict:
        body: dict[str, Any] = {"email": email, "webhook_url": webhook_url}
        if events:
            body["events"] = events
        with self.client(f"student{student_id}") as http:
            response = http.post(
                f"/students/{student_id}/subscribe/{class_id}", json={k: v for k, v in body.items() if v}
            )
        assert response.status_code == 201, response.text
        return response.json()["subscription"]

    def history(self, student_id: int) -> list[dict]:
        with self.client(f"student{student_id}") as http:
            response = http.get(f"/students/{student_id}/notifications")
        assert response.status_code == 200, response.text
        return response.json()["notifications"]

    def outbox(self, student_id: int) -> list[dict]:
        """The student's outbox rows straight from the table (faster than the API)."""
        return DeliveryHistory(self.settings).of_student(student_id)

    def channel_state(self, student_id: int, class_id: int, channel: str) -> dict | None:
        for item in self.outbox(student_id):
            if int(item["class_id"]) == class_id and item.get("type") == "enrollment.promoted":
                return (item.get("deliveries") or {}).get(channel)
        return None


def _logged(process: Process, text: str) -> bool:
    try:
        return text in process.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return False


@pytest.fixture(scope="session")
def e2e_session() -> Iterator[E2E]:
    mailbox = Mailbox()
    receiver = WebhookReceiver()
    stack = Stack()
    harness = E2E(stack, mailbox, receiver)
    try:
        stack.start()
        yield harness
    finally:
        harness.stop_all()
        stack.stop()
        mailbox.stop()
        receiver.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pollers(email=1, webhook=1): how many pollers the e2e fixture starts")


@pytest.fixture
def e2e(e2e_session: E2E, request: pytest.FixtureRequest) -> Iterator[E2E]:
    """The stack with sample data, empty queues, a relay and one poller per channel
    (another number with @pytest.mark.pollers(email=..., webhook=...))."""
    marker = request.node.get_closest_marker("pollers")
    counts = marker.kwargs if marker else {}
    e2e_session.reset(email_pollers=counts.get("email", 1), webhook_pollers=counts.get("webhook", 1))
    yield e2e_session
    e2e_session.receiver.open_gate()  # nothing left waiting on a held answer
    e2e_session.stop_all()
