"""What the email and webhook handlers share: one batch of aws:rmq messages in, each
message delivered at most once with a final result, retried through the broker, or
dead-lettered. A message's failure never touches the others of its batch; the handler
raises only when it cannot record a result (then the whole batch is retried, and the
claims make that harmless)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.adapters.redis_delivery import FINISHED, Claim, DeliveryClaims
from chalicelib.domain import delivery
from chalicelib.domain.delivery import Outcome, Result, RetryPolicy
from chalicelib.handlers import rmq_event
from chalicelib.handlers.rmq_event import InboundMessage

log = logging.getLogger("titan.delivery")


@dataclass
class Job:
    message: InboundMessage
    event: dict
    event_id: str
    token: str = ""


class Channel(Protocol):
    name: str

    def wants(self, event: dict) -> bool: ...

    def send(self, jobs: list[Job], delivered: Callable[[list[Job]], None]) -> list[Result]:
        """One result per job, in order; `delivered(jobs)` the moment those jobs' sends succeed."""
        ...

    def on_gone(self, job: Job) -> None: ...

    def close(self) -> None:
        """Let go of open connections (a local driver shutting down)."""
        ...


class Requeue(Protocol):
    def retry(
        self, channel: str, delay: float, expiration_ms: int, body: bytes, message_id: str, attempt: int, error: str
    ) -> None: ...

    def dead_letter(self, channel: str, body: bytes, message_id: str, attempts: int, error: str) -> None: ...

    def close(self) -> None: ...


class History(Protocol):
    def record(self, channel: str, outcomes: list[tuple[str, str, int, str | None]]) -> None: ...


@dataclass
class BatchReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    duplicates: int = 0
    busy: int = 0
    outcomes: list[tuple[str, str, int, str | None]] = field(default_factory=list)


@dataclass
class Deliverer:
    channel: Channel
    claims: DeliveryClaims
    requeue: Requeue
    history: History
    policy: RetryPolicy

    def handle(self, event: dict) -> BatchReport:
        report = BatchReport()
        jobs = self._claimable(rmq_event.parse(event), report)
        results = self.channel.send(jobs, self._done_early) if jobs else []
        sent: list[str] = []
        unsent: list[str] = []
        retries: list[tuple[Job, float, str]] = []
        for job, result in zip(jobs, results, strict=True):
            if self._settle(job, result, report, retries):
                (sent if result.outcome is Outcome.DELIVERED else unsent).append(job.event_id)
        self.claims.complete(sent, self.channel.name)
        self.claims.complete(unsent, self.channel.name, FINISHED)
        self._record(report)
        # Retries leave only once their "retrying" is recorded: a retry's own outcome,
        # recorded later by whichever poller takes it, is never overwritten by this one.
        # (A crash before they leave loses nothing: the batch is not acknowledged.)
        for job, delay, error in retries:
            self._retry_later(job, delay, job.message.attempt + 1, error)
        return report

    def close(self) -> None:
        self.channel.close()
        self.requeue.close()

    def _claimable(self, messages: list[InboundMessage], report: BatchReport) -> list[Job]:
        jobs: list[Job] = []
        for message in messages:
            job = self._job(message)
            if job is None:
                report.failed += 1
                continue
            if not self.channel.wants(job.event):
                report.skipped += 1
                continue
            jobs.append(job)
        claims = self.claims.claim([j.event_id for j in jobs], self.channel.name)
        claimed: list[Job] = []
        for job, (state, token) in zip(jobs, claims, strict=True):
            if state is Claim.DONE:
                report.duplicates += 1
                if job.message.redelivered:
                    # The broker gives a message back when its handler died before the
                    # acknowledgement: perhaps after the send was marked done but before it
                    # was recorded. Record it (again: the same attempt, the same outcome).
                    report.outcomes.append((job.event_id, delivery.DELIVERED, job.message.attempt, None))
            elif state is Claim.FINISHED:
                report.duplicates += 1
            elif state is Claim.BUSY:
                # Another attempt holds it, or one crashed before sending: look again
                # later, without counting an attempt, so neither case loses it.
                report.busy += 1
                self._retry_later(job, self.policy.delays[0], job.message.attempt, "attempt in progress elsewhere")
            else:
                job.token = token
                claimed.append(job)
        return claimed

    def _done_early(self, jobs: list[Job]) -> None:
        """Mark sent events done at once, not when the whole batch is over: a crash while
        the rest of the batch is still sending must not send these again."""
        try:
            self.claims.complete([job.event_id for job in jobs], self.channel.name)
        except Exception:  # the end of the batch marks them again
            log.warning("could not mark %d %s deliveries done yet", len(jobs), self.channel.name, exc_info=True)

    def _job(self, message: InboundMessage) -> Job | None:
        try:
            event = message.json()
            if not isinstance(event, dict):
                raise TypeError("the body is not a JSON object")
            event_id = str(message.message_id or event["event_id"])
        except (ValueError, KeyError, TypeError) as error:
            self.requeue.dead_letter(
                self.channel.name, message.body, message.message_id or "", message.attempt, f"unreadable: {error}"
            )
            return None
        return Job(message=message, event=event, event_id=event_id)

    def _settle(self, job: Job, result: Result, report: BatchReport, retries: list[tuple[Job, float, str]]) -> bool:
        """Act on one result; True when the event is finished on this channel. A retry is
        added to `retries`, to be sent once the batch's outcomes are recorded."""
        attempt = job.message.attempt
        if result.outcome is Outcome.DELIVERED:
            report.delivered += 1
            report.outcomes.append((job.event_id, delivery.DELIVERED, attempt, None))
            return True
        if result.outcome is Outcome.SKIPPED:
            report.skipped += 1
            return True
        if result.outcome is Outcome.GONE:
            self.channel.on_gone(job)
            return self._fail(job, result.error or "gone", report)
        if result.outcome is Outcome.RETRY:
            delay = self.policy.queue_delay(attempt, result.retry_after)
            if delay is not None:
                retries.append((job, delay, result.error or "retry"))
                self.claims.release(job.event_id, self.channel.name, job.token)
                report.retried += 1
                report.outcomes.append((job.event_id, delivery.RETRYING, attempt, result.error))
                return False
        return self._fail(job, result.error or "failed", report)

    def _fail(self, job: Job, error: str, report: BatchReport) -> bool:
        attempt = job.message.attempt
        self.requeue.dead_letter(self.channel.name, job.message.body, job.event_id, attempt, error)
        report.failed += 1
        report.outcomes.append((job.event_id, delivery.FAILED, attempt, error))
        log.warning("%s delivery of %s failed after %d attempt(s): %s", self.channel.name, job.event_id, attempt, error)
        return True

    def _retry_later(self, job: Job, delay: float, attempt: int, error: str) -> None:
        self.requeue.retry(
            self.channel.name,
            delay,
            self.policy.expiration_ms(delay),
            job.message.body,
            job.event_id,
            attempt,
            error,
        )

    def _record(self, report: BatchReport) -> None:
        if not report.outcomes:
            return
        try:
            self.history.record(self.channel.name, report.outcomes)
        except Exception:  # the delivery itself stands; a lost history line is only logged
            log.exception("could not record %d %s delivery outcome(s)", len(report.outcomes), self.channel.name)
