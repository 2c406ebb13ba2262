"""A span around every call of the translator (Backend -> Backend), when tracing is on.

:class:`BackendSpans` sits directly on the translator (policy.stack), so each call the policy
layers make reaches the storage inside a ``backend.<method>`` span (``backend.put_object``,
``backend.head_object``...) carrying ``pagewright.backend`` (the translator's name) and
``pagewright.site``; the SDK's own calls (the S3 translator's botocore requests) are its
children. A failure sets the span's status to ERROR. A GET's span covers the call that opens
the object and returns its head, not the body's streaming afterwards.

Lifecycle methods pass through: they belong to no request. The spans come from the tracer
the gateway made current for the request (core.tracing), so background work (retention, the
scrub, lease reclaims) makes none.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry.trace import Span

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.streams import PayloadStream
from core.tracing import BACKEND, SITE, span
from policy.forwarding import LIFECYCLE, ForwardingBackend
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
    WriteConditions,
    WriteMetadata,
)


class BackendSpans(ForwardingBackend, passes_through=LIFECYCLE):
    """``inner`` with each data call in a ``backend.<method>`` span (module docstring)."""

    def _span(self, method: str, bucket: str | None = None) -> AbstractContextManager[Span]:
        if bucket is None:
            return span(f"backend.{method}", {BACKEND: self.name})
        return span(f"backend.{method}", {BACKEND: self.name, SITE: bucket})

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        with self._span("list_buckets"):
            return await self.inner.list_buckets(ctx)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        with self._span("create_bucket", bucket):
            await self.inner.create_bucket(ctx, bucket)

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        with self._span("head_bucket", bucket):
            return await self.inner.head_bucket(ctx, bucket)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        with self._span("delete_bucket", bucket):
            await self.inner.delete_bucket(ctx, bucket)

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        with self._span("head_object", bucket):
            return await self.inner.head_object(ctx, bucket, key)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        with self._span("get_object", bucket):
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
        with self._span("put_object", bucket):
            return await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        with self._span("delete_object", bucket):
            await self.inner.delete_object(ctx, bucket, key)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        with self._span("list_objects", bucket):
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
        with self._span("create_multipart_upload", bucket):
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
        with self._span("upload_part", bucket):
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
        with self._span("list_parts", bucket):
            return await self.inner.list_parts(
                ctx, bucket, key, upload_id, part_number_marker, max_parts
            )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        with self._span("list_multipart_uploads", bucket):
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
        with self._span("complete_multipart_upload", bucket):
            return await self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        with self._span("abort_multipart_upload", bucket):
            await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
