"""A circuit breaker around a remote translator (S3, Azure, GCS): fail fast while it is down.

After ``failures`` consecutive calls fail in a way that means "the backend is unavailable"
(``ServiceUnavailable``, ``InternalError`` or ``SlowDown`` from the translator, or any
exception that is not an :class:`S3Error`: a connection error, a timeout), the breaker
*opens*: every call is refused at once with 503 ``ServiceUnavailable`` and a
``Retry-After`` header (whole seconds until the next probe, at least 1) instead of waiting
on the backend's timeouts. ``reset_seconds`` after opening it is *half-open*: one call goes
through as a probe (others are still refused); its success *closes* the breaker, its
failure opens it again for another ``reset_seconds``.

Any other outcome (a success, ``NoSuchKey``, ``PreconditionFailed``, a client's bad body)
shows the backend answering and resets the count. Only the call itself is watched: a
download that fails midway is the stream's failure, seen by the client, not counted here.
``check_ready`` (the readiness probe) goes through the breaker like any call, so a probe
can close it too. The state (``closed``, ``open``, ``half_open``) is :attr:`state`, for the
readiness report and metrics; ``clock`` (monotonic seconds) is injectable for tests.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final, TypeVar

from core.errors import S3Error
from policy.around import AroundBackend
from translators.base import Backend

log = logging.getLogger("pagewright.breaker")

#: The translators that reach a remote service (the others are local to the process).
REMOTE_BACKENDS: Final = frozenset({"s3", "azure", "gcs"})

#: S3 codes from a translator that mean the backend is unavailable, not the request wrong.
UNAVAILABLE_CODES: Final = frozenset({"ServiceUnavailable", "InternalError", "SlowDown"})

DEFAULT_FAILURES: Final = 5
DEFAULT_RESET_SECONDS: Final = 5.0

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def means_unavailable(error: BaseException) -> bool:
    """Whether a call's failure counts against the backend (see the module docstring)."""
    if isinstance(error, S3Error):
        return error.code in UNAVAILABLE_CODES
    return isinstance(error, Exception)


class CircuitBreaker:
    """The breaker's state machine, apart from any Backend (see the module docstring)."""

    def __init__(
        self,
        name: str,
        failures: int = DEFAULT_FAILURES,
        reset_seconds: float = DEFAULT_RESET_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("a breaker needs failures >= 1 and reset_seconds > 0")
        self.name = name
        self.failures = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None  # None: closed
        self._probing = False  # half-open: the one probe call is under way

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds until the next probe may go through (at least 1)."""
        if self._opened_at is None:
            return 1
        left = self._opened_at + self.reset_seconds - self._clock()
        return max(1, math.ceil(left))

    def admit(self) -> bool:
        """Let a call through (True: it is the half-open probe), or raise the 503."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise S3Error(
            "ServiceUnavailable",
            f"The {self.name} backend is unavailable; retry later.",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )

    def succeeded(self, probe: bool) -> None:
        if probe or self._opened_at is not None:
            if self._opened_at is not None:
                log.warning("the %s backend answers again: circuit closed", self.name)
            self._opened_at = None
        if probe:
            self._probing = False
        self._consecutive = 0

    def failed(self, probe: bool) -> None:
        if probe:
            self._probing = False
            self._opened_at = self._clock()
            log.warning("the %s backend is still unavailable: circuit open again", self.name)
            return
        self._consecutive += 1
        if self._opened_at is None and self._consecutive >= self.failures:
            self._opened_at = self._clock()
            log.error(
                "the %s backend failed %d calls in a row: circuit open for %gs",
                self.name,
                self._consecutive,
                self.reset_seconds,
            )

    def abandoned(self, probe: bool) -> None:
        """The call was cancelled: no verdict; a probe's turn passes to the next call."""
        if probe:
            self._probing = False

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run one backend call through the breaker."""
        probe = self.admit()
        try:
            result = await make()
        except BaseException as error:
            if means_unavailable(error):
                self.failed(probe)
            elif isinstance(error, Exception):
                self.succeeded(probe)
            else:
                self.abandoned(probe)
            raise
        self.succeeded(probe)
        return result


class CircuitBreakerBackend(AroundBackend, passes_through={"start", "close"}):
    """Every call of a remote translator through one :class:`CircuitBreaker`."""

    def __init__(self, inner: Backend, breaker: CircuitBreaker) -> None:
        super().__init__(inner)
        self.breaker = breaker

    @property
    def state(self) -> BreakerState:
        return self.breaker.state

    async def around(self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]) -> T:
        return await self.breaker.call(invoke)
