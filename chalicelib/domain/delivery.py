"""Delivering a notification: what an attempt's result means and when to try again."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

PENDING = "pending"
DELIVERED = "delivered"
RETRYING = "retrying"
FAILED = "failed"


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # worth another attempt later
    FAILED = "failed"  # will never work: dead-letter it
    GONE = "gone"  # the receiver asked us to stop (HTTP 410)
    SKIPPED = "skipped"  # nothing to deliver on this channel any more


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    error: str | None = None
    retry_after: float | None = None


def http_result(status: int, retry_after: float | None = None) -> Result:
    """Webhook rules: 2xx delivered; 410 gone; 408, 429 and 5xx retried; anything else
    (3xx included: redirects are not followed) fails for good."""
    if 200 <= status < 300:
        return Result(Outcome.DELIVERED)
    if status == 410:
        return Result(Outcome.GONE, "HTTP 410 Gone: webhook removed from the subscription")
    if status in (408, 429) or status >= 500:
        return Result(Outcome.RETRY, f"HTTP {status}", retry_after)
    return Result(Outcome.FAILED, f"HTTP {status}")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on a fixed schedule of delay queues, with jitter."""

    delays: tuple[float, ...]
    max_attempts: int
    jitter: float = 0.2

    def queue_delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """The delay queue for the attempt after `attempt`, or None when none is left."""
        if attempt >= self.max_attempts or not self.delays:
            return None
        delay = self.delays[min(attempt - 1, len(self.delays) - 1)]
        if retry_after is not None and retry_after > delay:
            # Honour Retry-After: the shortest scheduled delay that waits long enough.
            delay = next((d for d in self.delays if d >= retry_after), self.delays[-1])
        return delay

    def expiration_ms(self, delay: float) -> int:
        """Per-message TTL: the queue's delay stretched by up to `jitter`, never shortened."""
        return max(1, round(delay * 1000 * (1 + random.uniform(0, self.jitter))))

    def retry_window_seconds(self) -> float:
        """The longest a message can keep being retried."""
        return sum(self.delays[min(i, len(self.delays) - 1)] * (1 + self.jitter) for i in range(self.max_attempts))
