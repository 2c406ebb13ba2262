"""Background jobs under leases in the catalog (policy.jobs, policy.catalog_jobs), on SQLite
and PostgreSQL: a job is taken by one holder at a time, once per interval, recorded and
released; a dead holder's job is taken over once its lease expired; two schedulers on one
database (two catalogs, as two replicas have) run each job once per interval."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import anyio
import pytest

from policy import catalog_jobs
from policy.catalog import SqlCatalog
from policy.catalog_jobs import JobRecord
from policy.jobs import Job, JobRun, JobScheduler
from tests.support.postgres import catalog_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path) as value:
        yield value


async def _open(url: str) -> SqlCatalog:
    catalog = SqlCatalog(url)
    await catalog.start()
    return catalog


@pytest.fixture
async def catalogs(url: str) -> AsyncIterator[tuple[SqlCatalog, SqlCatalog]]:
    """Two catalog objects on one database: what two replicas have."""
    first, second = await _open(url), await _open(url)
    yield first, second
    await first.close()
    await second.close()


async def _claim(
    catalog: SqlCatalog, holder: str, lease_s: float, interval_s: float, now: datetime
) -> bool:
    return await catalog.database.run(
        True,
        partial(
            catalog_jobs.claim,
            name="job",
            holder=holder,
            now=now,
            expires=now + timedelta(seconds=lease_s),
            due=now - timedelta(seconds=interval_s),
        ),
    )


async def _record(catalog: SqlCatalog, name: str = "job") -> JobRecord:
    found = await catalog.database.run(False, partial(catalog_jobs.read, name=name))
    assert found is not None
    return found


async def test_one_holder_at_a_time_once_per_interval(
    catalogs: tuple[SqlCatalog, SqlCatalog],
) -> None:
    a, b = catalogs
    await a.database.run(True, partial(catalog_jobs.ensure, names=["job"]))
    await b.database.run(True, partial(catalog_jobs.ensure, names=["job"]))  # harmless twice
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert await _claim(a, "a", 60, 10, t0)
    assert not await _claim(b, "b", 60, 10, t0 + timedelta(seconds=1))
    held = await _record(b)
    assert (held.holder, held.expires_at, held.last_started_at) == (
        "a",
        t0 + timedelta(seconds=60),
        t0,
    )

    finished = t0 + timedelta(seconds=2)
    assert await a.database.run(
        True,
        partial(
            catalog_jobs.finish,
            name="job",
            holder="a",
            finished=finished,
            duration_s=2.0,
            outcome="ok",
        ),
    )
    done = await _record(b)
    assert done == JobRecord("job", None, None, t0, finished, 2.0, "ok", 1, 0)
    # Free, but not due until an interval after the last start.
    assert not await _claim(b, "b", 60, 10, t0 + timedelta(seconds=9))
    assert await _claim(b, "b", 60, 10, t0 + timedelta(seconds=10))
    # Only the holder renews or finishes.
    assert not await a.database.run(
        True, partial(catalog_jobs.renew, name="job", holder="a", expires=t0)
    )
    assert await b.database.run(
        True, partial(catalog_jobs.renew, name="job", holder="b", expires=t0 + timedelta(hours=1))
    )
    assert not await a.database.run(
        True,
        partial(
            catalog_jobs.finish,
            name="job",
            holder="a",
            finished=t0,
            duration_s=0.0,
            outcome="failed: x",
        ),
    )
    assert (await _record(a)).runs == 1


async def test_an_expired_holder_is_taken_over(catalogs: tuple[SqlCatalog, SqlCatalog]) -> None:
    a, b = catalogs
    await a.database.run(True, partial(catalog_jobs.ensure, names=["job"]))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert await _claim(a, "a", 30, 10, t0)  # a dies holding the job
    assert not await _claim(b, "b", 30, 10, t0 + timedelta(seconds=29))
    assert await _claim(b, "b", 30, 10, t0 + timedelta(seconds=31))
    assert (await _record(a)).holder == "b"


async def test_racing_claims_are_won_by_exactly_one(
    catalogs: tuple[SqlCatalog, SqlCatalog],
) -> None:
    a, b = catalogs
    await a.database.run(True, partial(catalog_jobs.ensure, names=["job"]))
    now = datetime.now(UTC)
    won: list[bool] = []

    async def claim(catalog: SqlCatalog, holder: str) -> None:
        won.append(await _claim(catalog, holder, 60, 10, now))

    async with anyio.create_task_group() as tasks:
        for index in range(8):
            tasks.start_soon(claim, (a, b)[index % 2], f"h{index}")
    assert sorted(won) == [False] * 7 + [True]


async def test_two_schedulers_run_each_job_once_per_interval(
    catalogs: tuple[SqlCatalog, SqlCatalog],
) -> None:
    interval = 0.3
    runs: list[tuple[str, float, float]] = []  # (holder, start, end) of every pass
    running = 0

    def make(holder: str) -> Job:
        async def work() -> None:
            nonlocal running
            running += 1
            assert running == 1, "two passes overlapped"
            start = time.monotonic()
            await anyio.sleep(0.05)
            running -= 1
            runs.append((holder, start, time.monotonic()))

        return Job("job", interval, work)

    schedulers = [
        JobScheduler(catalog.database, [make(name)], lease_s=2, holder=name)
        for catalog, name in zip(catalogs, ("a", "b"), strict=True)
    ]
    started: list[datetime] = []  # as recorded in the lease row
    for scheduler in schedulers:
        scheduler.add_listener(lambda run: started.append(run.started_at))
    window = 1.6
    with anyio.move_on_after(window):
        async with anyio.create_task_group() as tasks:
            for scheduler in schedulers:
                tasks.start_soon(scheduler.run)
    assert runs
    starts = sorted(started)
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= interval for gap in gaps), gaps  # once per interval, across both
    assert len(runs) <= window / interval + 1
    assert len(runs) >= 3  # and it does keep running
    record = await _record(catalogs[0])
    assert record.runs >= len(runs)  # a pass cancelled at the end is counted as failed
    assert record.holder is None  # cancelled at shutdown: released


async def test_a_failing_pass_is_recorded_and_listeners_hear_of_it(
    catalogs: tuple[SqlCatalog, SqlCatalog],
) -> None:
    async def boom() -> None:
        raise RuntimeError("disk on fire")

    scheduler = JobScheduler(catalogs[0].database, [Job("job", 60, boom)], holder="a")
    heard: list[JobRun] = []
    scheduler.add_listener(heard.append)
    await catalogs[0].database.run(True, partial(catalog_jobs.ensure, names=["job"]))
    run = await scheduler.run_once("job")
    assert run is not None
    assert run.outcome == "failed: disk on fire"
    assert heard == [run]
    record = await _record(catalogs[1])
    assert (record.runs, record.failures, record.last_outcome, record.holder) == (
        1,
        1,
        "failed: disk on fire",
        None,
    )
    assert record.last_duration_s is not None
    assert record.last_duration_s >= 0
    assert await scheduler.run_once("job") is None  # not due for another minute
    [status] = await scheduler.statuses()
    assert status.record == record
    assert record.last_started_at is not None
    assert status.next_due_at == record.last_started_at + timedelta(seconds=60)


async def test_a_dead_holders_job_is_taken_over_by_another_scheduler(
    catalogs: tuple[SqlCatalog, SqlCatalog],
) -> None:
    a, b = catalogs
    await a.database.run(True, partial(catalog_jobs.ensure, names=["job"]))
    lease = 0.4
    taken_at = datetime.now(UTC)
    assert await _claim(a, "dead", lease, 0.1, taken_at)  # and never renewed nor released
    ran = anyio.Event()

    async def work() -> None:
        ran.set()

    scheduler = JobScheduler(b.database, [Job("job", 0.1, work)], lease_s=lease, holder="b")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(scheduler.run)
        await ran.wait()
        tasks.cancel_scope.cancel()
    record = await _record(a)
    assert record.last_started_at is not None
    assert record.last_started_at >= taken_at + timedelta(seconds=lease)
    assert record.runs >= 1


async def test_a_pass_that_loses_its_lease_is_cancelled(
    catalogs: tuple[SqlCatalog, SqlCatalog],
) -> None:
    a, b = catalogs
    await a.database.run(True, partial(catalog_jobs.ensure, names=["job"]))
    cancelled = False

    async def work() -> None:
        nonlocal cancelled
        # Another replica takes the job (as after a partition longer than the lease).
        future = datetime.now(UTC) + timedelta(hours=1)
        assert await _claim(b, "thief", 3600, 0, future)
        try:
            await anyio.sleep_forever()
        finally:
            cancelled = True

    scheduler = JobScheduler(a.database, [Job("job", 60, work)], lease_s=0.3, holder="a")
    run = await scheduler.run_once("job")
    assert cancelled
    assert run is not None
    assert run.outcome == "failed: the lease was lost"
    record = await _record(a)
    assert (record.holder, record.runs) == ("thief", 0)  # the loser records nothing
