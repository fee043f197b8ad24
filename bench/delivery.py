"""Notification delivery: deliveries per second and publish-to-receipt latency of the
webhook and email pollers, against a naive consumer, in one run.

python -m bench.delivery [--events N] [--paced-rate R] [--paced-seconds S]
                         [--slow-events M] [--slow-ms D] [--slow-endpoints E]

Starts its own moto DynamoDB launcher on a free loopback port (tables
titan-bench-delivery-*), uses Redis database 7 and the RabbitMQ virtual host
titan-bench-delivery (created if missing, removed afterwards), a local HTTP receiver
(asyncio, keep-alive, verifies every signature) and a local aiosmtpd server, each in a
process of its own. Each measurement publishes ready-made event bodies to the exchange
as the relay does; the subscriptions exist, so the handlers run their whole path
(claims, subscription lookup, signing, sending, history), fed by the real pollers
(`consumers.rmq_poller` with the Procfile's settings). The naive consumer takes one
message at a time (prefetch 1), looks up the secret, signs, and POSTs over a new
connection per message. A last section runs the handlers in-process on batches of 100
and shows where a delivery's time goes. Prints markdown, saves it to
bench/results/delivery.md, and stops and removes everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tests.support.processes import ROOT, Process, free_port, python, wait_for_port

RESULTS = ROOT / "bench" / "results" / "delivery.md"
VHOST = "titan-bench-delivery"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
REDIS_URL = "redis://127.0.0.1:6379/7"
SECRET = "whsec_YmVuY2gtb25seS1zaWduaW5nLXNlY3JldC0wMTIzNDU2Nzg5YWI="
CLASS_NAME = "Introduction to Computer Science"
WARMUP = 100
PUBLISH_CHUNK = 500  # as the relay publishes: a batch of pipelined confirms at a time
BREAKDOWN_BATCHES = 5
TIME_LIMIT_SECONDS = 300

BENCH_ENV = {
    "STAGE": "local",
    "TABLE_PREFIX": "titan-bench-delivery",
    "REDIS_URL": REDIS_URL,
    "AMQP_URL": AMQP_URL,
    "JWT_SECRET": "bench-only-signing-key-0123456789abcdef-0123456789",
    "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "PYTHONUNBUFFERED": "1",
    "RETRY_DELAYS": "1,5",
    "MAX_ATTEMPTS": "3",
}


# -- receivers, each in a process of its own -------------------------------------------


class _Receipts:
    """First receipt time per event id, how many arrived in all, how many did not verify."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[str, float] = {}
        self.total = 0
        self.invalid = 0

    def add(self, event_id: str, at: float, valid: bool = True) -> None:
        with self.lock:
            self.total += 1
            self.invalid += not valid
            self.first.setdefault(event_id, at)

    def take(self) -> dict:
        with self.lock:
            taken = {"first": self.first, "total": self.total, "invalid": self.invalid}
            self.first, self.total, self.invalid = {}, 0, 0
        return taken


def _serve_control(connection: Any, receipts: _Receipts) -> None:
    """Answer 'take' with the receipts so far (and forget them) until 'stop'."""
    while connection.recv() != "stop":
        connection.send(receipts.take())


