"""A start that may fail for a while: tried once, then retried in the background.

What ``policy.backend_start`` (the backend) and ``policy.catalog_start`` (a remote catalog)
share. :meth:`BackgroundStart.try_start` makes one attempt: a failure that ``outage``
describes (an outage that ends by itself) is kept in :attr:`~BackgroundStart.last_error`;
any other is raised. :meth:`BackgroundStart.keep_starting` retries with a doubling delay
(from ``first_delay_s`` up to ``max_delay_s``) until the start succeeds; there every failure
is retried, one that is not an outage logged on ``log``. :attr:`~BackgroundStart.state` is
``starting`` or ``started``, for the readiness report.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import anyio

FIRST_DELAY_S: Final = 0.5
MAX_DELAY_S: Final = 5.0


class BackgroundStart:
    """Starts with ``start()`` (module docstring). ``outage(error)`` is the message kept for
    a failure that is an outage, or None for one to raise; ``what`` names what starts in
    the log (``the catalog database``)."""

    def __init__(
        self,
        start: Callable[[], Awaitable[None]],
        outage: Callable[[Exception], str | None],
        *,
        what: str,
        log: logging.Logger,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self.started = False
        self.last_error = ""
        self._start = start
        self._outage = outage
        self._what = what
        self._log = log
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s

    @property
    def state(self) -> str:
        return "started" if self.started else "starting"

    async def try_start(self) -> bool:
        """Start once; whether it started. An outage is kept in :attr:`last_error`, any
        other failure raised."""
        try:
            await self._start()
        except Exception as error:
            message = self._outage(error)
            if message is None:
                raise
            self.last_error = message
            return False
        self.started = True
        self.last_error = ""
        return True

    async def keep_starting(self) -> None:
        """Retry :meth:`try_start` with a doubling delay until it succeeds. Here every
        failure is retried (one that is not an outage is logged)."""
        delay = self._first_delay_s
        while not self.started:
            await anyio.sleep(delay)
            try:
                await self.try_start()
            except Exception as error:  # half-started, say: logged, retried all the same
                self.last_error = str(error)
                self._log.exception("%s could not start; retrying", self._what)
            delay = min(delay * 2, self._max_delay_s)
