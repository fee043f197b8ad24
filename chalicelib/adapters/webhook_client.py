"""Webhook POSTs: concurrent, pooled, no redirects, pinned to the checked address.

Each request goes to the address that `webhook_target.check` approved (so a DNS answer
that changes after the check cannot redirect it), with the original Host header and,
for https, the original name for SNI and certificate checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chalicelib.adapters import webhook_target
from chalicelib.domain.delivery import Outcome, Result, http_result

TIMEOUT_SECONDS = 10.0
PER_HOST_REQUESTS = 10


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    body: bytes
    headers: dict[str, str]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def pinned_url(target: webhook_target.Target) -> str:
    """The target URL with its host replaced by the checked address."""
    parts = urlsplit(target.url)
    address = target.addresses[0]
    host = f"[{address}]" if ":" in address else address
    default = 443 if target.scheme == "https" else 80
    netloc = host if target.port == default else f"{host}:{target.port}"
    return urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))


class WebhookClient:
    def __init__(self, allow_private: bool, max_connections: int = 100, per_host: int = PER_HOST_REQUESTS) -> None:
        self.allow_private = allow_private
        self.max_connections = max_connections
        self.per_host = per_host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    def send_batch(
        self, requests: list[WebhookRequest], on_delivered: Callable[[list[int]], None] | None = None
    ) -> list[Result]:
        """One result per request; `on_delivered(indexes)` as soon as requests succeed."""
        if not requests:
            return []
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._send_all(requests, on_delivered))

    async def _send_all(
        self, requests: list[WebhookRequest], on_delivered: Callable[[list[int]], None] | None = None
    ) -> list[Result]:
        import aiohttp

        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.per_host),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            )
        tasks = [asyncio.ensure_future(self._send(r)) for r in requests]
        position = {task: index for index, task in enumerate(tasks)}
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            delivered = sorted(position[t] for t in done if t.result().outcome is Outcome.DELIVERED)
            if on_delivered is not None and delivered:
                on_delivered(delivered)
        return [task.result() for task in tasks]

    async def _send(self, request: WebhookRequest) -> Result:
        import aiohttp

        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            # The address lookup counts towards the delivery's time limit too.
            lookup = loop.run_in_executor(None, webhook_target.check, request.url, self.allow_private)
            target = await asyncio.wait_for(lookup, TIMEOUT_SECONDS)
        except TimeoutError:
            return Result(Outcome.RETRY, "address lookup timed out")
        except webhook_target.Unresolvable as error:
            return Result(Outcome.RETRY, str(error))
        except webhook_target.UnsafeTarget as error:
            return Result(Outcome.FAILED, f"refused: {error}")
        host_header = urlsplit(request.url).netloc.rsplit("@", 1)[-1]
        headers = {**request.headers, "Host": host_header, "Content-Type": "application/json"}
        extra = {"server_hostname": target.host} if target.scheme == "https" else {}
        try:
            left = aiohttp.ClientTimeout(total=max(TIMEOUT_SECONDS - (loop.time() - started), 0.001))
            async with self._client.post(
                pinned_url(target), data=request.body, headers=headers, allow_redirects=False, timeout=left, **extra
            ) as response:
                await response.read()
                return http_result(response.status, _retry_after(response.headers.get("Retry-After")))
        except TimeoutError:
            return Result(Outcome.RETRY, "timed out")
        except aiohttp.ClientError as error:
            return Result(Outcome.RETRY, f"connection error: {type(error).__name__}")

    def close(self) -> None:
        """Close the pooled connections and the event loop; a later batch opens new ones."""
        if self._loop is None:
            return
        if self._client is not None:
            self._loop.run_until_complete(self._client.close())
            self._client = None
        self._loop.close()
        self._loop = None
