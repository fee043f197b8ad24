"""Waitlists in Redis sorted sets. Each method is one atomic step (a Lua script or a
single command); reads take at most two round trips."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import redis_keys as keys
from chalicelib.domain.model import JoinOutcome, WaitlistEntry

# KEYS: class waitlist, student's waitlists, sequence. ARGV: student, class, capacity, per-student.
_JOIN = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {'duplicate', 0} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return {'waitlist_full', 0} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {'too_many_waitlists', 0} end
local order = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], order, ARGV[1])
redis.call('ZADD', KEYS[2], order, ARGV[2])
return {'joined', redis.call('ZRANK', KEYS[1], ARGV[1]) + 1}
"""

# KEYS: class waitlist, student's waitlists. ARGV: student, class.
# Returns nil when the student was not listed, else {rank, students who moved up...}.
_REMOVE = """
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if not rank then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
local behind = redis.call('ZRANGE', KEYS[1], rank, -1)
table.insert(behind, 1, rank)
return behind
"""


class RedisWaitlists:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._join = redis.register_script(_JOIN)
        self._remove = redis.register_script(_REMOVE)

    def length(self, class_id: int) -> int:
        return int(self.redis.zcard(keys.class_waitlist(class_id)))

    def lengths(self, class_ids: list[int]) -> dict[int, int]:
        pipe = self.redis.pipeline(transaction=False)
        for class_id in class_ids:
            pipe.zcard(keys.class_waitlist(class_id))
        return {class_id: int(n) for class_id, n in zip(class_ids, pipe.execute(), strict=False)}

    def join(self, class_id: int, student_id: int, capacity: int, per_student: int) -> tuple[JoinOutcome, int]:
        outcome, position = self._join(
            keys=[keys.class_waitlist(class_id), keys.student_waitlists(student_id), keys.WAITLIST_SEQUENCE],
            args=[student_id, class_id, capacity, per_student],
        )
        return JoinOutcome(outcome), int(position)

    def head(self, class_id: int) -> int | None:
        first = self.redis.zrange(keys.class_waitlist(class_id), 0, 0)
        return int(first[0]) if first else None

    def remove(self, class_id: int, student_id: int) -> list[WaitlistEntry] | None:
        result = self._remove(
            keys=[keys.class_waitlist(class_id), keys.student_waitlists(student_id)],
            args=[student_id, class_id],
        )
        if result is None:
            return None
        rank, behind = int(result[0]), result[1:]
        return [WaitlistEntry(class_id, int(s), rank + offset + 1) for offset, s in enumerate(behind)]

    def position(self, class_id: int, student_id: int) -> int | None:
        rank = self.redis.zrank(keys.class_waitlist(class_id), student_id)
        return None if rank is None else int(rank) + 1

    def positions(self, student_id: int) -> list[WaitlistEntry]:
        """The student's waitlists in the order joined: two round trips."""
        class_ids = [int(c) for c in self.redis.zrange(keys.student_waitlists(student_id), 0, -1)]
        if not class_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for class_id in class_ids:
            pipe.zrank(keys.class_waitlist(class_id), student_id)
        return [
            WaitlistEntry(class_id, student_id, int(rank) + 1)
            for class_id, rank in zip(class_ids, pipe.execute(), strict=False)
            if rank is not None
        ]

    def entries(self, class_id: int) -> list[WaitlistEntry]:
        members = self.redis.zrange(keys.class_waitlist(class_id), 0, -1)
        return [WaitlistEntry(class_id, int(s), i + 1) for i, s in enumerate(members)]

    def delete_class(self, class_id: int) -> list[int]:
        students = [int(s) for s in self.redis.zrange(keys.class_waitlist(class_id), 0, -1)]
        pipe = self.redis.pipeline(transaction=True)
        for student_id in students:
            pipe.zrem(keys.student_waitlists(student_id), class_id)
        pipe.delete(keys.class_waitlist(class_id))
        pipe.execute()
        return students
