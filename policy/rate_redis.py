"""Rate-limit buckets in Redis, shared by every gateway replica (imported only when a
``redis_url`` is configured: :func:`policy.rate_limits.open_store`).

:class:`RedisBuckets` makes each decision with one server-side Lua script (EVALSHA, loaded
on first use and again after a ``SCRIPT FLUSH`` or a restart), so concurrent replicas never
both spend the last token. The script reads Redis's own clock (``TIME``), so replicas with
skewed clocks agree. Each bucket is a hash ``{level, stamp}`` expiring when it would be
full again, each failure window a counter expiring with the window: idle keys vanish.
Keys are ``<prefix><key>``; every key of one decision goes to one server (no Cluster).

:func:`open_buckets` puts them behind :class:`policy.rate_failover.FailoverBuckets`, which
falls back to per-process limits while Redis is out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from policy.rate_buckets import ALLOWED, Admission, Charge
from policy.rate_failover import FailoverBuckets

log = logging.getLogger("pagewright.rate_limits")

#: KEYS: the buckets; ARGV: per_second, burst, cost of each. Returns {1} or {0, wait, i}.
TAKE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local levels = {}
local worst, worst_index = 0, 0
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local state = redis.call('HMGET', key, 'level', 'stamp')
  local level = burst
  if state[1] then
    local elapsed = math.max(0, now - tonumber(state[2]))
    level = math.min(burst, tonumber(state[1]) + elapsed * rate)
  end
  levels[i] = level
  local needed = math.min(cost, burst)
  if level < needed and (needed - level) / rate > worst then
    worst, worst_index = (needed - level) / rate, i
  end
end
if worst_index > 0 then
  return {0, string.format('%.6f', worst), worst_index}
end
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local level = levels[i] - cost
  redis.call('HSET', key, 'level', string.format('%.17g', level),
             'stamp', string.format('%.6f', now))
  redis.call('PEXPIRE', key, math.ceil((burst - level) / rate * 1000) + 1000)
end
return {1}
"""

#: KEYS[1]: the window; ARGV[1]: its length in ms. Counts one failure.
FAIL_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""

#: KEYS[1]: the window. Returns {count, ms left}.
FAILURES_SCRIPT = """
local count = redis.call('GET', KEYS[1])
if not count then return {0, 0} end
return {tonumber(count), math.max(0, redis.call('PTTL', KEYS[1]))}
"""

#: Socket timeout for Redis: a decision waits at most this before falling back.
REDIS_TIMEOUT_SECONDS = 0.25


def connect(url: str, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> Redis:
    """A client for ``url`` with short timeouts and one immediate retry on a broken
    connection (a pooled connection Redis closed), never on a timeout."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return client


class RedisBuckets:
    """Buckets and failure windows in Redis under ``prefix`` (see the module docstring).

    Redis errors and timeouts are raised (``RedisError``, ``OSError``, ``TimeoutError``):
    :class:`FailoverBuckets` decides what to do about them."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._take = client.register_script(TAKE_SCRIPT)
        self._fail = client.register_script(FAIL_SCRIPT)
        self._failures = client.register_script(FAILURES_SCRIPT)

    async def take(self, charges: Sequence[Charge]) -> Admission:
        if not charges:
            return ALLOWED
        args: list[float] = []
        for charge in charges:
            args += [charge.rate.per_second, charge.rate.burst, charge.cost]
        keys = [self._prefix + charge.key for charge in charges]
        answer = await self._take(keys=keys, args=[repr(a) for a in args])
        if int(answer[0]) == 1:
            return ALLOWED
        return Admission.refused(float(answer[1]), charges[int(answer[2]) - 1].name)

    async def add_failure(self, key: str, window_seconds: float) -> None:
        await self._fail(keys=[self._prefix + key], args=[max(1, round(window_seconds * 1000))])

    async def failures(self, key: str) -> tuple[int, float]:
        count, left_ms = await self._failures(keys=[self._prefix + key])
        return int(count), int(left_ms) / 1000

    async def close(self) -> None:
        await self._client.aclose()


#: What FailoverBuckets takes for an outage of Redis.
OUTAGE: Final = (RedisError, OSError, TimeoutError)


def open_buckets(url: str, key_prefix: str) -> FailoverBuckets:
    """Buckets in the Redis at ``url`` with the per-process fallback."""
    return FailoverBuckets(RedisBuckets(connect(url), key_prefix), outages=OUTAGE)
