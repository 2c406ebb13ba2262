"""The filesystem translator: a local directory as an S3 backend.

Layout under ``root``: ``catalogue.sqlite3`` (WAL, synchronous=FULL) maps buckets and keys
to immutable blob files in ``blobs/``; ``tmp/`` holds blobs being written. Keys never become
paths, so every S3 key is storable and none can reach outside ``root``.

Concurrency: one writer connection, serialised by a lock, commits every change in a worker
thread (commits fsync). Point reads run inline on the event loop through that thread's own
reader connection: they take microseconds and WAL lets them proceed during a write. A write
is atomic and durable before it returns: the blob is fsynced and renamed first, then one
transaction checks the write's conditions and swaps the row; the replaced blob is unlinked
after the commit (readers that opened it keep reading it).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

import anyio.to_thread

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import fs_db, fs_errors, fs_listing, multipart
from translators.base import (
    BucketInfo,
    CompletedPart,
    GetOptions,
    GetResult,
    ListPage,
    ListQuery,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    VolumeSpace,
    WriteConditions,
    WriteMetadata,
    written_object,
)
from translators.fs_blobs import BlobBody, BlobStore, BlobWriter, EmptyBody
from translators.fs_commit import Committer
from translators.fs_errors import mapped

_T = TypeVar("_T")
_DATABASE: Final = "catalogue.sqlite3"
#: A GET retries when the row it read was replaced and its blob unlinked before it opened it.
_OPEN_ATTEMPTS: Final = 5


def holds_store(root: Path) -> bool:
    """Whether ``root`` holds a filesystem store (its catalogue exists); creates nothing."""
    return (root / _DATABASE).is_file()


class FilesystemBackend:
    """A :class:`translators.base.Backend` storing everything under ``root``.

    ``min_part_size`` is the smallest part but the last that CompleteMultipartUpload accepts
    (S3: 5 MiB). ``fsync=False`` skips every fsync, of blobs and of the catalogue (tests and
    scratch data only: a power loss can then lose acknowledged writes; a process crash
    cannot). ``housekeeping=False`` is for commands that open the store of a gateway that
    may be running: their start leaves temp files and unreferenced blobs alone, since those
    may be that gateway's writes in flight.
    cannot).

    Storage faults (a full volume, a read-only or vanished store, I/O errors) are reported
    as :mod:`translators.fs_errors` maps them, never as internal errors. A store whose
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
        self._housekeeping = housekeeping
        self.min_part_size = min_part_size
        self._blobs = BlobStore(root, fsync=fsync)
        self._fsync = fsync
        self._committer: Committer | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._ids = _UploadIds()
        self._identity: tuple[int, int] | None = None

    # Lifecycle

    @mapped
    async def start(self) -> None:
        """Create the layout, open the catalogue, remove temp files and orphaned blobs."""
        await anyio.to_thread.run_sync(self._start)

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._housekeeping:
            self._blobs.prepare()
        self._committer = Committer(
            fs_db.connect(self.root / _DATABASE, writer=True, synchronous=self._fsync)
        )
        found = os.stat(self.root / _DATABASE)
        self._identity = (found.st_dev, found.st_ino)
        if not self._housekeeping:
            return
        rows = self._committer.read("SELECT blob FROM objects UNION ALL SELECT blob FROM parts")
        self._blobs.remove_orphans({row[0] for row in rows})

    async def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
        if self._committer is not None:
            self._committer.close()
            self._committer = None

    @mapped
    async def check_ready(self) -> None:
        """An S3 error naming the fault unless the store is started, still in place, can
        create a file (a real write: catches read-only, unwritable and failing volumes) and
        its catalogue answers a query."""
        if self._committer is None:
            raise S3Error("ServiceUnavailable", "The filesystem backend is not started.")
        await anyio.to_thread.run_sync(self._check_ready)

    def _check_ready(self) -> None:
        self._require_store()
        probe = f"{self._blobs.tmp}/ready-{os.urandom(8).hex()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        os.unlink(probe)
        self._reader().execute("SELECT 1 FROM buckets LIMIT 1").fetchall()

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

    def _require_store(self) -> None:
        """Raise (ENOENT, mapped to ``ServiceUnavailable``) if the catalogue file this
        backend opened is no longer the one at its path: the store was deleted or replaced
        under the running gateway, and writes would go to files nobody will see again."""
        path = self.root / _DATABASE
        try:
            found = os.stat(path)
        except FileNotFoundError:
            found = None
        if found is None or (found.st_dev, found.st_ino) != self._identity:
            raise FileNotFoundError(errno.ENOENT, "the store's catalogue is gone", str(path))

    def _reader(self) -> sqlite3.Connection:
        self._require_store()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = fs_db.connect(self.root / _DATABASE, writer=False)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in a durable write transaction (blocking: from a worker thread)."""
        if self._committer is None:
            raise S3Error("ServiceUnavailable", "The filesystem backend is not started.")
        self._require_store()
        return self._committer.run(work)

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await anyio.to_thread.run_sync(self._transaction, work)

    # Buckets

    @mapped
    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        rows = self._reader().execute("SELECT name, created FROM buckets ORDER BY name")
        return [BucketInfo(name, fs_db.timestamp(created)) for name, created in rows]

    @mapped
    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO buckets VALUES (?, ?)", (bucket, time.time()))
            except sqlite3.IntegrityError:
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket) from None

        await self._write(work)

    @mapped
    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        row = (
            self._reader()
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
            if conn.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (bucket,)).fetchone():
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            freed: list[str] = []
            uploads = conn.execute("SELECT upload_id FROM uploads WHERE bucket = ?", (bucket,))
            for (upload_id,) in uploads.fetchall():
                freed += fs_db.drop_upload(conn, upload_id)
            conn.execute("DELETE FROM buckets WHERE name = ?", (bucket,))
            return freed

        freed = await self._write(work)
        await anyio.to_thread.run_sync(self._blobs.remove, freed)

    # Objects

    @mapped
    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return self._find(bucket, key)[0]

    def _find(self, bucket: str, key: str) -> tuple[ObjectInfo, str]:
        conn = self._reader()
        found = fs_db.find_object(conn, bucket, key)
        if found is None:
            fs_db.require_bucket(conn, bucket)
            raise S3Error("NoSuchKey", Key=key)
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
                fd = self._blobs.open(blob)
            except FileNotFoundError:
                if blob == missing:
                    raise  # the row still names it: the blob is gone from the store
                missing = blob
                continue  # replaced between the read and the open: read the new row
            try:
                if options.part_number is not None:
                    span = multipart.part_range(info.size, info.parts, options.part_number)
                elif options.range is not None:
                    span = options.range.resolve(info.size)
                else:
                    span = None
            except BaseException:
                os.close(fd)
                raise
            start, length = (0, info.size) if span is None else (span.start, span.length)
            if length <= 0:
                os.close(fd)
                return GetResult(info, span, EmptyBody())
            return GetResult(info, span, BlobBody(fd, start, length))
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
        fs_db.require_bucket(self._reader(), bucket)
        writer = self._blobs.writer()
        try:
            digest = await writer.receive(body)
            info = written_object(key, digest, metadata)
            await anyio.to_thread.run_sync(self._commit_object, bucket, info, writer, conditions)
        finally:
            writer.discard()
        return info

    def _commit_object(
        self, bucket: str, info: ObjectInfo, writer: BlobWriter, conditions: WriteConditions
    ) -> None:
        name = writer.publish()
        try:
            old = self._transaction(
                lambda conn: fs_db.replace_object(conn, bucket, info, name, conditions)
            )
        except BaseException:
            self._blobs.remove([name])
            raise
        if old is not None:
            self._blobs.remove([old])

    @mapped
    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        def work(conn: sqlite3.Connection) -> list[str]:
            fs_db.require_bucket(conn, bucket)
            row = conn.execute(
                "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING blob", (bucket, key)
            ).fetchone()
            return [row[0]] if row else []

        freed = await self._write(work)
        await anyio.to_thread.run_sync(self._blobs.remove, freed)

    @mapped
    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery`. Objects carry no parts."""
        if query.max_keys > 100:
            return await anyio.to_thread.run_sync(self._list_objects, bucket, query)
        return self._list_objects(bucket, query)

    def _list_objects(self, bucket: str, query: ListQuery) -> ListPage:
        return fs_listing.list_objects(self._reader(), bucket, query)

    # Multipart

    @mapped
    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Start an upload; the checksum type defaults as S3's does for the algorithm."""
        checksum_type = multipart.resolve_checksum_type(checksum_algorithm, checksum_type)
        upload = UploadInfo(
            key=key,
            upload_id=self._ids.next(),
            initiated=datetime.now(UTC),
            metadata=WriteMetadata(dict(metadata.headers), dict(metadata.user_metadata)),
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
        )

        def work(conn: sqlite3.Connection) -> None:
            fs_db.require_bucket(conn, bucket)
            conn.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    bucket,
                    key,
                    upload.initiated.timestamp(),
                    fs_db.encode_meta(upload.metadata, {}, None),
                    checksum_algorithm,
                    checksum_type,
                ),
            )

        await self._write(work)
        return upload

    @mapped
    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Store a part as its own blob, replacing (and freeing) an earlier one."""
        upload = fs_db.find_upload(self._reader(), bucket, key, upload_id)
        writer = self._blobs.writer()
        try:
            digest = await writer.receive(body)
            part = PartInfo(
                part_number=part_number,
                size=digest.size,
                etag=digest.md5_hex,
                last_modified=datetime.now(UTC),
                checksums=dict(digest.checksums),
            )
            return await anyio.to_thread.run_sync(
                self._commit_part, bucket, key, upload, part, writer
            )
        finally:
            writer.discard()

    def _commit_part(
        self, bucket: str, key: str, upload: UploadInfo, part: PartInfo, writer: BlobWriter
    ) -> PartInfo:
        algorithm = upload.checksum_algorithm
        if algorithm is not None and algorithm not in part.checksums:
            hasher = checksums.new_hasher(algorithm)
            for chunk in writer.read_back():
                hasher.update(chunk)
            part = PartInfo(
                part.part_number,
                part.size,
                part.etag,
                part.last_modified,
                {**part.checksums, algorithm: checksums.encode(hasher.digest())},
            )
        name = writer.publish()

        def work(conn: sqlite3.Connection) -> str | None:
            fs_db.find_upload(conn, bucket, key, upload.upload_id)
            old = conn.execute(
                "SELECT blob FROM parts WHERE upload_id = ? AND part_number = ?",
                (upload.upload_id, part.part_number),
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    part.part_number,
                    part.size,
                    part.etag,
                    time.time(),
                    json.dumps(part.checksums),
                    name,
                ),
            )
            return old[0] if old else None

        try:
            old = self._transaction(work)
        except BaseException:
            self._blobs.remove([name])
            raise
        if old is not None:
            self._blobs.remove([old])
        return part

    @mapped
    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        """Parts numbered above ``part_number_marker``, at most ``max_parts`` of them."""
        conn = self._reader()
        upload = fs_db.find_upload(conn, bucket, key, upload_id)
        if max_parts <= 0:
            return upload, PartsPage([], None)
        rows = conn.execute(
            f"SELECT {fs_db.PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number > ?"
            " ORDER BY part_number LIMIT ?",
            (upload_id, part_number_marker, max_parts + 1),
        ).fetchall()
        parts = [fs_db.part_info(row) for row in rows[:max_parts]]
        more = len(rows) > max_parts
        return upload, PartsPage(parts, parts[-1].part_number if more else None)

    @mapped
    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """Pending uploads by key then initiation; markers as S3 defines them."""
        return await anyio.to_thread.run_sync(
            lambda: fs_listing.list_uploads(self._reader(), bucket, query)
        )

    @mapped
    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Validate (see :func:`translators.multipart.plan_completion`), assemble the parts
        into one new blob and commit it, the upload's removal and the freeing of every part
        blob in one transaction."""
        return await anyio.to_thread.run_sync(
            self._complete, bucket, key, upload_id, parts, conditions
        )

    def _complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        conn = self._reader()
        upload = fs_db.find_upload(conn, bucket, key, upload_id)
        stored = fs_db.stored_parts(conn, upload_id)
        plan = multipart.plan_completion(
            upload,
            {number: part for number, (part, _) in stored.items()},
            requested,
            min_part_size=self.min_part_size,
        )
        sources = [stored[part.part_number][1] for part in plan.parts]
        info = multipart.completed_object(key, upload, plan)
        writer = self._blobs.writer()
        try:
            writer.fill_from(sources)
            name = writer.publish()
        finally:
            writer.discard()

        def work(conn: sqlite3.Connection) -> list[str]:
            fs_db.find_upload(conn, bucket, key, upload_id)
            current = {
                number: blob for number, (_, blob) in fs_db.stored_parts(conn, upload_id).items()
            }
            if any(
                current.get(p.part_number) != src
                for p, src in zip(plan.parts, sources, strict=True)
            ):
                raise S3Error("InvalidPart", "A part was replaced while the upload completed.")
            old = fs_db.replace_object(conn, bucket, info, name, conditions)
            freed = fs_db.drop_upload(conn, upload_id)
            return [*freed, old] if old is not None else freed

        try:
            freed = self._transaction(work)
        except BaseException:
            self._blobs.remove([name])
            raise
        self._blobs.remove(freed)
        return info

    @mapped
    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        def work(conn: sqlite3.Connection) -> list[str]:
            fs_db.find_upload(conn, bucket, key, upload_id)
            return fs_db.drop_upload(conn, upload_id)

        freed = await self._write(work)
        await anyio.to_thread.run_sync(self._blobs.remove, freed)


class _UploadIds:
    """Upload ids that sort by creation time, so listing by id lists by initiation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            stamp = self._last
        return f"{stamp:016x}{os.urandom(8).hex()}"