class _HttpReceiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive: read a request, verify its Standard Webhooks signature, answer
    204 at once or after `delay` seconds (an endpoint that takes its time)."""

    def __init__(self, receipts: _Receipts, verifier: Any, delay: float) -> None:
        self.receipts = receipts
        self.verifier = verifier
        self.delay = delay
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            headers = {}
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(body, headers)

    def _answer(self, body: bytes, headers: dict[str, str]) -> None:
        at = time.time()
        try:
            self.verifier.verify(body, headers, json_parse=False)
            valid = True
        except Exception:
            valid = False
        self.receipts.add(headers.get("webhook-id", ""), at, valid)
        response = b"HTTP/1.1 204 No Content\r\n\r\n"
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._write, response)
        else:
            self._write(response)

    def _write(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)


def run_http_receiver(listeners: list[tuple[int, float]], connection: Any) -> None:
    from standardwebhooks.webhooks import Webhook

    receipts = _Receipts()
    verifier = Webhook(SECRET)
    loop = asyncio.new_event_loop()
    for port, delay in listeners:
        loop.run_until_complete(
            loop.create_server(lambda d=delay: _HttpReceiver(receipts, verifier, d), "127.0.0.1", port, backlog=1024)
        )
    threading.Thread(target=loop.run_forever, daemon=True).start()
    connection.send("ready")
    _serve_control(connection, receipts)
    loop.call_soon_threadsafe(loop.stop)


class _SmtpCollector:
    def __init__(self, receipts: _Receipts) -> None:
        self.receipts = receipts

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        content = envelope.content
        start = content.find(b"Message-ID: <") + len(b"Message-ID: <")
        self.receipts.add(content[start : content.find(b"@", start)].decode(), at)
        return "250 Message accepted for delivery"


def run_smtp_receiver(listeners: list[tuple[int, float]], connection: Any) -> None:
    from aiosmtpd.controller import Controller

    receipts = _Receipts()
    controller = Controller(_SmtpCollector(receipts), hostname="127.0.0.1", port=listeners[0][0])
    controller.start()
    connection.send("ready")
    _serve_control(connection, receipts)
    controller.stop()


class Receiver:
    """A receiver process listening on loopback ports, each answering after its delay."""

    def __init__(self, target: Callable, name: str, delays: list[float]) -> None:
        context = multiprocessing.get_context("spawn")
        self.listeners = [(free_port(), delay) for delay in delays]
        self.control, child = context.Pipe()
        self.process = context.Process(target=target, args=(self.listeners, child), name=name, daemon=True)
        self.process.start()
        if not self.control.poll(30) or self.control.recv() != "ready":
            raise RuntimeError(f"{name} did not start")

    def ports(self, delay: float) -> list[int]:
        return [port for port, d in self.listeners if d == delay]

    def take(self) -> dict:
        self.control.send("take")
        return self.control.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.control.send("stop")
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


# -- the naive consumer -----------------------------------------------------------------


def run_naive_consumer(amqp_url: str, redis_url: str, stop: Any) -> None:
    """One message at a time; a new connection and a synchronous POST for each."""
    import pika
    import redis

    from chalicelib.adapters import redis_keys, topology
    from chalicelib.handlers.webhook import payload, signed_headers

    store = redis.Redis.from_url(redis_url, decode_responses=True)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    for method, _properties, body in channel.consume(topology.queue("webhook"), inactivity_timeout=0.2):
        if stop.is_set():
            break
        if method is None:
            continue
        event = json.loads(body)
        subscription = json.loads(store.hget(redis_keys.subscriptions(event["student_id"]), event["class_id"]))
        data = payload(event)
        url = urlsplit(event["webhook_url"])
        headers = {
            **signed_headers(subscription["secret"], event["event_id"], data),
            "Content-Type": "application/json",
        }
        post = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            post.request("POST", url.path, data, headers)
            post.getresponse().read()
        finally:
            post.close()
        channel.basic_ack(method.delivery_tag)
    connection.close()


# -- measurements ----------------------------------------------------------------------


@dataclass
class Measurement:
    channel: str
    consumer: str
    load: str
    messages: int
    seconds: float
    latencies: list[float]
    total: int
    invalid: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def row(self) -> str:
        return (
            f"| {self.channel} | {self.consumer} | {self.load} | {self.messages} | {self.seconds:.2f} "
            f"| **{self.rate:,.0f}** | {statistics.median(self.latencies) * 1000:.0f} "
            f"| {self.p99 * 1000:.0f} | {self.total - self.messages} | {self.invalid} |"
        )


@dataclass(frozen=True)
class Batch:
    """Ready-made events: their message bodies."""

    bodies: list[bytes]

    @property
    def ids(self) -> list[str]:
        return [json.loads(b)["event_id"] for b in self.bodies]


class Bench:
    def __init__(self, env: dict[str, str], webhook: Receiver, smtp: Receiver) -> None:
        from chalicelib.adapters.publisher import ConfirmedPublisher
        from chalicelib.config import get_settings

        self.env = env
        self.webhook = webhook
        self.smtp = smtp
        self.settings = get_settings()
        self.publisher = ConfirmedPublisher(self.settings.amqp_url)
        self.processes: list[Process] = []
        self._student = 1000

    # events

    def events(self, count: int, delay: float = 0.0) -> Batch:
        """`count` promotions of students with email + webhook subscriptions, the webhooks
        spread over the receiver's ports that answer after `delay`."""
        from chalicelib.adapters.redis_client import connect
        from chalicelib.adapters.redis_subscriptions import RedisSubscriptions
        from chalicelib.domain import events
        from chalicelib.domain.events import Contact
        from chalicelib.domain.subscriptions import Subscription

        subscriptions = RedisSubscriptions(connect())
        ports = self.webhook.ports(delay)
        bodies = []
        for n in range(count):
            self._student += 1
            student = self._student
            email = f"student{student}@example.edu"
            url = f"http://127.0.0.1:{ports[n % len(ports)]}/hooks/enrollment"
            subscriptions.add(Subscription(student, 4, email, url, (events.PROMOTED,), "2026-12-01T00:00:00Z", SECRET))
            event = events.promoted(student, 4, CLASS_NAME, 1, Contact(email=email, webhook_url=url))
            bodies.append(json.dumps(event.body(), separators=(",", ":")).encode())
        return Batch(bodies)

    # consumers

    @contextlib.contextmanager
    def pollers(self, channel: str, count: int) -> Iterator[None]:
        from chalicelib.adapters import topology

        started = [
            Process(
                f"bench-delivery-{channel}-poller-{n}",
                python("-m", "consumers.rmq_poller", "--channel", channel),
                self.env,
            ).start()
            for n in range(count)
        ]
        try:
            self._wait(lambda: self.consumers(topology.queue(channel)) >= count, f"{channel} pollers")
            self.collect(self.receiver(channel), set(self.publish(self.events(WARMUP).bodies)))
            yield
        finally:
            for process in started:
                process.stop()
            self.purge()

    @contextlib.contextmanager
    def naive(self) -> Iterator[None]:
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        process = context.Process(target=run_naive_consumer, args=(AMQP_URL, REDIS_URL, stop), daemon=True)
        process.start()
        try:
            yield
        finally:
            stop.set()
            process.join(10)
            if process.is_alive():
                process.terminate()
            self.purge()

    def consumers(self, queue: str) -> int:
        return self._channel(lambda c: c.queue_declare(queue, passive=True).method.consumer_count)

    def purge(self) -> None:
        """Empty every queue: the exchange also filled the queue nobody consumed."""
        from chalicelib.adapters import topology

        self._channel(lambda c: topology.purge(c, self.settings.retry_delays))

    def _channel(self, call: Callable[[Any], Any]) -> Any:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url))
        try:
            return call(connection.channel())
        finally:
            connection.close()

    # measuring

    def receiver(self, channel: str) -> Receiver:
        return self.webhook if channel == "webhook" else self.smtp

    def publish(self, bodies: list[bytes]) -> dict[str, float]:
        """Publish as fast as confirms allow; when each chunk was handed to the broker."""
        from chalicelib.adapters.publisher import Outgoing

        sent: dict[str, float] = {}
        for start in range(0, len(bodies), PUBLISH_CHUNK):
            chunk = [Outgoing(json.loads(b)["event_id"], b) for b in bodies[start : start + PUBLISH_CHUNK]]
            at = time.time()
            if len(self.publisher.publish(chunk)) != len(chunk):
                raise RuntimeError("the broker did not confirm every message")
            sent.update((o.event_id, at) for o in chunk)
        return sent

    def publish_paced(self, bodies: list[bytes], rate: float) -> dict[str, float]:
        from chalicelib.adapters.publisher import Outgoing

        sent: dict[str, float] = {}
        began = time.monotonic()
        for n, body in enumerate(bodies):
            delay = began + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event_id = json.loads(body)["event_id"]
            sent[event_id] = time.time()
            if self.publisher.publish([Outgoing(event_id, body)]) != [event_id]:
                raise RuntimeError("the broker did not confirm a message")
        return sent

    def collect(self, receiver: Receiver, expected: set[str]) -> dict:
        """Receipts until every expected event has arrived, plus anything arriving twice."""
        first: dict[str, float] = {}
        total = invalid = 0
        deadline = time.monotonic() + TIME_LIMIT_SECONDS
        while not expected <= first.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(expected & first.keys())} of {len(expected)} arrived")
            time.sleep(0.05)
            taken = receiver.take()
            for event_id, at in taken["first"].items():
                first.setdefault(event_id, at)
            total += taken["total"]
            invalid += taken["invalid"]
        time.sleep(0.5)  # a second copy of anything would arrive by now
        late = receiver.take()
        return {"first": first, "total": total + late["total"], "invalid": invalid + late["invalid"]}

    def measure(self, channel: str, consumer: str, load: str, batch: Batch, rate: float | None = None) -> Measurement:
        receiver = self.receiver(channel)
        receiver.take()
        sent = self.publish_paced(batch.bodies, rate) if rate else self.publish(batch.bodies)
        got = self.collect(receiver, set(sent))
        latencies = [got["first"][e] - sent[e] for e in sent]
        seconds = max(got["first"][e] for e in sent) - min(sent.values())
        result = Measurement(channel, consumer, load, len(sent), seconds, latencies, got["total"], got["invalid"])
        print(result.row(), file=sys.stderr, flush=True)
        return result

    def _wait(self, condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)


