"""Token buckets and failure windows: the values and the maths every rate-limit store shares.

A bucket (:class:`Rate`) refills at ``per_second`` tokens a second up to ``burst``; it starts
full and an idle bucket is a full one (stores may forget it). A decision charges several
buckets at once (:class:`Charge`): it is admitted only if every bucket can pay, and then
every bucket pays; a refused decision charges nothing.

A bucket can pay ``cost`` when it holds at least ``min(cost, burst)`` tokens: a charge larger
than the burst (an upload bigger than a second's bytes) is admitted only into a full bucket,
which it then leaves in debt (below zero) until the refill pays it back.

:class:`MemoryBuckets` keeps the buckets and failure windows in this process;
:mod:`policy.rate_redis` keeps them in Redis with the same maths in a server-side script.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Rate:
    """A token bucket's shape: ``per_second`` refill (> 0) and ``burst`` capacity (> 0)."""

    per_second: float
    burst: float

    @staticmethod
    def of(per_second: float | None, burst: float | None) -> Rate | None:
        """The bucket of a configured limit, or None when ``per_second`` is None or 0 (no
        limit). A burst of None or 0 is one second's worth (at least 1)."""
        if not per_second:
            return None
        return Rate(float(per_second), float(burst) if burst else max(1.0, float(per_second)))


@dataclass(frozen=True)
class Charge:
    """``cost`` tokens taken from the bucket ``key`` of shape ``rate``; ``name`` names the
    limit in answers and logs (``principal requests``, ``site bytes``...)."""

    key: str
    name: str
    rate: Rate
    cost: float


@dataclass(frozen=True)
class Admission:
    """A decision: ``allowed``, else the whole seconds to wait (at least 1) and which limit
    refused."""

    allowed: bool
    retry_after_seconds: int = 0
    limit_name: str | None = None

    @staticmethod
    def refused(wait_seconds: float, limit_name: str) -> Admission:
        return Admission(False, max(1, math.ceil(wait_seconds)), limit_name)


ALLOWED = Admission(True)


class BucketStore(Protocol):
    """Where buckets and failure windows live. Each method is one atomic decision."""

    async def take(self, charges: Sequence[Charge]) -> Admission:
        """Charge every bucket of ``charges``, or none of them (see the module docstring)."""
        ...

    async def add_failure(self, key: str, window_seconds: float) -> None:
        """Count one failure in ``key``'s window; the first failure opens a window of
        ``window_seconds``, later ones fall into it until it ends."""
        ...

    async def failures(self, key: str) -> tuple[int, float]:
        """The failures counted in ``key``'s open window and the seconds it has left
        ((0, 0.0) when no window is open)."""
        ...

    async def close(self) -> None: ...


def refilled(level: float, stamp: float, now: float, rate: Rate) -> float:
    """The tokens a bucket holding ``level`` at ``stamp`` holds at ``now``."""
    return min(rate.burst, level + max(0.0, now - stamp) * rate.per_second)


def shortfall_seconds(level: float, charge: Charge) -> float:
    """How long until a bucket holding ``level`` can pay ``charge`` (0: it can now)."""
    needed = min(charge.cost, charge.rate.burst)
    return 0.0 if level >= needed else (needed - level) / charge.rate.per_second


def decide(levels: Sequence[float], charges: Sequence[Charge]) -> Admission:
    """Admit when every bucket (holding ``levels``) can pay; else the longest wait and the
    limit that imposes it."""
    worst, name = 0.0, None
    for level, charge in zip(levels, charges, strict=True):
        wait = shortfall_seconds(level, charge)
        if wait > worst:
            worst, name = wait, charge.name
    return ALLOWED if name is None else Admission.refused(worst, name)


class MemoryBuckets:
    """Buckets and failure windows in this process (one gateway's own limits).

    ``clock`` (monotonic seconds) is injectable for tests. Buckets full again and windows
    ended are forgotten as the tables grow, so memory follows the active keys.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, Rate]] = {}  # key -> level, stamp, rate
        self._windows: dict[str, tuple[int, float]] = {}  # key -> count, ends at
        self._prune_at = _PRUNE_FLOOR

    async def take(self, charges: Sequence[Charge]) -> Admission:
        now = self._clock()
        levels = [self._level(charge, now) for charge in charges]
        admission = decide(levels, charges)
        if admission.allowed:
            for level, charge in zip(levels, charges, strict=True):
                self._buckets[charge.key] = (level - charge.cost, now, charge.rate)
            self._prune(now)
        return admission

    async def add_failure(self, key: str, window_seconds: float) -> None:
        now = self._clock()
        count, ends = self._windows.get(key, (0, now))
        if ends <= now:
            count, ends = 0, now + window_seconds
        self._windows[key] = (count + 1, ends)
        self._prune(now)

    async def failures(self, key: str) -> tuple[int, float]:
        now = self._clock()
        count, ends = self._windows.get(key, (0, now))
        return (count, ends - now) if ends > now else (0, 0.0)

    async def close(self) -> None:
        self._buckets.clear()
        self._windows.clear()

    def _level(self, charge: Charge, now: float) -> float:
        stored = self._buckets.get(charge.key)
        if stored is None:
            return charge.rate.burst
        level, stamp, _ = stored
        return refilled(level, stamp, now, charge.rate)

    def _prune(self, now: float) -> None:
        """Forget full buckets and ended windows once the tables outgrow the last prune."""
        if len(self._buckets) + len(self._windows) < self._prune_at:
            return
        self._buckets = {
            key: (level, stamp, rate)
            for key, (level, stamp, rate) in self._buckets.items()
            if refilled(level, stamp, now, rate) < rate.burst
        }
        self._windows = {key: value for key, value in self._windows.items() if value[1] > now}
        self._prune_at = max(_PRUNE_FLOOR, 2 * (len(self._buckets) + len(self._windows)))


_PRUNE_FLOOR = 10_000
