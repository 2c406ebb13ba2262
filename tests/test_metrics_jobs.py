"""The background jobs' metrics (``policy.periodic.repeat``'s hook, the configured
intervals), the per-site snapshot's cap and cache, and the backend-call outcomes, without a
server."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import anyio
import pytest

from core.context import RequestContext
from core.errors import S3Error
from policy import catalog_jobs
from policy.housekeeping import JobSettings
from policy.metrics import Metrics
from policy.metrics_backend import MeasuredBackend
from policy.metrics_sites import OTHER_SITES, SiteUsageCollector, quota_ratio, take_snapshot
from policy.model import SitePolicy, Usage
from policy.periodic import repeat
from policy.stack import build_stack
from tests.support.metrics import parse, value
from translators.memory.backend import MemoryBackend

CTX = RequestContext(request_id="metrics-test", principal="tester")


def test_repeat_records_each_run_and_its_outcome() -> None:
    metrics = Metrics(process=False)
    runs = 0

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def work() -> None:
                nonlocal runs
                runs += 1
                if runs == 2:
                    raise RuntimeError("a failing pass")
                if runs == 3:
                    group.cancel_scope.cancel()

            group.start_soon(
                repeat, work, 0, logging.getLogger("test"), "failed", metrics.job("retention")
            )

    anyio.run(main)
    families = parse(metrics_text(metrics))
    # the third run ends normally; the cancellation comes in the sleep after it
    assert value(families, "pagewright_job_runs_total", job_name="retention", outcome="ok") == 2
    assert value(families, "pagewright_job_runs_total", job_name="retention", outcome="error") == 1
    assert value(families, "pagewright_job_duration_seconds_count", job_name="retention") == 3
    assert value(families, "pagewright_job_last_run_timestamp_seconds", job_name="retention") > 0


def metrics_text(metrics: Metrics) -> str:
    return anyio.run(metrics.scrape).decode()


def test_backend_calls_count_their_outcome() -> None:
    metrics = Metrics(process=False)
    backend = MeasuredBackend(MemoryBackend(), metrics)

    async def main() -> None:
        await backend.create_bucket(CTX, "a-site")
        with pytest.raises(S3Error):
            await backend.head_object(CTX, "a-site", "missing")
        with pytest.raises(S3Error):
            await backend.create_bucket(CTX, "a-site")

    anyio.run(main)
    families = parse(metrics_text(metrics))
    calls = "pagewright_backend_calls_total"
    assert value(families, calls, backend="memory", call="create_bucket", outcome="ok") == 1
    assert value(families, calls, backend="memory", call="head_object", outcome="NoSuchKey") == 1
    assert (
        value(
            families,
            calls,
            backend="memory",
            call="create_bucket",
            outcome="BucketAlreadyOwnedByYou",
        )
        == 1
    )


def usage(size: int, artifacts: int = 0, reserved: int = 0) -> Usage:
    return Usage(bytes=size, objects=artifacts, artifacts=artifacts, reserved_bytes=reserved)


def test_quota_ratio_is_the_nearest_quota() -> None:
    assert quota_ratio(usage(100), SitePolicy()) is None
    assert quota_ratio(usage(100, reserved=50), SitePolicy(quota_bytes=1000)) == 0.15
    both = SitePolicy(quota_bytes=1000, quota_artifacts=4)
    assert quota_ratio(usage(100, artifacts=3), both) == 0.75


def test_the_snapshot_caps_sites_and_sums_the_rest() -> None:
    sites = {"small": usage(1, 1), "big": usage(100, 2), "mid": usage(50, 3), "tie": usage(50, 4)}

    async def policies(site: str) -> SitePolicy:
        return SitePolicy(quota_bytes=200) if site == "big" else SitePolicy()

    snapshot = anyio.run(take_snapshot, sites, policies, 2)
    assert snapshot.stored_bytes == {"big": 100, "mid": 50, OTHER_SITES: 51}
    assert snapshot.artifacts == {"big": 2, "mid": 3, OTHER_SITES: 5}
    assert snapshot.quota_ratio == {"big": 0.5}
    none = anyio.run(take_snapshot, sites, policies, 0)
    assert none.stored_bytes == {OTHER_SITES: 201}


def test_the_catalog_is_read_at_most_once_per_ttl() -> None:
    reads = 0
    now = 1000.0

    async def read() -> dict[str, Usage]:
        nonlocal reads
        reads += 1
        return {"a-site": usage(reads)}

    async def policies(site: str) -> SitePolicy:
        return SitePolicy()

    collector = SiteUsageCollector(read, policies, 10, ttl_s=15, clock=lambda: now)

    async def main() -> None:
        nonlocal now
        await collector.refresh()
        await collector.refresh()
        now += 14
        await collector.refresh()
        assert reads == 1
        now += 2
        await collector.refresh()
        assert reads == 2

    anyio.run(main)
    assert collector.snapshot.stored_bytes == {"a-site": 2}


def test_a_failing_catalog_keeps_the_last_snapshot() -> None:
    now = 0.0
    fail = False

    async def read() -> dict[str, Usage]:
        if fail:
            raise S3Error("ServiceUnavailable")
        return {"a-site": usage(7)}

    async def policies(site: str) -> SitePolicy:
        return SitePolicy()

    collector = SiteUsageCollector(read, policies, 10, ttl_s=15, clock=lambda: now)
    anyio.run(collector.refresh)
    fail, now = True, 100.0
    anyio.run(collector.refresh)
    assert collector.snapshot.stored_bytes == {"a-site": 7}


def test_the_stacks_scheduler_counts_its_runs(tmp_path: Path) -> None:
    """build_stack wires the job scheduler's run listener to the metrics."""
    stack = build_stack(
        MemoryBackend(), f"sqlite:///{tmp_path / 'catalog.sqlite3'}", SitePolicy(), 1024
    )
    assert stack.jobs is not None
    scheduler = stack.jobs

    async def main() -> None:
        await stack.catalog.start()
        await stack.backend.start()
        try:
            names = ["retention"]
            await stack.catalog.database.run(True, partial(catalog_jobs.ensure, names=names))
            run = await scheduler.run_once("retention")
            assert run is not None
            assert run.ok
        finally:
            await stack.catalog.close()

    anyio.run(main)
    families = parse(metrics_text(stack.metrics))
    assert value(families, "pagewright_job_runs_total", job_name="retention", outcome="ok") == 1
    assert value(families, "pagewright_job_duration_seconds_count", job_name="retention") == 1


