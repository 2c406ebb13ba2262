"""A background pass repeated at an interval: retention and the scrub run this way."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio


async def repeat(
    work: Callable[[], Awaitable[object]],
    interval_s: float,
    log: logging.Logger,
    failure: str,
) -> None:
    """Run ``work`` now, then ``interval_s`` seconds after each run ends, until cancelled.
    A run that raises is logged on ``log`` with the message ``failure`` and the loop goes
    on."""
    while True:
        try:
            await work()
        except Exception:
            log.exception(failure)
        await anyio.sleep(interval_s)
