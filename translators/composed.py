"""How a translator composes its multipart half: the backend holds a component with the
six multipart methods of :class:`translators.base.Backend` and forwards them to it, unchanged.
The forwards are written once, here, rather than in every translator."""

from __future__ import annotations

from typing import Protocol

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.streams import PayloadStream
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


class MultipartComponent(Protocol):
    """A translator's multipart uploads: the multipart methods of the Backend interface."""

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo: ...

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo: ...

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]: ...

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage: ...

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo: ...

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None: ...


class DelegatesMultipart:
    """Base of a translator's backend class: its multipart methods forward to
    ``self.multipart`` (and nothing else is inherited)."""

    multipart: MultipartComponent

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        return await self.multipart.create_multipart_upload(
            ctx, bucket, key, metadata, checksum_algorithm, checksum_type
        )

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        return await self.multipart.upload_part(ctx, bucket, key, upload_id, part_number, body)

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        return await self.multipart.list_parts(
            ctx, bucket, key, upload_id, part_number_marker, max_parts
        )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        return await self.multipart.list_multipart_uploads(ctx, bucket, query)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        return await self.multipart.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        return await self.multipart.abort_multipart_upload(ctx, bucket, key, upload_id)
