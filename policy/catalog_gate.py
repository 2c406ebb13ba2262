"""Writes wait for the catalog: refused with 503 while a remote catalog database is down.

:class:`policy.catalog_backend.CatalogBackend` records each committed write in the catalog
after the backend took it, and logs (never fails) a record that cannot be written, since
the backend is the truth. During a catalog outage that would acknowledge writes the catalog
never sees (quotas, listings of artifacts, retention). So, before a write, the
:class:`CatalogGate` asks whether the catalog answered within ``fresh_s`` seconds (a
successful record counts); if not it probes it (``probe``: ``SqlCatalog.check_ready``), and
a failed probe or a failed record refuses writes with 503 ``ServiceUnavailable`` and
``Retry-After: 1`` until a probe succeeds again. Reads never pass through the gate.

Used for a remote catalog (PostgreSQL) only: a local SQLite file has no network outage,
and probing its write lock under contention would refuse writes that would have waited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio

from core.errors import S3Error

log = logging.getLogger("pagewright.catalog_gate")

FRESH_S: Final = 1.0
PROBE_TIMEOUT_S: Final = 2.0


class CatalogGate:
    """Whether a write may start now (see the module docstring)."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[None]],
        *,
        fresh_s: float = FRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._fresh_s = fresh_s
        self._clock = clock
        self._answered_at: float | None = None
        self.down = False

    async def require(self) -> None:
        """Return when the catalog answered lately or answers a probe now; else 503."""
        now = self._clock()
        if (
            not self.down
            and self._answered_at is not None
            and now - self._answered_at < self._fresh_s
        ):
            return
        try:
            with anyio.fail_after(PROBE_TIMEOUT_S):
                await self._probe()
        except (S3Error, TimeoutError) as error:
            self.failed(error)
            raise S3Error(
                "ServiceUnavailable",
                "The catalog database is unavailable: writes are refused until it is back.",
                headers={"Retry-After": "1"},
            ) from error
        self.answered()

    def answered(self) -> None:
        if self.down:
            log.warning("the catalog answers again: writes are accepted")
        self.down = False
        self._answered_at = self._clock()

    def failed(self, error: BaseException) -> None:
        if not self.down:
            log.error("the catalog is unavailable (%s): writes are refused", error)
        self.down = True
        self._answered_at = None
