"""The catalog's SQL for background jobs: one row per job, its lease and its last run.

Functions on one open connection, run inside :class:`policy.catalog_database.CatalogDatabase`
transactions. A job is taken with one conditional ``UPDATE`` (free or expired, and due), so
of replicas racing for it exactly one sees its row changed: PostgreSQL re-checks the
condition on the row another transaction just committed, SQLite runs writers one at a time.
Times come from the callers' clocks (replicas are expected to keep them in sync; skew
shortens or lengthens a lease by as much).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select, update

from policy.catalog_database import dialect_insert
from policy.catalog_schema import jobs


@dataclass(frozen=True)
class JobRecord:
    """A job's row: the current holder (None: nobody) until ``expires_at``, and its last run.
    ``last_outcome`` is ``ok`` or ``failed: <reason>``."""

    name: str
    holder: str | None
    expires_at: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_duration_s: float | None
    last_outcome: str | None
    runs: int
    failures: int


def ensure(conn: Connection, names: Iterable[str]) -> None:
    """Create the rows of jobs not seen before (concurrent creators are harmless)."""
    insert = dialect_insert(conn)
    for name in names:
        conn.execute(insert(jobs).values(name=name, runs=0, failures=0).on_conflict_do_nothing())


def claim(
    conn: Connection, name: str, holder: str, now: datetime, expires: datetime, due: datetime
) -> bool:
    """Take job ``name`` for ``holder`` until ``expires`` when nobody holds it (no holder,
    or the lease expired before ``now``, or ``holder`` already has it) and its last run
    started at or before ``due``; record the run's start. Whether it was taken."""
    free = or_(jobs.c.holder.is_(None), jobs.c.expires_at < now, jobs.c.holder == holder)
    is_due = or_(jobs.c.last_started_at.is_(None), jobs.c.last_started_at <= due)
    taken = conn.execute(
        update(jobs)
        .where(jobs.c.name == name, free, is_due)
        .values(holder=holder, expires_at=expires, last_started_at=now)
    )
    return int(taken.rowcount) == 1


def renew(conn: Connection, name: str, holder: str, expires: datetime) -> bool:
    """Extend ``holder``'s lease on ``name`` until ``expires``; False if it is not the holder
    any more (the lease expired and another replica took the job)."""
    renewed = conn.execute(
        update(jobs).where(jobs.c.name == name, jobs.c.holder == holder).values(expires_at=expires)
    )
    return int(renewed.rowcount) == 1


def finish(
    conn: Connection,
    name: str,
    holder: str,
    finished: datetime,
    duration_s: float,
    outcome: str,
) -> bool:
    """Record the end of ``holder``'s run and release the job; False (nothing recorded) if
    ``holder`` lost it meanwhile."""
    failed = 0 if outcome == "ok" else 1
    released = conn.execute(
        update(jobs)
        .where(jobs.c.name == name, jobs.c.holder == holder)
        .values(
            holder=None,
            expires_at=None,
            last_finished_at=finished,
            last_duration_s=duration_s,
            last_outcome=outcome,
            runs=jobs.c.runs + 1,
            failures=jobs.c.failures + failed,
        )
    )
    return int(released.rowcount) == 1


def read(conn: Connection, name: str) -> JobRecord | None:
    row = conn.execute(select(*jobs.c).where(jobs.c.name == name)).first()
    return None if row is None else JobRecord(*row)


def read_all(conn: Connection) -> list[JobRecord]:
    return [JobRecord(*row) for row in conn.execute(select(*jobs.c).order_by(jobs.c.name))]
