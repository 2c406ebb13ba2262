"""Multipart uploads of the in-memory translator: parts held as immutable buffers until
CompleteMultipartUpload joins them into an object (rules in :mod:`translators.multipart`)."""

from __future__ import annotations

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
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
from translators.listing import page_uploads
from translators.memory.store import MemoryStore, Stored, Upload, receive


class MemoryMultipart:
    """Multipart uploads of a :class:`~translators.memory.store.MemoryStore`; ``min_part_size``
    is the smallest part but the last that CompleteMultipartUpload accepts."""

    def __init__(self, store: MemoryStore, min_part_size: int) -> None:
        self.store = store
        self.min_part_size = min_part_size
        self._upload_ids = multipart.UploadIds()

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
            key, self._upload_ids.next(), metadata, checksum_algorithm, checksum_type
        )
        with self.store.bucket(bucket) as found:
            found.uploads[upload.upload_id] = Upload(upload)
        return upload

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Store a part, replacing an earlier one of that number. ``NoSuchUpload``."""
        with self.store.bucket(bucket) as found:
            upload = found.upload(key, upload_id).info
        data, digest = await receive(body)
        algorithm = upload.checksum_algorithm
        computed: dict[str, str] = {}
        if algorithm is not None and algorithm not in digest.checksums:
            computed[algorithm] = checksums.checksum(algorithm, data)
        part = multipart.received_part(part_number, digest, computed)
        with self.store.bucket(bucket) as found:
            found.upload(key, upload_id).parts[part_number] = (part, data)
        return part

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
        with self.store.bucket(bucket) as found:
            upload = found.upload(key, upload_id)
            numbers = sorted(n for n in upload.parts if n > part_number_marker)
            parts = [upload.parts[n][0] for n in numbers[: max(max_parts, 0) + 1]]
        return upload.info, multipart.parts_page(parts, max_parts)

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """Pending uploads by key then initiation; markers as S3 defines them."""
        with self.store.bucket(bucket) as found:
            uploads = [upload.info for upload in found.uploads.values()]
        return page_uploads(uploads, query)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Validate (see :func:`translators.multipart.plan_completion`), join the parts and,
        in the same locked step, swap the object in and end the upload."""
        with self.store.bucket(bucket) as found:
            upload = found.upload(key, upload_id)
            stored = dict(upload.parts)
            plan = multipart.plan_completion(
                upload.info,
                {number: part for number, (part, _) in stored.items()},
                parts,
                min_part_size=self.min_part_size,
            )
            info = multipart.completed_object(key, upload.info, plan)
            data = b"".join(stored[part.part_number][1] for part in plan.parts)
            info = found.store(key, Stored(info, data), conditions)
            del found.uploads[upload_id]
        return info

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        with self.store.bucket(bucket) as found:
            found.upload(key, upload_id)
            del found.uploads[upload_id]
