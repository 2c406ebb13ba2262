"""The storage volume's free space, read at scrape time.

:class:`VolumeSpaceCollector` exports ``pagewright_free_bytes`` (the free bytes of the volume
of a translator with a local volume, :class:`translators.base.LocalVolume`: the filesystem
translator) and ``pagewright_min_free_bytes`` (the floor under which writes are refused with
507, ``policy.free_space``; 0: no floor). The volume is measured once per scrape (one
``statvfs``, as before every write), never per request. Translators without a local volume
(S3, Azure, GCS, memory) have neither sample. A measure that fails (the store's directory
gone) leaves ``pagewright_free_bytes`` out of that scrape and is logged; readiness reports
the same fault.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from translators.base import LocalVolume

log = logging.getLogger("pagewright.metrics")


class VolumeSpaceCollector(Collector):
    """The free bytes of ``volume`` (None: the translator has no local volume) and its
    ``min_free_bytes`` floor."""

    def __init__(self, volume: LocalVolume | None, min_free_bytes: int) -> None:
        self._volume = volume
        self._min_free_bytes = min_free_bytes

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        free = None
        if self._volume is not None:
            try:
                free = self._volume.volume_space().free
            except Exception as error:
                log.warning("metrics: measuring the storage volume's free space failed: %s", error)
        return self._families(free)

    def _families(self, free: int | None) -> list[Metric]:
        free_bytes = GaugeMetricFamily(
            "pagewright_free_bytes",
            "Free bytes of the storage volume (only a backend with a local volume).",
        )
        floor = GaugeMetricFamily(
            "pagewright_min_free_bytes",
            "Writes are refused (507) when they would leave less free (min_free_bytes; 0: off).",
        )
        if free is not None:
            free_bytes.add_metric([], free)
        if self._volume is not None:
            floor.add_metric([], self._min_free_bytes)
        return [free_bytes, floor]
