"""The translator's calls, timed and counted (a Backend wrapper, innermost in the stack).

:class:`MeasuredBackend` sits directly around the translator (``policy.stack.build_stack``),
so what it measures is the storage alone, not the policy wrappers' own work. Every call is
counted in ``pagewright_backend_calls_total{backend, call, outcome}`` (``ok`` or the S3
error code) and timed in ``pagewright_backend_call_duration_seconds{backend, call}``. A
``get_object`` is timed until its body is opened: the streaming of the body belongs to the
request and is in ``pagewright_request_duration_seconds``. ``start`` and ``close`` pass
through unmeasured; ``check_ready`` (the readiness probe's storage check) is measured.
"""

from __future__ import annotations

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.streams import PayloadStream
from policy.forwarding import ForwardingBackend
from policy.metrics import Metrics
from translators.base import (
    Backend,
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
    WriteConditions,
    WriteMetadata,
)


class MeasuredBackend(ForwardingBackend, passes_through={"start", "close"}):
    """Times and counts every call to ``inner`` in ``metrics`` (module docstring)."""

    def __init__(self, inner: Backend, metrics: Metrics) -> None:
        super().__init__(inner)
        self._metrics = metrics

    async def check_ready(self) -> None:
        with self._metrics.timed(self.name, "check_ready"):
            await self.inner.check_ready()

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        with self._metrics.timed(self.name, "list_buckets"):
            return await self.inner.list_buckets(ctx)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        with self._metrics.timed(self.name, "create_bucket"):
            await self.inner.create_bucket(ctx, bucket)

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        with self._metrics.timed(self.name, "head_bucket"):
            return await self.inner.head_bucket(ctx, bucket)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        with self._metrics.timed(self.name, "delete_bucket"):
            await self.inner.delete_bucket(ctx, bucket)

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        with self._metrics.timed(self.name, "head_object"):
            return await self.inner.head_object(ctx, bucket, key)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        with self._metrics.timed(self.name, "get_object"):
            return await self.inner.get_object(ctx, bucket, key, options)

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        with self._metrics.timed(self.name, "put_object"):
            return await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        with self._metrics.timed(self.name, "delete_object"):
            await self.inner.delete_object(ctx, bucket, key)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        with self._metrics.timed(self.name, "list_objects"):
            return await self.inner.list_objects(ctx, bucket, query)

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        with self._metrics.timed(self.name, "create_multipart_upload"):
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
        with self._metrics.timed(self.name, "upload_part"):
            return await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, body)

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        with self._metrics.timed(self.name, "list_parts"):
            return await self.inner.list_parts(
                ctx, bucket, key, upload_id, part_number_marker, max_parts
            )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        with self._metrics.timed(self.name, "list_multipart_uploads"):
            return await self.inner.list_multipart_uploads(ctx, bucket, query)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        with self._metrics.timed(self.name, "complete_multipart_upload"):
            return await self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        with self._metrics.timed(self.name, "abort_multipart_upload"):
            await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
