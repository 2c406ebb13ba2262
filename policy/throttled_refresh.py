"""A read refreshed at most once per TTL, however often and by however many it is asked.

The scrape-time metrics read from the catalog (``policy.metrics_sites``,
``policy.metrics_job_runs``) through a :class:`ThrottledRefresh`, so a scraper asking often,
or many scrapers at once, cost the catalog at most one read per ``ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio


class ThrottledRefresh:
    """Awaits ``read`` when called, unless it was called less than ``ttl_s`` ago (by
    ``clock``). Concurrent callers wait for one read rather than each making their own; a
    read that fails counts as made (a failing source is not asked more often either), and
    ``read`` handles its own failures."""

    def __init__(
        self,
        read: Callable[[], Awaitable[None]],
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = anyio.Lock()
        self._read_at: float | None = None

    async def __call__(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._read_at is not None and now - self._read_at < self._ttl_s:
                return
            self._read_at = now
            await self._read()
