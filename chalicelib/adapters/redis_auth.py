"""Login throttling and revoked accounts, in Redis."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.adapters import redis_keys as keys

# KEYS: failure counters. ARGV: limit per key (same order). Returns the seconds to wait
# before the first exhausted counter resets, or 0.
_BLOCKED = """
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', key)
    if ttl > wait then wait = ttl end
  end
end
return wait
"""

# KEYS: failure counters. ARGV: window seconds. A counter's window starts at its first failure.
_FAILED = """
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 0
"""


class RedisLoginThrottle:
    def __init__(self, redis: Any, window_seconds: int, per_user: int, per_client: int) -> None:
        self.redis = redis
        self.window_seconds = window_seconds
        self.limits = {"user": per_user, "client": per_client}
        self._blocked = redis.register_script(_BLOCKED)
        self._failed = redis.register_script(_FAILED)

    def _keys(self, username: str, client: str) -> list[str]:
        return [keys.login_failures("user", username), keys.login_failures("client", client)]

    def wait_seconds(self, username: str, client: str) -> int:
        return int(self._blocked(keys=self._keys(username, client), args=[self.limits["user"], self.limits["client"]]))

    def failed(self, username: str, client: str) -> None:
        self._failed(keys=self._keys(username, client), args=[self.window_seconds])

    def succeeded(self, username: str) -> None:
        self.redis.delete(keys.login_failures("user", username))


class RedisRevocations:
    """Accounts whose tokens no longer count. Checked on every request from a copy held
    in memory for a few seconds, so the check costs no round trip."""

    def __init__(self, redis: Any, refresh_seconds: float = 5.0) -> None:
        self.redis = redis
        self.refresh_seconds = refresh_seconds
        self._revoked: set[int] = set()
        self._loaded_at = float("-inf")

    def revoke(self, user_id: int, for_seconds: int) -> None:
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(keys.REVOKED_USERS, {str(user_id): now + for_seconds})
        pipe.zremrangebyscore(keys.REVOKED_USERS, "-inf", now)
        pipe.execute()
        self._revoked.add(user_id)

    def is_revoked(self, user_id: int) -> bool:
        if time.monotonic() - self._loaded_at > self.refresh_seconds:
            members = self.redis.zrangebyscore(keys.REVOKED_USERS, time.time(), "+inf")
            self._revoked = {int(m) for m in members}
            self._loaded_at = time.monotonic()
        return user_id in self._revoked