def run(bench: Bench, args: argparse.Namespace) -> list[Measurement]:
    results: list[Measurement] = []
    burst = bench.events(args.events)
    for channel in ("webhook", "email"):
        with bench.pollers(channel, 1):
            results.append(bench.measure(channel, "poller", "burst", burst))
    with bench.naive():
        results.append(bench.measure("webhook", "naive", "burst", burst))

    burst = bench.events(args.events)
    with bench.pollers("webhook", 2):
        results.append(bench.measure("webhook", "2 pollers", "burst", burst))

    paced = bench.events(int(args.paced_rate * args.paced_seconds))
    for channel in ("webhook", "email"):
        with bench.pollers(channel, 1):
            results.append(bench.measure(channel, "poller", f"paced {args.paced_rate:.0f}/s", paced, args.paced_rate))

    slow = bench.events(args.slow_events, args.slow_ms / 1000)
    load = f"burst, endpoints answering in {args.slow_ms:.0f} ms"
    with bench.pollers("webhook", 1):
        results.append(bench.measure("webhook", "poller", load, slow))
    with bench.naive():
        results.append(bench.measure("webhook", "naive", load, slow))
    return results


def breakdown(bench: Bench) -> dict[str, dict[str, float]]:
    """Milliseconds per message of each step, the real handlers run in-process on batches
    of 100 (after one batch to open connections)."""
    import pika

    from chalicelib.handlers import email, rmq_event, webhook

    shares: dict[str, dict[str, float]] = {}
    for channel, module in (("webhook", webhook), ("email", email)):
        deliverer = module.deliverer()
        spent: dict[str, float] = defaultdict(float)

        def timed(owner: Any, name: str, label: str, spent: dict[str, float] = spent) -> None:
            original = getattr(owner, name)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    spent[label] += time.perf_counter() - started

            setattr(owner, name, wrapper)

        timed(deliverer.claims, "claim", "claims (Redis)")
        timed(deliverer.claims, "complete", "done marks (Redis)")
        timed(deliverer.history, "record", "history (DynamoDB on moto)")
        if channel == "webhook":
            timed(deliverer.channel.subscriptions, "get_many", "subscription lookups (Redis)")
            timed(deliverer.channel.client, "send_batch", "HTTP POSTs (aiohttp)")
        else:
            timed(module, "compose", "composing (email.message)")
            timed(deliverer.channel.sender, "send_batch", "SMTP (smtplib)")
        batches = []
        for _ in range(BREAKDOWN_BATCHES + 1):
            made = bench.events(100)
            deliveries = [
                (pika.BasicProperties(message_id=i, headers={"x-message-id": i}), b, False)
                for i, b in zip(made.ids, made.bodies, strict=True)
            ]
            batches.append((made, rmq_event.build(f"notifications.{channel}", VHOST, deliveries)))
        module.handle(batches[0][1])
        spent.clear()
        started = time.perf_counter()
        for _, event in batches[1:]:
            module.handle(event)
        total = time.perf_counter() - started
        messages = BREAKDOWN_BATCHES * 100
        shares[channel] = {label: seconds * 1000 / messages for label, seconds in spent.items()}
        shares[channel]["whole handler"] = total * 1000 / messages
        deliverer.close()  # its broker connection and, for webhooks, its pooled connections
    return shares


