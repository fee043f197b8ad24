"""Login throttling and revoked accounts, in Redis."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.adapters import redis_keys as keys
from chalicelib.domain.auth import REVOCATION_DELAY_SECONDS

# KEYS: attempt counters. ARGV: limit per key (same order), then the window in seconds.
# If a counter is at its limit, returns the seconds until the first exhausted one resets;
# otherwise counts this attempt in every counter and returns 0. Checking and counting in
# one step means parallel guesses cannot all pass the check before any of them is counted.
_ATTEMPT = """
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', key)
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[#KEYS + 1]) end
end
return 0
"""

# KEYS: the user's counter, the client's counter. A success clears the user's failures and
# takes back its own count from the client's (never below zero, never creating the key; a
# counter that comes back to zero goes, so a successful login leaves nothing behind).
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
local left = tonumber(redis.call('GET', KEYS[2]) or '0')
if left > 1 then redis.call('DECR', KEYS[2]) else redis.call('DEL', KEYS[2]) end
return 0
"""


class RedisLoginThrottle:
    def __init__(self, redis: Any, window_seconds: int, per_user: int, per_client: int) -> None:
        self.redis = redis
        self.window_seconds = window_seconds
        self.limits = {"user": per_user, "client": per_client}
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def _keys(self, username: str, client: str) -> list[str]:
        return [keys.login_failures("user", username), keys.login_failures("client", client)]

    def attempt(self, username: str, client: str) -> int:
        limits = [self.limits["user"], self.limits["client"], self.window_seconds]
        return int(self._attempt(keys=self._keys(username, client), args=limits))

    def succeeded(self, username: str, client: str) -> None:
        self._succeeded(keys=self._keys(username, client))


class RedisRevocations:
    """Accounts whose tokens no longer count. Checked on every request from a copy held
    in memory for a few seconds, so the check costs no round trip."""

    def __init__(self, redis: Any, refresh_seconds: float = REVOCATION_DELAY_SECONDS) -> None:
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
