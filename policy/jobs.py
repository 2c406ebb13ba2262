"""Background jobs, each run by one replica at a time on a schedule (:class:`JobScheduler`).

A job is a name, an interval and an idempotent pass (retention, the scrub, reclaiming
quota reservations, sweeping leftovers, aborting abandoned uploads: see
:func:`policy.housekeeping.standard_jobs`). Every replica sharing the catalog runs a
scheduler over the same jobs; the catalog's ``jobs`` table (policy.catalog_jobs) keeps
them to one run at a time, across replicas, once per interval:

* A run starts only by taking the job's lease in one conditional ``UPDATE``: nobody holds
  it (or the lease expired) and its last run started at least an interval ago.
* The holder renews the lease every third of its lifetime while the pass runs. A renewal
  that finds the lease gone (the database was unreachable for a whole lifetime and another
  replica took over) cancels the pass: passes are idempotent, the other replica redoes it.
* At the end the holder records the duration and the outcome (``ok`` or
  ``failed: <reason>``), counts the run (and the failure) and releases the lease.
* A holder that dies stops renewing: its lease expires and the next replica to look takes
  the job over. At shutdown a run in progress is cancelled and its lease released.

The lease lives in the catalog rather than in Redis because replicas share the catalog
anyway (PostgreSQL), and SQLite (one host) works the same way; Redis is not needed.

Listeners (:meth:`JobScheduler.add_listener`) are told of every finished run, in this
process, with its name, duration and outcome: the place for metrics.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final

import anyio

from core.errors import S3Error
from policy import catalog_jobs
from policy.catalog_database import CatalogDatabase
from policy.catalog_jobs import JobRecord

log = logging.getLogger("pagewright.jobs")

#: Default job lease: a dead holder's job is taken over after it.
DEFAULT_JOB_LEASE_S: Final = 60.0
_MAX_REASON: Final = 300


@dataclass(frozen=True)
class Job:
    """A named pass run every ``interval_s`` seconds (0: off, never run)."""

    name: str
    interval_s: float
    work: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class JobRun:
    """A finished run, as told to listeners."""

    name: str
    started_at: datetime
    duration_s: float
    outcome: str

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class JobStatus:
    """A job's schedule and its row (what the admin API shows)."""

    name: str
    interval_s: float
    record: JobRecord

    @property
    def next_due_at(self) -> datetime | None:
        """When the job may next start (None: off, or never run: at once)."""
        started = self.record.last_started_at
        if self.interval_s <= 0 or started is None:
            return None
        return started + timedelta(seconds=self.interval_s)


RunListener = Callable[[JobRun], None]