def report(results: list[Measurement], shares: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    poller = next(r for r in results if (r.channel, r.consumer, r.load) == ("webhook", "poller", "burst"))
    naive = next(r for r in results if (r.consumer, r.load) == ("naive", "burst"))
    scaled = next(r for r in results if r.consumer == "2 pollers")
    paced = next(r for r in results if r.channel == "webhook" and r.load.startswith("paced"))
    slow_poller = next(r for r in results if r.consumer == "poller" and "endpoints" in r.load)
    slow_naive = next(r for r in results if r.consumer == "naive" and "endpoints" in r.load)
    best = max(poller.rate, scaled.rate)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Notification delivery: deliveries per second and latency",
        "",
        f"`python -m bench.delivery --events {args.events} --paced-rate {args.paced_rate:.0f} "
        f"--paced-seconds {args.paced_seconds:.0f} --slow-events {args.slow_events} --slow-ms {args.slow_ms:.0f} "
        f"--slow-endpoints {args.slow_endpoints}`, {now}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, loopback only, on a machine shared with other work.",
        "",
        "Each row publishes ready-made promotion events to `enrollment_notifications` (confirmed, in "
        f"chunks of {PUBLISH_CHUNK} for a burst, one at a time at a steady rate when paced) and waits until "
        "the receiver has every one. Pollers are `consumers.rmq_poller` with the Procfile's settings (batch "
        "100, window 0.2 s, prefetch 200), running the handlers' whole path: claims in Redis, subscription "
        "lookup, Standard Webhooks signing, the send, history in DynamoDB (moto). The HTTP receiver answers "
        "204 at once (asyncio, keep-alive, verifies every signature); the slow rows spread the webhooks over "
        f"{args.slow_endpoints} receiver ports that answer after {args.slow_ms:.0f} ms. Latency runs from the "
        "publish to the receipt; in a burst it includes the wait behind earlier messages. The naive consumer "
        "takes one message at a time, looks up the secret, signs, and POSTs over a new connection per "
        "message, with no claims and no history. `again`: deliveries beyond the first of an event; "
        "`invalid`: signatures that did not verify.",
        "",
        "| channel | consumer | load | messages | seconds | deliveries/s | p50 ms | p99 ms | again | invalid |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(r.row() for r in results),
        "",
        f"- webhook deliveries/s, target ≥ 1,000: **{best:,.0f}** "
        f"({'met' if best >= 1000 else 'missed'}; one poller {poller.rate:,.0f}, two {scaled.rate:,.0f})",
        f"- against the naive consumer, target ≥ 10x: **{poller.rate / naive.rate:.1f}x** with an endpoint "
        f"that answers at once, **{slow_poller.rate / slow_naive.rate:.1f}x** with endpoints answering in "
        f"{args.slow_ms:.0f} ms",
        f"- p99 latency at {args.paced_rate:.0f} deliveries/s, target ≤ 1 s: **{paced.p99 * 1000:,.0f} ms** "
        f"({'met' if paced.p99 <= 1 else 'missed'})",
        "",
        "## Where a delivery's time goes",
        "",
        f"The handlers in-process on {BREAKDOWN_BATCHES} batches of 100 (milliseconds per message; steps "
        "overlap where one runs inside another, e.g. done marks happen during the POSTs):",
        "",
        "| step | webhook ms/message | email ms/message |",
        "| --- | --- | --- |",
    ]
    labels = list(dict.fromkeys([*shares["webhook"], *shares["email"]]))
    labels.sort(key=lambda label: label == "whole handler")
    for label in labels:
        cells = [f"{shares[c][label]:.2f}" if label in shares[c] else "" for c in ("webhook", "email")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    lines.append("")
    return "\n".join(lines)


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="messages per burst")
    parser.add_argument("--paced-rate", type=float, default=200, help="messages per second when paced")
    parser.add_argument("--paced-seconds", type=float, default=10)
    parser.add_argument("--slow-events", type=int, default=1000, help="messages to slow endpoints")
    parser.add_argument("--slow-ms", type=float, default=20, help="how long slow endpoints take to answer")
    parser.add_argument("--slow-endpoints", type=int, default=20, help="how many slow endpoints")
    args = parser.parse_args()

    created_vhost = VHOST not in _rabbitmqctl("list_vhosts").stdout.split()
    if created_vhost:
        _rabbitmqctl("add_vhost", VHOST)
        _rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    dynamodb_port = free_port()
    endpoint = f"http://127.0.0.1:{dynamodb_port}"
    webhook = Receiver(run_http_receiver, "bench-webhook-receiver", [0.0] + [args.slow_ms / 1000] * args.slow_endpoints)
    smtp = Receiver(run_smtp_receiver, "bench-smtp-receiver", [0.0])
    env = {
        **os.environ,
        **BENCH_ENV,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": endpoint,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.listeners[0][0]),
    }
    os.environ.update(env)
    dynamodb = Process(
        "bench-delivery-dynamodb", python("-m", "infra.dynamodb_server", "--port", str(dynamodb_port)), env
    )
    bench: Bench | None = None
    from chalicelib.adapters.redis_client import connect

    try:
        from chalicelib.config import get_settings
        from infra.bootstrap import recreate_tables, reset_broker

        dynamodb.start()
        wait_for_port(dynamodb_port)
        settings = get_settings()
        recreate_tables(settings)
        reset_broker(settings)
        connect().flushdb()
        bench = Bench(env, webhook, smtp)
        results = run(bench, args)
        shares = breakdown(bench)
    finally:
        if bench is not None:
            bench.publisher.close()
        dynamodb.stop()
        webhook.stop()
        smtp.stop()
        connect().flushdb()
        if created_vhost:
            _rabbitmqctl("delete_vhost", VHOST)
    text = report(results, shares, args)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"saved to {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
