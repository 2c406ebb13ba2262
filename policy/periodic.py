"""A background pass repeated at an interval: retention and the scrub run this way."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio


async def repeat(
    work: Callable[[], Awaitable[object]],
    interval_s: float,
    log: logging.Logger,
    failure: str,
    record: Callable[[bool, float], None] | None = None,
) -> None:
    """Run ``work`` now, then ``interval_s`` seconds after each run ends, until cancelled.
    A run that raises is logged on ``log`` with the message ``failure`` and the loop goes
    on. ``record(succeeded, seconds)`` is told of each run that ended (the job metrics,
    ``policy.metrics.Metrics.job``)."""
    while True:
        started = time.monotonic()
        succeeded = True
        try:
            await work()
        except Exception:
            succeeded = False
            log.exception(failure)
        if record is not None:
            record(succeeded, time.monotonic() - started)
        await anyio.sleep(interval_s)
