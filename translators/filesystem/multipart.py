"""The multipart half of the filesystem translator: uploads and parts in the catalogue,
parts as blobs, completion concatenating them into one new blob in one transaction."""

from __future__ import annotations

import json
import sqlite3
import time

import anyio.to_thread

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import multipart
from translators.base import (
    CompletedPart,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)
from translators.filesystem import db as fs_db
from translators.filesystem import listing as fs_listing
from translators.filesystem import versions as fs_versions
from translators.filesystem.blobs import BlobWriter
from translators.filesystem.errors import mapped
from translators.filesystem.store import Store


class FilesystemMultipart:
    """Multipart uploads of a :class:`~translators.filesystem.store.Store`; ``min_part_size``
    is the smallest part but the last that completion accepts."""

    def __init__(self, store: Store, min_part_size: int) -> None:
        self.store = store
        self.root = store.root  # named in storage-fault reports (see ``mapped``)
        self.min_part_size = min_part_size
        self._ids = multipart.UploadIds()

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
        upload = multipart.new_upload(
            key, self._ids.next(), metadata, checksum_algorithm, checksum_type
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

        await self.store.write(work)
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
        upload = fs_db.find_upload(self.store.reader(), bucket, key, upload_id)
        writer = self.store.blobs.writer()
        try:
            digest = await writer.receive(body)
            part = multipart.received_part(part_number, digest)
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
            old = self.store.transaction(work)
        except BaseException:
            self.store.blobs.remove([name])
            raise
        if old is not None:
            self.store.blobs.remove([old])
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
        conn = self.store.reader()
        upload = fs_db.find_upload(conn, bucket, key, upload_id)
        if max_parts <= 0:
            return upload, PartsPage([], None)
        rows = conn.execute(
            f"SELECT {fs_db.PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number > ?"
            " ORDER BY part_number LIMIT ?",
            (upload_id, part_number_marker, max_parts + 1),
        ).fetchall()
        return upload, multipart.parts_page([fs_db.part_info(row) for row in rows], max_parts)

    @mapped
    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """Pending uploads by key then initiation; markers as S3 defines them."""
        return await anyio.to_thread.run_sync(
            lambda: fs_listing.list_uploads(self.store.reader(), bucket, query)
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
        conn = self.store.reader()
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
        writer = self.store.blobs.writer()
        try:
            writer.fill_from(sources)
            name = writer.publish()
        finally:
            writer.discard()

        def work(conn: sqlite3.Connection) -> tuple[ObjectInfo, list[str]]:
            fs_db.find_upload(conn, bucket, key, upload_id)
            current = {
                number: blob for number, (_, blob) in fs_db.stored_parts(conn, upload_id).items()
            }
            if any(
                current.get(p.part_number) != src
                for p, src in zip(plan.parts, sources, strict=True)
            ):
                raise S3Error("InvalidPart", "A part was replaced while the upload completed.")
            written, old = fs_versions.replace_object(conn, bucket, info, name, conditions)
            return written, [*fs_db.drop_upload(conn, upload_id), *old]

        try:
            written, freed = self.store.transaction(work)
        except BaseException:
            self.store.blobs.remove([name])
            raise
        self.store.blobs.remove(freed)
        return written

    @mapped
    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        def work(conn: sqlite3.Connection) -> list[str]:
            fs_db.find_upload(conn, bucket, key, upload_id)
            return fs_db.drop_upload(conn, upload_id)

        freed = await self.store.write(work)
        await anyio.to_thread.run_sync(self.store.blobs.remove, freed)