def test_the_stacks_jobs_export_their_configured_intervals(tmp_path: Path) -> None:
    """Every job's interval, as configured, from the start: 0 for a job turned off."""
    jobs = JobSettings(retention_s=120.0, scrub_s=86400.0, sweep_staging_s=0.0)
    stack = build_stack(
        MemoryBackend(), f"sqlite:///{tmp_path / 'catalog.sqlite3'}", SitePolicy(), 1024, jobs=jobs
    )
    families = parse(metrics_text(stack.metrics))
    intervals = {
        sample.labels["job_name"]: sample.value
        for sample in families["pagewright_job_interval_seconds"].samples
    }
    assert intervals == {
        "retention": 120.0,
        "scrub": 86400.0,
        "reclaim-reservations": JobSettings.reclaim_reservations_s,
        "sweep-staging": 0.0,
        "abort-abandoned-uploads": JobSettings.abort_abandoned_uploads_s,
        "lifecycle": JobSettings.lifecycle_s,
    }


def test_a_run_another_replica_made_is_exported_from_the_catalog(tmp_path: Path) -> None:
    """The last-run gauge comes from the shared catalog: a process that made no run itself
    (a replica just restarted) exports the run another replica recorded."""
    from datetime import UTC, datetime

    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(MemoryBackend(), url, SitePolicy(), 1024)
    finished = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    async def main() -> None:
        await stack.catalog.start()
        try:
            database = stack.catalog.database
            await database.run(True, partial(catalog_jobs.ensure, names=["scrub"]))
            expires = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
            claimed = await database.run(
                True,
                partial(
                    catalog_jobs.claim,
                    name="scrub",
                    holder="other-replica",
                    now=finished,
                    expires=expires,
                    due=finished,
                ),
            )
            assert claimed
            await database.run(
                True,
                partial(
                    catalog_jobs.finish,
                    name="scrub",
                    holder="other-replica",
                    finished=finished,
                    duration_s=3.0,
                    outcome="ok",
                ),
            )
            families = parse((await stack.metrics.scrape()).decode())
        finally:
            await stack.catalog.close()
        gauge = "pagewright_job_last_run_timestamp_seconds"
        assert value(families, gauge, job_name="scrub") == finished.timestamp()
        assert value(families, "pagewright_job_runs_total", job_name="scrub", outcome="ok") == 0

    anyio.run(main)
