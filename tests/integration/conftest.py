"""The real local stack for integration tests: moto server (serialized) on a free port,
the real Redis (database 15), bootstrap with the sample data, and `chalice local`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from chalicelib import services
from chalicelib.adapters import aws
from chalicelib.adapters.redis_client import connect
from tests.support.broker import ensure_vhost
from tests.support.processes import Process, chalice_local, free_port, python, wait_for_port


class Stack:
    def __init__(self) -> None:
        self.dynamodb_port = free_port()
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{self.dynamodb_port}",
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": f"http://127.0.0.1:{self.dynamodb_port}",
        }
        self.dynamodb = Process(
            "dynamodb", python("-m", "infra.dynamodb_server", "--port", str(self.dynamodb_port)), self.env
        )
        self.api = Process(
            "api",
            chalice_local(self.api_port),
            self.env,
        )
        self.tokens: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        ensure_vhost(os.environ["AMQP_URL"])
        self.dynamodb.start()
        wait_for_port(self.dynamodb_port)
        # In-process code (checks, bootstrap) talks to the same moto server.
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = self.env["AWS_ENDPOINT_URL_DYNAMODB"]
        os.environ["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = self.env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"]
        aws.reset_clients()
        services.reset()
        self.reset()
        self.api.start()
        wait_for_port(self.api_port)

    def reset(self) -> None:
        """Back to exactly the sample data."""
        from chalicelib.adapters.redis_keys import REVOKED_USERS
        from chalicelib.config import get_settings
        from chalicelib.domain.auth import REVOCATION_DELAY_SECONDS
        from infra.bootstrap import bootstrap

        accounts_were_removed = connect().exists(REVOKED_USERS)
        bootstrap(get_settings())
        if accounts_were_removed:
            # The sample accounts are back, but the API's copy of the revocation list may
            # still name them until its next refresh.
            time.sleep(REVOCATION_DELAY_SECONDS + 0.5)

    def stop(self) -> None:
        self.api.stop()
        self.dynamodb.stop()
        for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"):
            os.environ.pop(name, None)
        aws.reset_clients()
        services.reset()
        connect.cache_clear()

    def token(self, username: str, password: str = "titan") -> str:
        if username not in self.tokens:
            response = httpx.post(f"{self.url}/auth/login", json={"username": username, "password": password})
            response.raise_for_status()
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    def client(self, username: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(username)}"} if username else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    """The stack reset to the sample data before the test."""
    stack.reset()
    return stack


@pytest.fixture(scope="module")
def sample(stack: Stack) -> Stack:
    """The sample data, reset once for the read-only tests at the top of a module."""
    stack.reset()
    return stack


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[Callable[..., httpx.Response]]:
    """`api(who, method, path, **httpx_kwargs)`: a request as `who` (a username, or None for
    no token) on one kept-alive connection."""
    with stack.client() as client:

        def send(who: str | None, method: str, path: str, **kwargs) -> httpx.Response:
            token = {"Authorization": f"Bearer {stack.token(who)}"} if who else {}
            return client.request(method, path, headers={**token, **kwargs.pop("headers", {})}, **kwargs)

        yield send
