"""Per-site gauges read from the catalog at scrape time, cached, with a bounded label set.

:class:`SiteUsageCollector` exports ``pagewright_site_stored_bytes{site}``,
``pagewright_site_artifacts{site}`` and ``pagewright_site_quota_usage_ratio{site}`` from a
snapshot that :meth:`~SiteUsageCollector.refresh` re-reads at most once per ``ttl_s`` (one
grouped catalog read, ``SqlCatalog.usage_by_site``), so however often and however many
scrapers ask, the catalog is read at most that often. A failed read is logged and the
previous snapshot kept.

Cardinality is bounded: the ``max_sites`` largest sites by stored bytes get their own
``site`` label; the rest are summed under ``site="_other"`` (no bucket name starts with
``_``, so it never names a real site). The quota ratio is exported only for labelled sites
with a quota: the larger of (bytes + reserved bytes) / ``quota_bytes`` and (artifacts +
reserved artifacts) / ``quota_artifacts``, as the quota check counts them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from policy.model import SitePolicy, Usage
from policy.throttled_refresh import ThrottledRefresh

log = logging.getLogger(__name__)

#: The label of the sites beyond ``max_sites``, summed.
OTHER_SITES = "_other"
DEFAULT_TTL_S = 15.0


@dataclass(frozen=True)
class SiteSnapshot:
    """The gauges' values: per site label, bytes, artifacts and (if any quota) the ratio."""

    stored_bytes: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, int] = field(default_factory=dict)
    quota_ratio: dict[str, float] = field(default_factory=dict)


def quota_ratio(usage: Usage, policy: SitePolicy) -> float | None:
    """How full the site's nearest quota is (None: no quota set)."""
    ratios = []
    if policy.quota_bytes:
        ratios.append((usage.bytes + usage.reserved_bytes) / policy.quota_bytes)
    if policy.quota_artifacts:
        ratios.append((usage.artifacts + usage.reserved_artifacts) / policy.quota_artifacts)
    return max(ratios) if ratios else None


async def take_snapshot(
    usage: dict[str, Usage],
    policies: Callable[[str], Awaitable[SitePolicy]],
    max_sites: int,
) -> SiteSnapshot:
    """The gauges for ``usage``: the ``max_sites`` largest sites by bytes (ties by name) by
    name, the others summed under :data:`OTHER_SITES`."""
    ordered = sorted(usage.items(), key=lambda item: (-item[1].bytes, item[0]))
    snapshot = SiteSnapshot()
    for site, used in ordered[:max_sites]:
        snapshot.stored_bytes[site] = used.bytes
        snapshot.artifacts[site] = used.artifacts
        ratio = quota_ratio(used, await policies(site))
        if ratio is not None:
            snapshot.quota_ratio[site] = ratio
    rest = ordered[max_sites:]
    if rest:
        snapshot.stored_bytes[OTHER_SITES] = sum(used.bytes for _, used in rest)
        snapshot.artifacts[OTHER_SITES] = sum(used.artifacts for _, used in rest)
    return snapshot


class SiteUsageCollector(Collector):
    """The per-site gauges (module docstring). ``usage`` reads every site's usage;
    ``policies(site)`` gives a site's effective policy (its quotas)."""

    def __init__(
        self,
        usage: Callable[[], Awaitable[dict[str, Usage]]],
        policies: Callable[[str], Awaitable[SitePolicy]],
        max_sites: int,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._usage = usage
        self._policies = policies
        self._max_sites = max_sites
        self._refresh = ThrottledRefresh(self._read, ttl_s=ttl_s, clock=clock)
        self.snapshot = SiteSnapshot()

    async def refresh(self) -> None:
        """Re-read the catalog unless the snapshot is younger than ``ttl_s``. Concurrent
        scrapes wait for one read rather than each making their own."""
        await self._refresh()

    async def _read(self) -> None:
        try:
            usage = await self._usage()
            self.snapshot = await take_snapshot(usage, self._policies, self._max_sites)
        except Exception:
            log.warning("metrics: reading site usage from the catalog failed", exc_info=True)

    def describe(self) -> Iterable[Metric]:
        return self._families(SiteSnapshot())

    def collect(self) -> Iterable[Metric]:
        return self._families(self.snapshot)

    @staticmethod
    def _families(snapshot: SiteSnapshot) -> list[Metric]:
        stored = GaugeMetricFamily(
            "pagewright_site_stored_bytes",
            "Bytes of committed objects stored for the site (catalog).",
            labels=["site"],
        )
        artifacts = GaugeMetricFamily(
            "pagewright_site_artifacts", "Artifacts stored for the site (catalog).", labels=["site"]
        )
        ratio = GaugeMetricFamily(
            "pagewright_site_quota_usage_ratio",
            "Use of the site's nearest quota (1 = full); only for sites with a quota.",
            labels=["site"],
        )
        for site, value in snapshot.stored_bytes.items():
            stored.add_metric([site], value)
        for site, count in snapshot.artifacts.items():
            artifacts.add_metric([site], count)
        for site, share in snapshot.quota_ratio.items():
            ratio.add_metric([site], share)
        return [stored, artifacts, ratio]
