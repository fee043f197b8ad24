"""Requests per second of GET /waitlist/students/{sid}: the 304 path and the 200 path,
through `chalice local` (HTTP on loopback, keep-alive) and in-process (Chalice's test client).

python -m bench.conditional_get [--requests N] [--seconds S] [--rounds R]

Starts its own moto DynamoDB server and `chalice local` on free loopback ports, loads the
sample data into its own tables (titan-bench-etag-*) and Redis database (11), measures,
prints a markdown table, saves it to bench/results/conditional_get.md and stops
everything it started.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from infra.bootstrap import clear_redis
from tests.support.processes import ROOT, Process, chalice_local, free_port, python, wait_for_port

RESULTS = ROOT / "bench" / "results" / "conditional_get.md"
STUDENT = 1
PATH = f"/waitlist/students/{STUDENT}"
WARMUP = 20

BENCH_ENV = {
    "STAGE": "local",
    "TABLE_PREFIX": "titan-bench-etag",
    "REDIS_URL": "redis://127.0.0.1:6379/11",
    "JWT_SECRET": "bench-only-signing-key-0123456789abcdef-0123456789",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class Result:
    transport: str
    path: str
    status: int
    connections: int
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @classmethod
    def merge(cls, parts: list[Result]) -> Result:
        first = parts[0]
        return cls(
            first.transport,
            first.path,
            first.status,
            first.connections,
            sum(p.requests for p in parts),
            sum(p.seconds for p in parts),
            [latency for p in parts for latency in p.latencies],
        )

    def row(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        return (
            f"| {self.transport} | {self.path} | {self.status} | {self.connections} | {self.requests} "
            f"| {self.seconds:.2f} | **{self.rate:,.0f}** | {p50:.2f} | {p99:.2f} |"
        )


def run(send: Callable[[], int], expected: int, requests: int, seconds: float) -> tuple[int, float, list[float]]:
    """Send up to `requests` requests, for at most `seconds`; every answer must be `expected`."""
    for _ in range(WARMUP):
        _check(send(), expected)
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    while len(latencies) < requests and time.perf_counter() < deadline:
        before = time.perf_counter()
        _check(send(), expected)
        latencies.append(time.perf_counter() - before)
    return len(latencies), time.perf_counter() - started, latencies


def _check(status: int, expected: int) -> None:
    if status != expected:
        raise SystemExit(f"expected {expected}, got {status}: the benchmark would measure the wrong path")


def over_http(url: str, token: str, etag: str | None, requests: int, seconds: float, connections: int) -> Result:
    """`connections` keep-alive clients in threads, sharing the request budget."""
    expected = 200 if etag is None else 304
    headers = {"Authorization": f"Bearer {token}", **({"If-None-Match": etag} if etag else {})}
    outcomes: list[tuple[int, float, list[float]]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                outcomes.append(run(lambda: client.get(PATH).status_code, expected, requests // connections, seconds))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Result(
        "chalice local (HTTP)",
        PATH,
        expected,
        connections,
        sum(n for n, _, _ in outcomes),
        max(s for _, s, _ in outcomes),
        [latency for _, _, latencies in outcomes for latency in latencies],
    )


def in_process(token: str, etag: str | None, requests: int, seconds: float) -> Result:
    from chalice.test import Client

    from app import app

    expected = 200 if etag is None else 304
    headers = {"Authorization": f"Bearer {token}", **({"If-None-Match": etag} if etag else {})}
    with Client(app, stage_name="local") as client:
        n, elapsed, latencies = run(
            lambda: client.http.get(PATH, headers=headers).status_code, expected, requests, seconds
        )
    return Result("in-process (chalice.test)", PATH, expected, 1, n, elapsed, latencies)


def interleaved(
    measure: Callable[[str | None, int, float], Result], etag: str, rounds: int, requests: int, seconds: float
) -> list[Result]:
    """The 304 and the 200 path in alternating rounds, so that a drift in the machine's load
    (other processes, Redis) weighs on both alike."""
    parts: dict[str | None, list[Result]] = {etag: [], None: []}
    for _ in range(rounds):
        for tag in parts:
            parts[tag].append(measure(tag, requests // rounds, seconds / rounds))
    return [Result.merge(runs) for runs in parts.values()]


def table(results: list[Result], requests: int, seconds: float, rounds: int) -> str:
    lines = [
        "# Conditional GET of waitlist positions: requests per second",
        "",
        f"`python -m bench.conditional_get --requests {requests} --seconds {seconds:g} --rounds {rounds}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end), loopback only.",
        "",
        f"`GET {PATH}` as student {STUDENT} (three waitlists, two Redis round trips, no DynamoDB "
        "request); 304 requests send the current ETag in If-None-Match. One connection is one "
        "keep-alive client issuing requests back to back. The two paths are measured in "
        f"{rounds} alternating rounds, each after {WARMUP} warm-up requests per connection; "
        "a measurement stops at its request budget or its time limit.",
        "",
        "| transport | path | status | connections | requests | seconds | req/s | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(result.row() for result in results),
        "",
        "Over HTTP the API is `infra.chalice_local`: Chalice's own local server with TCP_NODELAY "
        "on its sockets. Plain `chalice local` writes a response's headers and its body in two "
        "`send` calls, so Nagle's algorithm held every 200 body until the client's delayed ACK "
        "(about 40 ms on Linux loopback: about 20 req/s on one connection, measured before the "
        "change); a 304 has no body and was never held. The in-process rows show the "
        "application's own cost, about the same for both paths: the 304 saves the transfer of "
        "the body, not the two Redis round trips that compute it.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per measurement (default 5000)")
    parser.add_argument("--seconds", type=float, default=15, help="time limit per measurement (default 15)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating 304/200 rounds (default 4)")
    args = parser.parse_args()

    dynamodb_port, api_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{dynamodb_port}"
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(BENCH_ENV, AWS_ENDPOINT_URL_DYNAMODB=endpoint, AWS_ENDPOINT_URL_DYNAMODB_STREAMS=endpoint)
    env = dict(os.environ)
    dynamodb = Process("bench-dynamodb", python("-m", "infra.dynamodb_server", "--port", str(dynamodb_port)), env)
    api = Process(
        "bench-api",
        chalice_local(api_port),
        env,
    )
    try:
        dynamodb.start()
        wait_for_port(dynamodb_port)
        from chalicelib.config import get_settings
        from infra.bootstrap import bootstrap

        bootstrap(get_settings())
        api.start()
        wait_for_port(api_port)
        url = f"http://127.0.0.1:{api_port}"
        login = httpx.post(f"{url}/auth/login", json={"username": f"student{STUDENT}", "password": "titan"})
        login.raise_for_status()
        token = login.json()["access_token"]
        etag = httpx.get(f"{url}{PATH}", headers={"Authorization": f"Bearer {token}"}).headers["ETag"]

        results = []
        for connections in (1, 4):
            results += interleaved(
                functools.partial(over_http, url, token, connections=connections),
                etag,
                args.rounds,
                args.requests,
                args.seconds,
            )
        results += interleaved(functools.partial(in_process, token), etag, args.rounds, args.requests, args.seconds)
        clear_redis()
    finally:
        api.stop()
        dynamodb.stop()

    report = table(results, args.requests, args.seconds, args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(report)
    print(f"saved to {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
