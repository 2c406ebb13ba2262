"""The filesystem translator's store: the SQLite catalogue and the blob files, opened once.

Concurrency: one writer connection, serialised by a lock, commits every change in a worker
thread (commits fsync). Point reads run on the calling thread through its own reader
connection: they take microseconds and WAL lets them proceed during a write.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import anyio.to_thread

from core.errors import S3Error
from translators.base import VolumeSpace
from translators.filesystem import db as fs_db
from translators.filesystem import errors as fs_errors
from translators.filesystem import versions as fs_versions
from translators.filesystem.blobs import BlobStore
from translators.filesystem.commit import Committer

_T = TypeVar("_T")
_DATABASE: Final = "catalogue.sqlite3"
#: Every blob a row names: latest objects, older versions (delete markers have none), parts.
_REFERENCED_BLOBS: Final = (
    "SELECT blob FROM objects UNION ALL SELECT blob FROM versions WHERE blob IS NOT NULL"
    " UNION ALL SELECT blob FROM parts"
)


def holds_store(root: Path) -> bool:
    """Whether ``root`` holds a filesystem store (its catalogue exists); creates nothing."""
    return (root / _DATABASE).is_file()


class Store:
    """A store's catalogue connections and blob files: one writer (the committer, in a
    worker thread), a reader connection per thread, and the check that the catalogue is
    still the one opened. See :mod:`translators.filesystem.backend` for the layout."""

    def __init__(self, root: Path, *, fsync: bool, housekeeping: bool) -> None:
        self.root = root
        self._database = root / _DATABASE
        self._housekeeping = housekeeping
        self.blobs = BlobStore(root, fsync=fsync)
        self._fsync = fsync
        self._committer: Committer | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._identity: tuple[int, int] | None = None

    def open(self) -> None:
        """Create the layout, open the catalogue, remove temp files and orphaned blobs
        (blocking)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._housekeeping:
            self.blobs.prepare()
        conn = fs_db.connect(self._database, writer=True, synchronous=self._fsync)
        fs_versions.migrate(conn)
        self._committer = Committer(conn)
        found = os.stat(self._database)
        self._identity = (found.st_dev, found.st_ino)
        if not self._housekeeping:
            return
        rows = self._committer.read(_REFERENCED_BLOBS)
        self.blobs.remove_orphans({row[0] for row in rows})

    def sweep(self, older_than: float, limit: int) -> int:
        """Remove temp files and orphaned blobs older than ``older_than`` (a POSIX time), at
        most ``limit`` (blocking); nothing without housekeeping (a store another process
        serves)."""
        if not self._housekeeping or self._committer is None:
            return 0
        committer = self._committer

        def referenced() -> set[str]:
            rows = committer.read(_REFERENCED_BLOBS)
            return {row[0] for row in rows}

        return self.blobs.sweep(referenced, older_than, limit)

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
        if self._committer is not None:
            self._committer.close()
            self._committer = None

    @property
    def started(self) -> bool:
        return self._committer is not None

    def check_ready(self) -> None:
        """Raise unless the store is still in place, can create a file (a real write:
        catches read-only, unwritable and failing volumes) and its catalogue answers a
        query (blocking)."""
        self.require_store()
        probe = f"{self.blobs.tmp}/ready-{os.urandom(8).hex()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        os.unlink(probe)
        self.reader().execute("SELECT 1 FROM buckets LIMIT 1").fetchall()

    def volume_space(self) -> VolumeSpace:
        """Free and total bytes of the volume holding the store (``statvfs``: cheap)."""
        try:
            usage = shutil.disk_usage(self.root)
        except OSError as error:
            fault = fs_errors.storage_fault(error)
            if fault is None:
                raise
            raise fault from error
        return VolumeSpace(free=usage.free, total=usage.total)

    def require_store(self) -> None:
        """Raise (ENOENT, mapped to ``ServiceUnavailable``) if the catalogue file this
        backend opened is no longer the one at its path: the store was deleted or replaced
        under the running gateway, and writes would go to files nobody will see again."""
        path = self._database
        try:
            found = os.stat(path)
        except FileNotFoundError:
            found = None
        if found is None or (found.st_dev, found.st_ino) != self._identity:
            raise FileNotFoundError(errno.ENOENT, "the store's catalogue is gone", str(path))

    def reader(self) -> sqlite3.Connection:
        self.require_store()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = fs_db.connect(self._database, writer=False)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in a durable write transaction (blocking: from a worker thread)."""
        if self._committer is None:
            raise S3Error("ServiceUnavailable", "The filesystem backend is not started.")
        self.require_store()
        return self._committer.run(work)

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await anyio.to_thread.run_sync(self.transaction, work)
