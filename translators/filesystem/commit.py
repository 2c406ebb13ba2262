"""Group commit for the filesystem translator's catalogue.

Writers call :meth:`Committer.run` from worker threads. Whoever holds the write lock runs
every queued piece of work in one transaction, each under its own savepoint (a failing one
is rolled back alone and gets its exception back), so concurrent writers share one fsync of
the WAL instead of queueing for one each.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from core.errors import S3Error

_T = TypeVar("_T")


class _Job(Generic[_T]):
    """One caller's share of a group commit."""

    def __init__(self, work: Callable[[sqlite3.Connection], _T]) -> None:
        self.work = work
        self.finished = False
        self.result: _T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class Committer:
    """The single writer connection and the queue of work waiting to commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Job[Any]] = []

    def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` inside a committed write transaction and return its result.

        Blocks (commits fsync): call it from a worker thread. Returns only once the
        transaction holding ``work`` is durable; raises what ``work`` raised, with nothing
        of it committed.
        """
        job = _Job(work)
        with self._queue_lock:
            self._queue.append(job)
        with self._write_lock:
            if not job.finished:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run_batch(batch)
        return job.outcome()

    def read(self, query: str) -> list[Any]:
        """Rows of ``query`` read through the writer (start-up checks)."""
        with self._write_lock:
            if self._conn is None:
                raise S3Error("ServiceUnavailable", "The filesystem backend is closed.")
            return self._conn.execute(query).fetchall()

    def close(self) -> None:
        with self._write_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        conn = self._conn
        try:
            if conn is None:
                raise S3Error("ServiceUnavailable", "The filesystem backend is closed.")
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # left open by a rollback that failed (full disk)
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    job.result = job.work(conn)
                except Exception as error:
                    conn.execute("ROLLBACK TO job")
                    job.error = error
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except BaseException as error:
            # Every job of the batch failed with it: set that before anything else can fail.
            for job in batch:
                job.error, job.result = error, None
            if conn is not None and conn.in_transaction:
                # A full or failing disk can fail the rollback too; SQLite then rolls back
                # on its own (the journal is intact), and the first error is the one to report.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        finally:
            for job in batch:
                job.finished = True
