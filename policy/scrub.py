"""The background scrub: re-hash every stored artifact periodically, at a bounded I/O rate.

A ranged GET cannot be checked against an artifact's SHA256 (only a whole-object GET is
re-hashed, see :mod:`policy.validation`), so bytes that rot in storage are found by
``pagewright-gateway verify`` and by this scrub. :meth:`Scrubber.run_periodically` runs in
the server's background task group (``policy.stack.Stack.run``): a pass reads every
artifact of every site straight from the translator through a :class:`policy.verify.Throttle`
(``scrub_rate_bytes`` per second), marks a corrupt one exactly as a failed download does
(logged, ``pagewright_artifact_corrupt_total``, ``corrupt`` in the catalog) and skips the
artifacts the catalog already marks corrupt. The next pass starts ``interval_s`` after one
ends; the first right after the start.
"""

from __future__ import annotations

import logging

from core.context import RequestContext
from policy.metrics import Metrics
from policy.model import Catalog
from policy.periodic import repeat
from policy.verify import Throttle, VerifySummary, artifact_keys, verify_artifact
from translators.base import Backend

log = logging.getLogger(__name__)
_CTX = RequestContext(request_id="scrub", principal="pagewright-scrub")


class Scrubber:
    """Re-hashes the artifacts of ``backend`` (a translator) at ``bytes_per_second``,
    marking corrupt ones in ``catalog``."""

    def __init__(
        self,
        backend: Backend,
        catalog: Catalog,
        bytes_per_second: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._backend = backend
        self._catalog = catalog
        self._rate = bytes_per_second
        self._metrics = metrics

    async def scrub_all(self) -> VerifySummary:
        """One pass over every site; a failing site is logged and the pass goes on."""
        summary = VerifySummary()
        throttle = Throttle(self._rate)
        for bucket in await self._backend.list_buckets(_CTX):
            try:
                await self._scrub_site(bucket.name, throttle, summary)
            except Exception:
                log.exception("scrub: pass over site %s failed", bucket.name)
        log.info("scrub: %s", summary.text(), extra={"corrupt": summary.corrupt_keys})
        return summary

    async def _scrub_site(self, site: str, throttle: Throttle, summary: VerifySummary) -> None:
        async for key in artifact_keys(self._backend, site):
            record = await self._catalog.get(site, key)
            if record is not None and record.corrupt:
                continue
            result = await verify_artifact(
                self._backend, site, key, self._catalog, throttle, metrics=self._metrics
            )
            if result is not None:
                summary.add(result)

    async def run_periodically(self, interval_s: float) -> None:
        """Scrub, then wait ``interval_s`` seconds, until cancelled; a failing pass is
        logged and the loop goes on."""
        record = self._metrics.job("scrub") if self._metrics is not None else None
        await repeat(self.scrub_all, interval_s, log, "scrub: pass failed", record)
