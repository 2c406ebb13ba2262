"""A floor of free space on the storage volume, enforced before a write reads its body.

:class:`FreeSpaceBackend` wraps the stack of a translator that has a local volume
(:class:`translators.base.LocalVolume`: the filesystem translator). Every write that adds
data (CreateBucket, PutObject and CopyObject, CreateMultipartUpload, UploadPart and
UploadPartCopy, CompleteMultipartUpload) is refused with 507 ``InsufficientStorage`` when the
volume's free space, less what the write announces it will add, would fall under the floor.
The check runs before the body is read, and again every :data:`RECHECK_BYTES` while it
streams (concurrent uploads share one volume). Deletes and aborts are always let through:
they are how space is freed. Reads are not affected.

The floor keeps room for what must still work on a nearly full volume: catalogue commits,
WAL checkpoints, deletes. Writes that hit the end of the volume anyway (no floor, or another
process filling it) are reported by the translator as the same 507, with nothing partial
left behind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Final

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PassThroughPayload, PayloadStream
from policy.forwarding import LIFECYCLE, READS, ForwardingBackend
from policy.upload_parts import named_parts_size
from translators.base import (
    Backend,
    CompletedPart,
    LocalVolume,
    ObjectInfo,
    PartInfo,
    UploadInfo,
    VolumeSpace,
    WriteConditions,
    WriteMetadata,
)

log = logging.getLogger(__name__)

#: A streaming body re-checks the floor after each this many bytes.
RECHECK_BYTES: Final = 8 * 1024 * 1024


class FreeSpaceGuard:
    """The volume of ``volume`` and its floor of ``min_free_bytes`` (> 0)."""

    def __init__(self, volume: LocalVolume, min_free_bytes: int) -> None:
        self.volume = volume
        self.min_free_bytes = min_free_bytes

    def space(self) -> VolumeSpace:
        """The volume's space now (an S3 error if it cannot be measured)."""
        return self.volume.volume_space()

    def admit(self, ctx: RequestContext, needed: int) -> None:
        """``InsufficientStorage`` unless ``needed`` more bytes leave the floor free."""
        space = self.space()
        if space.free - needed >= self.min_free_bytes:
            return
        log.warning(
            "write refused: the storage volume is under its free-space floor",
            extra={
                "request_id": ctx.request_id,
                "free_bytes": space.free,
                "needed_bytes": needed,
                "min_free_bytes": self.min_free_bytes,
            },
        )
        raise S3Error(
            "InsufficientStorage",
            "The storage volume is nearly full: writes are refused until space is freed.",
        )


class FloorPayload(PassThroughPayload):
    """A :class:`PayloadStream` that re-checks the floor every :data:`RECHECK_BYTES` while it
    streams, for the bytes it still announces (``InsufficientStorage`` from the iterator,
    so the translator commits nothing)."""

    def __init__(self, inner: PayloadStream, guard: FreeSpaceGuard, ctx: RequestContext) -> None:
        super().__init__(inner)
        self._guard = guard
        self._ctx = ctx

    async def _stream(self) -> AsyncIterator[bytes]:
        received = 0
        next_check = RECHECK_BYTES
        async for chunk in self._inner:
            received += len(chunk)
            if received >= next_check:
                self._guard.admit(self._ctx, max((self.declared_size or 0) - received, 0))
                next_check = received + RECHECK_BYTES
            yield chunk


class FreeSpaceBackend(
    ForwardingBackend,
    passes_through=LIFECYCLE
    | READS
    | {
        "delete_bucket",
        "delete_object",
        "abort_multipart_upload",
        "put_bucket_versioning",
        "delete_version",
    },
):
    """Backend wrapper refusing writes under the free-space floor (module docstring).

    The methods that add data check; those that read or remove data pass through."""

    def __init__(self, inner: Backend, guard: FreeSpaceGuard) -> None:
        super().__init__(inner)
        self.guard = guard

    def _payload(self, ctx: RequestContext, body: PayloadStream) -> FloorPayload:
        self.guard.admit(ctx, body.declared_size or 0)
        return FloorPayload(body, self.guard, ctx)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        self.guard.admit(ctx, 0)
        await self.inner.create_bucket(ctx, bucket)

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        payload = self._payload(ctx, body)
        return await self.inner.put_object(ctx, bucket, key, payload, metadata, conditions)

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        self.guard.admit(ctx, 0)
        return await self.inner.create_multipart_upload(
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
        payload = self._payload(ctx, body)
        return await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, payload)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Admitted for the size of the named parts (the assembled copy needs that much)."""
        self.guard.admit(
            ctx, await named_parts_size(self.inner, ctx, bucket, key, upload_id, parts)
        )
        return await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
