"""Rate-limit decisions from a shared store (Redis) while it answers, else from this process.

:class:`FailoverBuckets` answers from its ``primary`` while it answers; an error of one of
the ``outages`` kinds switches to ``fallback``, a :class:`policy.rate_buckets.MemoryBuckets`
(per-process limits), with one logged warning per outage; the primary is tried again at
most every ``retry_seconds``, and its first answer ends the outage (logged too). It knows
nothing of Redis, so the readiness check can name it without importing the Redis client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from policy.rate_buckets import Admission, BucketStore, Charge, MemoryBuckets

log = logging.getLogger("pagewright.rate_limits")


class FailoverBuckets:
    """``primary`` (the shared store: Redis) while it answers, else ``fallback`` (this
    process); see the module docstring. ``clock`` (monotonic seconds) is injectable for tests."""

    def __init__(
        self,
        primary: BucketStore,
        fallback: BucketStore | None = None,
        *,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        outages: tuple[type[BaseException], ...] = (OSError, TimeoutError),
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryBuckets(clock)
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._retry_at: float | None = None  # set during an outage
        self._outages = outages

    @property
    def degraded(self) -> bool:
        """Whether Redis is out (decisions are this process's own)."""
        return self._retry_at is not None

    async def take(self, charges: Sequence[Charge]) -> Admission:
        if self._use_primary():
            try:
                admission = await self.primary.take(charges)
            except self._outages as error:
                self._failed(error)
            else:
                self._answered()
                return admission
        return await self.fallback.take(charges)

    async def add_failure(self, key: str, window_seconds: float) -> None:
        if self._use_primary():
            try:
                await self.primary.add_failure(key, window_seconds)
            except self._outages as error:
                self._failed(error)
            else:
                self._answered()
                return
        await self.fallback.add_failure(key, window_seconds)

    async def failures(self, key: str) -> tuple[int, float]:
        if self._use_primary():
            try:
                found = await self.primary.failures(key)
            except self._outages as error:
                self._failed(error)
            else:
                self._answered()
                return found
        return await self.fallback.failures(key)

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            await self.fallback.close()

    def _use_primary(self) -> bool:
        return self._retry_at is None or self._clock() >= self._retry_at

    def _failed(self, error: BaseException) -> None:
        if self._retry_at is None:
            log.warning(
                "rate limits: Redis is unavailable (%s); limits are per process until it "
                "answers again",
                type(error).__name__ + (f": {error}" if str(error) else ""),
            )
        self._retry_at = self._clock() + self._retry_seconds

    def _answered(self) -> None:
        if self._retry_at is not None:
            log.warning("rate limits: Redis answers again; limits are shared again")
            self._retry_at = None
