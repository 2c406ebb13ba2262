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
from typing import TypeVar

from core.errors import S3Error
from policy.around import AroundBackend
from policy.background_start import FIRST_DELAY_S, MAX_DELAY_S, BackgroundStart
from translators.base import Backend

log = logging.getLogger("pagewright.backend_start")

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
        self.starts = BackgroundStart(
            inner.start,
            _message,
            what=f"the {inner.name} backend",
            log=log,
            first_delay_s=first_delay_s,
            max_delay_s=max_delay_s,
        )

    @property
    def started(self) -> bool:
        return self.starts.started

    @property
    def last_error(self) -> str:
        return self.starts.last_error

    @property
    def state(self) -> str:
        return self.starts.state

    async def start(self) -> None:
        """Try to start the backend once; a failure is kept in :attr:`last_error`."""
        await self.starts.try_start()

    async def keep_starting(self) -> None:
        """Retry the start with a doubling delay until it succeeds."""
        if not self.started:
            await self.starts.keep_starting()
            log.warning("the %s backend started: the gateway is ready", self.name)

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


def _message(error: Exception) -> str:
    """Every failure to start is an outage, kept as its message."""
    return error.message if isinstance(error, S3Error) else str(error)
