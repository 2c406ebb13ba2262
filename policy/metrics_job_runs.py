"""The jobs' last runs as every replica sees them: read from the catalog at scrape time.

A replica records the runs it makes itself (``Metrics.job``), but a job runs on one replica
at a time, and a replica that restarted has made none: after every replica restarted, the
last-run gauge would be empty until the job's next run, and ``PagewrightJobNotRun`` would
stay silent about a job that no longer runs. :class:`CatalogJobRuns` sets
``pagewright_job_last_run_timestamp_seconds`` of every job with a finished run from the
catalog's job rows (``policy.catalog_jobs``, shared by the replicas), at most every
``ttl_s`` seconds however often it is scraped. Every replica then exports the same, latest
value. A catalog that cannot be read keeps the values last set (and is logged).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from policy.jobs import JobStatus
from policy.metrics import Metrics
from policy.throttled_refresh import ThrottledRefresh

log = logging.getLogger("pagewright.metrics")

DEFAULT_TTL_S: Final = 15.0


class CatalogJobRuns:
    """Refreshes the last-run gauge from ``statuses()`` (the scheduler's job rows)."""

    def __init__(
        self,
        statuses: Callable[[], Awaitable[list[JobStatus]]],
        metrics: Metrics,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._statuses = statuses
        self._metrics = metrics
        self._refresh = ThrottledRefresh(self._read, ttl_s=ttl_s, clock=clock)

    async def refresh(self) -> None:
        """Re-read the job rows unless they were read less than ``ttl_s`` ago."""
        await self._refresh()

    async def _read(self) -> None:
        try:
            statuses = await self._statuses()
        except Exception:
            log.warning("metrics: reading the jobs' last runs from the catalog failed")
            return
        for status in statuses:
            finished = status.record.last_finished_at
            if finished is not None:
                self._metrics.job_last_run.labels(status.name).set(finished.timestamp())
