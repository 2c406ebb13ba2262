"""The filesystem translator: a local directory as an S3 backend.

Layout under ``root``: ``catalogue.sqlite3`` (WAL, synchronous=FULL) maps buckets and keys
to immutable blob files in ``blobs/``; ``tmp/`` holds blobs being written. Keys never become
paths, so every S3 key is storable and none can reach outside ``root``.

The parts: :mod:`~translators.filesystem.store` (the catalogue's connections and the blob
files), this module (buckets and objects), :mod:`~translators.filesystem.multipart`,
:mod:`~translators.filesystem.listing` and :mod:`~translators.filesystem.errors` (the one
map from OS and SQLite faults to S3 errors). Point reads run inline on the event loop (they
take microseconds and WAL lets them proceed during a write); writes run in the store's
writer thread. A write is atomic and durable before it returns: the blob is fsynced and
renamed first, then one transaction checks the write's conditions and swaps the row; the
replaced blob is unlinked after the commit (readers that opened it keep reading it).
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Final

import anyio.to_thread

from core.context import RequestContext
from core.errors import S3Error
from core.streams import EmptyBody, PayloadStream
from translators import multipart, versioning
from translators.base import (
    BucketInfo,
    GetOptions,
    GetResult,
    ListPage,
    ListQuery,
    ObjectInfo,
    VolumeSpace,
    WriteConditions,
    WriteMetadata,
    written_object,
)
from translators.composed import DelegatesMultipart
from translators.filesystem import db as fs_db
from translators.filesystem import listing as fs_listing
from translators.filesystem import versions as fs_versions
from translators.filesystem.blobs import BlobBody, BlobWriter
from translators.filesystem.errors import mapped
from translators.filesystem.multipart import FilesystemMultipart
from translators.filesystem.store import Store
from translators.versioning import (
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)

#: A GET retries when the row it read was replaced and its blob unlinked before it opened it.
_OPEN_ATTEMPTS: Final = 5


class FilesystemBackend(DelegatesMultipart):
    """A :class:`translators.base.Backend` storing everything under ``root``.

    ``min_part_size`` is the smallest part but the last that CompleteMultipartUpload accepts
    (S3: 5 MiB). ``fsync=False`` skips every fsync, of blobs and of the catalogue (tests and
    scratch data only: a power loss can then lose acknowledged writes; a process crash
    cannot). ``housekeeping=False`` is for commands that open the store of a gateway that
    may be running: their start leaves temp files and unreferenced blobs alone, since those
    may be that gateway's writes in flight.

    Storage faults (a full volume, a read-only or vanished store, I/O errors) are reported
    as :mod:`translators.filesystem.errors` maps them, never as internal errors. A store whose
    catalogue file was removed or replaced under the running gateway is refused with
    ``ServiceUnavailable`` (its open handles would otherwise keep serving a deleted store).
    It implements :class:`translators.base.LocalVolume`: :meth:`volume_space` measures the
    volume holding ``root``.
    """

    name = "filesystem"

    def __init__(
        self,
        root: Path,
        *,
        min_part_size: int = multipart.MIN_PART_SIZE,
        fsync: bool = True,
        housekeeping: bool = True,
    ) -> None:
        self.root = root
        self.store = Store(root, fsync=fsync, housekeeping=housekeeping)
        self.multipart: FilesystemMultipart = FilesystemMultipart(self.store, min_part_size)
        self.min_part_size = min_part_size

    # Lifecycle

    @mapped
    async def start(self) -> None:
        """Create the layout, open the catalogue, remove temp files and orphaned blobs."""
        await anyio.to_thread.run_sync(self.store.open)

    async def close(self) -> None:
        self.store.close()

    @mapped
    async def check_ready(self) -> None:
        """An S3 error naming the fault unless the store is started, still in place, can
        create a file (a real write: catches read-only, unwritable and failing volumes) and
        its catalogue answers a query."""
        if not self.store.started:
            raise S3Error("ServiceUnavailable", "The filesystem backend is not started.")
        await anyio.to_thread.run_sync(self.store.check_ready)

    @mapped
    async def sweep(self, older_than: datetime, limit: int) -> int:
        """Temp files of interrupted writes and blobs no row names, older than
        ``older_than`` (see :class:`translators.base.Sweeper`)."""
        return await anyio.to_thread.run_sync(self.store.sweep, older_than.timestamp(), limit)

    def volume_space(self) -> VolumeSpace:
        """Free and total bytes of the volume holding the store (``statvfs``: cheap)."""
        return self.store.volume_space()

    # Buckets

    @mapped
    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        rows = self.store.reader().execute("SELECT name, created FROM buckets ORDER BY name")
        return [BucketInfo(name, fs_db.timestamp(created)) for name, created in rows]

    @mapped
    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO buckets VALUES (?, ?)", (bucket, time.time()))
            except sqlite3.IntegrityError:
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket) from None

        await self.store.write(work)

    @mapped
    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        row = (
            self.store.reader()
            .execute("SELECT created FROM buckets WHERE name = ?", (bucket,))
            .fetchone()
        )
        if row is None:
            raise S3Error("NoSuchBucket", BucketName=bucket)
        return BucketInfo(bucket, fs_db.timestamp(row[0]))

    @mapped
    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        def work(conn: sqlite3.Connection) -> list[str]:
            fs_db.require_bucket(conn, bucket)
            if conn.execute(
                "SELECT 1 FROM objects WHERE bucket = ?"
                " UNION ALL SELECT 1 FROM versions WHERE bucket = ? LIMIT 1",
                (bucket, bucket),
            ).fetchone():
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            freed: list[str] = []
            uploads = conn.execute("SELECT upload_id FROM uploads WHERE bucket = ?", (bucket,))
            for (upload_id,) in uploads.fetchall():
                freed += fs_db.drop_upload(conn, upload_id)
            conn.execute("DELETE FROM buckets WHERE name = ?", (bucket,))
            conn.execute("DELETE FROM versioning WHERE bucket = ?", (bucket,))
            return freed

        freed = await self.store.write(work)
        await anyio.to_thread.run_sync(self.store.blobs.remove, freed)

    # Objects

    @mapped
    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return self._find(bucket, key)[0]

    def _find(self, bucket: str, key: str) -> tuple[ObjectInfo, str]:
        conn = self.store.reader()
        found = fs_db.find_object(conn, bucket, key)
        if found is None:
            fs_db.require_bucket(conn, bucket)
            raise versioning.absent(key, fs_versions.latest_marker(conn, bucket, key))
        return found

    @mapped
    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current version; see :meth:`translators.base.Backend.get_object`."""
        missing: str | None = None
        for _ in range(_OPEN_ATTEMPTS):
            info, blob = self._find(bucket, key)
            try:
                fd = self.store.blobs.open(blob)
            except FileNotFoundError:
                if blob == missing:
                    raise  # the row still names it: the blob is gone from the store
                missing = blob
                continue  # replaced between the read and the open: read the new row
            return _opened(fd, info, options)
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    @mapped
    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Stream ``body`` to a new blob, then commit it atomically under ``key``."""
        fs_db.require_bucket(self.store.reader(), bucket)
        writer = self.store.blobs.writer()
        try:
            digest = await writer.receive(body)
            info = written_object(key, digest, metadata)
            return await anyio.to_thread.run_sync(
                self._commit_object, bucket, info, writer, conditions
            )
        finally:
            writer.discard()

    def _commit_object(
        self, bucket: str, info: ObjectInfo, writer: BlobWriter, conditions: WriteConditions
    ) -> ObjectInfo:
        name = writer.publish()
        try:
            stored, freed = self.store.transaction(
                lambda conn: fs_versions.replace_object(conn, bucket, info, name, conditions)
            )
        except BaseException:
            self.store.blobs.remove([name])
            raise
        self.store.blobs.remove(freed)
        return stored

    @mapped
    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self.delete_version(ctx, bucket, key, None)

    @mapped
    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery`. Objects carry no parts."""
        if query.max_keys > 100:
            return await anyio.to_thread.run_sync(self._list_objects, bucket, query)
        return self._list_objects(bucket, query)

    def _list_objects(self, bucket: str, query: ListQuery) -> ListPage:
        return fs_listing.list_objects(self.store.reader(), bucket, query)

    # Versioning (translators.versioning; the rows: translators.filesystem.versions)

    @mapped
    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        conn = self.store.reader()
        fs_db.require_bucket(conn, bucket)
        return fs_versions.status(conn, bucket)

    @mapped
    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        await self.store.write(lambda conn: fs_versions.set_status(conn, bucket, status))

    @mapped
    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        conn = self.store.reader()
        fs_db.require_bucket(conn, bucket)
        found = [v for v, _ in fs_versions.history(conn, bucket, key)]
        return versioning.find_version(found, key, version_id)

    @mapped
    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        """Open version ``version_id``: its blob is never replaced, only removed when the
        version is deleted (a reader that opened it keeps reading)."""
        conn = self.store.reader()
        fs_db.require_bucket(conn, bucket)
        found = fs_versions.history(conn, bucket, key)
        entry = versioning.find_version([v for v, _ in found], key, version_id)
        info = versioning.readable(entry)
        blob = next(b for v, b in found if v.version_id == version_id)
        assert blob is not None
        try:
            fd = self.store.blobs.open(blob)
        except FileNotFoundError:
            raise S3Error("NoSuchVersion", Key=key, VersionId=version_id) from None
        return _opened(fd, info, options)

    @mapped
    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        outcome, freed = await self.store.write(
            lambda conn: fs_versions.delete(conn, bucket, key, version_id)
        )
        await anyio.to_thread.run_sync(self.store.blobs.remove, freed)
        return outcome

    @mapped
    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        return await anyio.to_thread.run_sync(
            lambda: fs_versions.list_versions(self.store.reader(), bucket, query)
        )


def _opened(fd: int, info: ObjectInfo, options: GetOptions) -> GetResult:
    """The read ``options`` asks of ``info``, from its open blob ``fd`` (closed on an error
    or an empty read, else by the body)."""
    try:
        span = multipart.read_span(info, options)
    except BaseException:
        os.close(fd)
        raise
    start, length = (0, info.size) if span is None else (span.start, span.length)
    if length <= 0:
        os.close(fd)
        return GetResult(info, span, EmptyBody())
    return GetResult(info, span, BlobBody(fd, start, length))
