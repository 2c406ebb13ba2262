"""The storage volume's free space and floor (policy.metrics_volume): measured at scrape time
on the filesystem backend, as ``statvfs`` sees the data directory; absent on the memory
backend; left out of a scrape whose measure fails."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from prometheus_client.metrics_core import Metric

from core.errors import S3Error
from policy.metrics import Metrics
from policy.metrics_volume import VolumeSpaceCollector
from policy.model import SitePolicy
from policy.stack import build_stack
from tests.support.metrics import parse, scrape
from tests.support.servers import running_gateway
from translators.base import VolumeSpace
from translators.filesystem.backend import FilesystemBackend
from translators.memory.backend import MemoryBackend

MiB = 1024**2
#: What other processes on the machine may write or free between two measures.
SLACK = 16 * MiB


def available(path: Path) -> int:
    """The bytes an unprivileged writer may still use on ``path``'s volume."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def samples(families: dict[str, Metric], name: str) -> list[float]:
    return [sample.value for sample in families[name].samples]


def assert_measured(families: Callable[[], dict[str, Metric]], path: Path) -> None:
    """The scrape's free bytes lie between ``statvfs`` of ``path`` before and after it."""
    before = available(path)
    (free,) = samples(families(), "pagewright_free_bytes")
    after = available(path)
    assert min(before, after) - SLACK <= free <= max(before, after) + SLACK


def stack_metrics(translator: MemoryBackend | FilesystemBackend, tmp_path: Path) -> Metrics:
    catalog = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(translator, catalog, SitePolicy(), 1024, min_free_bytes=8 * MiB)
    return stack.metrics


def scraped(metrics: Metrics) -> dict[str, Metric]:
    return parse(anyio.run(metrics.scrape).decode())


def test_the_filesystem_volume_is_measured_at_each_scrape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "storage"
    metrics = stack_metrics(FilesystemBackend(root, fsync=False), tmp_path)
    # Not started, no directory yet: nothing to measure; the floor is known all the same.
    with caplog.at_level(logging.WARNING, logger="pagewright.metrics"):
        families = scraped(metrics)
    assert samples(families, "pagewright_free_bytes") == []
    assert samples(families, "pagewright_min_free_bytes") == [8 * MiB]
    assert "free space failed" in caplog.text
    root.mkdir()
    assert_measured(lambda: scraped(metrics), root)


def test_the_memory_backend_has_no_volume(tmp_path: Path) -> None:
    families = scraped(stack_metrics(MemoryBackend(), tmp_path))
    assert samples(families, "pagewright_free_bytes") == []
    assert samples(families, "pagewright_min_free_bytes") == []


class CountingVolume:
    """A volume that counts how often it is measured."""

    def __init__(self) -> None:
        self.measures = 0

    def volume_space(self) -> VolumeSpace:
        self.measures += 1
        if self.measures == 2:
            raise S3Error("ServiceUnavailable", "The storage volume cannot be measured.")
        return VolumeSpace(free=5 * MiB, total=10 * MiB)


def test_the_volume_is_measured_once_per_scrape_and_a_failure_skips_one() -> None:
    volume = CountingVolume()
    metrics = Metrics(process=False)
    metrics.registry.register(VolumeSpaceCollector(volume, 0))
    assert volume.measures == 0  # registering does not measure
    assert samples(scraped(metrics), "pagewright_free_bytes") == [5 * MiB]
    assert samples(scraped(metrics), "pagewright_free_bytes") == []
    families = scraped(metrics)
    assert samples(families, "pagewright_free_bytes") == [5 * MiB]
    assert samples(families, "pagewright_min_free_bytes") == [0]
    assert volume.measures == 3


@pytest.mark.server
def test_a_gateway_on_the_filesystem_backend_exports_its_free_space(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_gateway(data_dir, env={"PWG_MIN_FREE_BYTES": str(32 * MiB)}) as server:
        assert_measured(lambda: scrape(server), data_dir)
        assert samples(scrape(server), "pagewright_min_free_bytes") == [32 * MiB]