def holder_id() -> str:
    """This process, readably: ``<host>/<pid>/<random>`` (random: a restarted process with
    a reused PID is another holder)."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


def outcome_of(error: BaseException) -> str:
    reason = error.message if isinstance(error, S3Error) else str(error)
    return f"failed: {(reason or type(error).__name__)[:_MAX_REASON]}"


class JobScheduler:
    """Runs ``jobs`` on the catalog ``database`` (started by its owner), one replica at a
    time (see the module docstring). ``lease_s``: the lease lifetime."""

    def __init__(
        self,
        database: CatalogDatabase,
        jobs: Sequence[Job],
        *,
        lease_s: float = DEFAULT_JOB_LEASE_S,
        holder: str | None = None,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be distinct: {names}")
        self._database = database
        self.jobs = {job.name: job for job in jobs}
        self._lease = timedelta(seconds=lease_s)
        self.holder = holder or holder_id()
        self._listeners: list[RunListener] = []

    def add_listener(self, listener: RunListener) -> None:
        """Call ``listener`` after every run this process finishes; it must not raise."""
        self._listeners.append(listener)

    async def run(self) -> None:
        """Schedule every job that is on, until cancelled. The jobs' rows are created first,
        retried while the catalog is unreachable (nothing here ever stops the gateway)."""
        while True:
            try:
                await self._database.run(True, partial(catalog_jobs.ensure, names=list(self.jobs)))
                break
            except Exception:
                log.exception("jobs: cannot prepare the jobs' rows; retrying")
                await anyio.sleep(self._lease.total_seconds() / 4)
        async with anyio.create_task_group() as tasks:
            for job in self.jobs.values():
                if job.interval_s > 0:
                    tasks.start_soon(self._schedule, job)

    async def _schedule(self, job: Job) -> None:
        while True:
            try:
                await self.run_once(job.name)
                wait = await self._until_due(job)
            except Exception:
                log.exception("jobs: scheduling %s failed", job.name)
                wait = job.interval_s
            await anyio.sleep(wait)

    async def _until_due(self, job: Job) -> float:
        """Seconds until ``job`` may start again (or its holder's lease runs out), at most an
        interval and at least a small step."""
        record = await self._database.run(False, partial(catalog_jobs.read, name=job.name))
        now = datetime.now(UTC)
        due = now + timedelta(seconds=job.interval_s)
        if record is not None and record.last_started_at is not None:
            due = record.last_started_at + timedelta(seconds=job.interval_s)
        if record is not None and record.holder is not None and record.expires_at is not None:
            due = max(due, record.expires_at)
        step = min(job.interval_s, self._lease.total_seconds()) / 20
        return min(job.interval_s, max((due - now).total_seconds(), step))

    async def run_once(self, name: str) -> JobRun | None:
        """Take job ``name`` if it is free and due, run it, record and release it; the run,
        or None when it was not taken."""
        job = self.jobs[name]
        now = datetime.now(UTC)
        due = now - timedelta(seconds=job.interval_s)
        taken = await self._database.run(
            True,
            partial(
                catalog_jobs.claim,
                name=name,
                holder=self.holder,
                now=now,
                expires=now + self._lease,
                due=due,
            ),
        )
        if not taken:
            return None
        started = time.monotonic()
        outcome = "failed: cancelled (the gateway stopped)"
        try:
            outcome = await self._run_holding(job)
        finally:
            duration = time.monotonic() - started
            with anyio.CancelScope(shield=True):
                await self._finish(job, now, duration, outcome)
        return JobRun(name, now, duration, outcome)

    async def _run_holding(self, job: Job) -> str:
        """Run ``job``'s pass while renewing its lease; its outcome."""
        outcome = "ok"
        async with anyio.create_task_group() as tasks:

            async def renewing() -> None:
                nonlocal outcome
                while True:
                    await anyio.sleep(self._lease.total_seconds() / 3)
                    if not await self._renew(job.name):
                        outcome = "failed: the lease was lost"
                        log.error("jobs: %s lost its lease; its pass is cancelled", job.name)
                        tasks.cancel_scope.cancel()
                        return

            tasks.start_soon(renewing)
            try:
                await job.work()
            except Exception as error:
                log.exception("jobs: %s failed", job.name)
                outcome = outcome_of(error)
            tasks.cancel_scope.cancel()
        return outcome

    async def _renew(self, name: str) -> bool:
        expires = datetime.now(UTC) + self._lease
        try:
            return await self._database.run(
                True,
                partial(catalog_jobs.renew, name=name, holder=self.holder, expires=expires),
            )
        except Exception:
            log.exception("jobs: renewing the lease of %s failed", name)
            return True  # not known lost: keep going until the next renewal

    async def _finish(self, job: Job, started: datetime, duration: float, outcome: str) -> None:
        try:
            recorded = await self._database.run(
                True,
                partial(
                    catalog_jobs.finish,
                    name=job.name,
                    holder=self.holder,
                    finished=datetime.now(UTC),
                    duration_s=duration,
                    outcome=outcome,
                ),
            )
        except Exception:
            log.exception("jobs: recording the run of %s failed", job.name)
            recorded = False
        if not recorded:
            log.warning("jobs: the run of %s was not recorded (lease lost)", job.name)
        log.info(
            "jobs: %s finished",
            job.name,
            extra={
                "job": job.name,
                "holder": self.holder,
                "duration_s": round(duration, 3),
                "outcome": outcome,
            },
        )
        run = JobRun(job.name, started, duration, outcome)
        for listener in self._listeners:
            try:
                listener(run)
            except Exception:
                log.exception("jobs: a run listener failed")

    async def statuses(self) -> list[JobStatus]:
        """Every job of this scheduler, with its schedule and row, by name."""
        records = {
            record.name: record for record in await self._database.run(False, catalog_jobs.read_all)
        }
        return [
            JobStatus(
                name,
                job.interval_s,
                records.get(name) or JobRecord(name, None, None, None, None, None, None, 0, 0),
            )
            for name, job in sorted(self.jobs.items())
        ]
