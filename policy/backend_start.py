"""A backend that could not start does not stop the gateway: it starts again in the background.

:class:`StartingBackend` wraps the translator. :meth:`StartingBackend.start` tries once;
when that fails the gateway serves anyway, not ready: every call (and the readiness check)
is refused at once with 503 ``ServiceUnavailable`` naming the backend, while
:meth:`StartingBackend.keep_starting` retries ``start()`` with a doubling delay (from
``first_delay_s`` up to ``max_delay_s``) until it succeeds. From then on it forwards
everything. :attr:`state` is ``starting`` or ``started``, for the readiness report.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio

from core.errors import S3Error
from policy.around import AroundBackend
from translators.base import Backend

log = logging.getLogger("pagewright.backend_start")

FIRST_DELAY_S: Final = 0.5
MAX_DELAY_S: Final = 5.0

T = TypeVar("T")


class StartingBackend(AroundBackend, passes_through={"close"}):
    """Refuses every call with 503 until the wrapped backend has started."""

    def __init__(
        self,
        inner: Backend,
        *,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        super().__init__(inner)
        self.started = False
        self.last_error = ""
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s

    @property
    def state(self) -> str:
        return "started" if self.started else "starting"

    async def start(self) -> None:
        """Try to start the backend once; a failure is kept in :attr:`last_error`."""
        await self.try_start()

    async def try_start(self) -> bool:
        """Start the backend; whether it started."""
        try:
            await self.inner.start()
        except Exception as error:
            self.last_error = error.message if isinstance(error, S3Error) else str(error)
            return False
        self.started = True
        self.last_error = ""
        return True

    async def keep_starting(self) -> None:
        """Retry :meth:`try_start` with a doubling delay until it succeeds."""
        delay = self._first_delay_s
        while not self.started:
            await anyio.sleep(delay)
            if await self.try_start():
                log.warning("the %s backend started: the gateway is ready", self.name)
                return
            delay = min(delay * 2, self._max_delay_s)

    def _require_started(self) -> None:
        if not self.started:
            raise S3Error(
                "ServiceUnavailable",
                f"The {self.name} backend has not started yet; retry later.",
                headers={"Retry-After": "1"},
            )

    async def around(self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]) -> T:
        self._require_started()
        return await invoke()
