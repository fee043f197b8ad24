"""Webhook delivery against address tricks (issue 8, item 3): the delivery-time check of
names that resolve to private addresses, the connection pinned to the checked address,
and redirects to internal targets, with real local HTTP servers that count every
connection they accept."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.adapters import webhook_target
from chalicelib.adapters.webhook_client import WebhookClient, WebhookRequest
from chalicelib.domain.delivery import Outcome, Result


class Handler(BaseHTTPRequestHandler):
    """Answers every POST with the server's `status` and `location`."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, self.headers.get("Host")))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int = 204, location: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.status, self.location = status, location
        self.connections = 0
        self.requests: list[tuple[str, str | None]] = []

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1  # every accepted connection, whether or not a request follows
        return True

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture
def servers() -> Iterator[Callable[..., CountingServer]]:
    started: list[CountingServer] = []

    def start(status: int = 204, location: str | None = None) -> CountingServer:
        server = CountingServer(status, location)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


class FakeDns:
    """getaddrinfo with chosen answers for some names (a list per name: one per lookup,
    the last repeated); every other name and literal address resolves as usual."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: dict[str, int] = {}
        self._real = socket.getaddrinfo

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        if host not in self.answers:
            return self._real(host, port, family, type, proto, flags)
        count = self.lookups[host] = self.lookups.get(host, 0) + 1
        addresses = self.answers[host][min(count, len(self.answers[host])) - 1]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port or 0), 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
            for a in addresses
        ]


def deliver(allow_private: bool, *urls: str) -> tuple[list[Result], float]:
    client = WebhookClient(allow_private=allow_private)
    started = time.monotonic()
    try:
        results = client.send_batch([WebhookRequest(url, b'{"message":"hi"}', {"webhook-id": "e1"}) for url in urls])
    finally:
        client.close()
    return results, time.monotonic() - started


# -- names that resolve to private addresses at delivery ------------------------------------

PRIVATE_ANSWERS = {
    "loopback": ["127.0.0.1"],
    "IPv4-mapped loopback": ["::ffff:127.0.0.1"],
    "public and loopback": ["93.184.216.34", "127.0.0.1"],
    "cloud metadata": ["169.254.169.254"],
    "10/8": ["10.20.30.40"],
    "IPv6 unique local": ["fd00::1"],
}


@pytest.mark.parametrize("addresses", PRIVATE_ANSWERS.values(), ids=PRIVATE_ANSWERS.keys())
def test_a_name_resolving_to_a_private_address_fails_for_good_without_a_connection(servers, monkeypatch, addresses):
    internal = servers()
    monkeypatch.setattr(socket, "getaddrinfo", FakeDns({"hooks.attacker.example": [addresses]}))

    (result,), elapsed = deliver(False, f"http://hooks.attacker.example:{internal.port}/hook")

    assert result.outcome is Outcome.FAILED
    assert result.error.startswith("refused:") and "non-public" in result.error
    assert internal.connections == 0
    assert elapsed < 2


def test_a_name_that_turns_private_after_subscribing_is_refused_at_delivery(servers, monkeypatch):
    internal = servers()
    url = f"https://hooks.rebind.example:{internal.port}/hook"
    dns = FakeDns({"hooks.rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)

    webhook_target.check(url, allow_private=False)  # what subscribing checked: public then
    (result,), _ = deliver(False, url)

    assert result.outcome is Outcome.FAILED and "non-public" in result.error
    assert dns.lookups["hooks.rebind.example"] == 2
    assert internal.connections == 0


def test_the_connection_goes_to_the_address_that_was_checked(servers, monkeypatch):
    """Resolved once per delivery: a second answer pointing elsewhere is never used."""
    receiver = servers()
    dns = FakeDns({"hooks.pinned.example": [["127.0.0.1"], ["127.0.0.2"]]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)

    (result,), _ = deliver(True, f"http://hooks.pinned.example:{receiver.port}/hook")

    assert result.outcome is Outcome.DELIVERED
    assert dns.lookups["hooks.pinned.example"] == 1
    assert receiver.requests == [("/hook", f"hooks.pinned.example:{receiver.port}")]


# -- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_local_port_is_a_failure_and_never_followed(servers, status):
    target = servers()
    redirecting = servers(status, f"http://127.0.0.1:{target.port}/steal")

    (result,), _ = deliver(True, f"http://127.0.0.1:{redirecting.port}/hook")

    assert result.outcome is Outcome.FAILED
    assert result.error == f"HTTP {status}"
    assert len(redirecting.requests) == 1
    assert target.connections == 0


def test_redirects_to_internal_targets_are_never_followed(servers, monkeypatch):
    target = servers()
    monkeypatch.setattr(socket, "getaddrinfo", FakeDns({"metadata.internal.example": [["127.0.0.1"]]}))
    locations = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"http://metadata.internal.example:{target.port}/latest/meta-data/",
        f"http://[::ffff:127.0.0.1]:{target.port}/admin",
        f"//127.0.0.1:{target.port}/scheme-relative",
        "file:///etc/passwd",
    ]
    redirecting = [servers(302, location) for location in locations]

    results, elapsed = deliver(True, *(f"http://127.0.0.1:{r.port}/hook" for r in redirecting))

    assert [r.outcome for r in results] == [Outcome.FAILED] * len(locations)
    assert all(len(r.requests) == 1 for r in redirecting)
    assert target.connections == 0
    # Following the metadata redirect would have waited for 169.254.169.254 to answer.
    assert elapsed < 2
