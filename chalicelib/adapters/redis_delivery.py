"""Exactly-once effect: one Redis key per (event id, channel).

`pending:<token>` with a short lease while an attempt runs (a crash before sending
frees it when the lease ends); `done` once the event was sent, `finished` once it ended
without being sent (failed for good, or nothing left to send). Either is kept longer
than the whole retry window so any later copy of the message is recognised.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

from chalicelib.adapters import redis_keys as keys

DONE = "done"
FINISHED = "finished"

# KEYS: delivery key. ARGV: token. Deletes the key only if this token holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Claim(enum.Enum):
    CLAIMED = "claimed"
    DONE = "done"  # sent
    FINISHED = "finished"  # over without a send
    BUSY = "busy"


class DeliveryClaims:
    def __init__(self, redis: Any, lease_seconds: int, done_ttl_seconds: int) -> None:
        self.redis = redis
        self.lease_seconds = lease_seconds
        self.done_ttl_seconds = done_ttl_seconds
        self._release = redis.register_script(_RELEASE)

    def claim(self, event_ids: list[str], channel: str) -> list[tuple[Claim, str]]:
        """Try to claim each event for this channel: two round trips for the whole batch."""
        tokens = [f"pending:{uuid.uuid4().hex}" for _ in event_ids]
        pipe = self.redis.pipeline(transaction=False)
        for event_id, token in zip(event_ids, tokens, strict=True):
            pipe.set(keys.delivery(event_id, channel), token, nx=True, ex=self.lease_seconds)
        won = pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for event_id, ok in zip(event_ids, won, strict=True):
            if not ok:
                pipe.get(keys.delivery(event_id, channel))
        held = iter(pipe.execute())
        claims = []
        for ok, token in zip(won, tokens, strict=True):
            if ok:
                claims.append((Claim.CLAIMED, token))
            else:
                claims.append(({DONE: Claim.DONE, FINISHED: Claim.FINISHED}.get(next(held), Claim.BUSY), token))
        return claims

    def complete(self, event_ids: list[str], channel: str, final: str = DONE) -> None:
        """Mark the events `final` on this channel: DONE once sent, FINISHED otherwise."""
        pipe = self.redis.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.set(keys.delivery(event_id, channel), final, ex=self.done_ttl_seconds)
        pipe.execute()

    def release(self, event_id: str, channel: str, token: str) -> None:
        self._release(keys=[keys.delivery(event_id, channel)], args=[token])
