"""Wrappers that add one step around every call they forward: the base of the four.

Timing (``policy.metrics_backend``), spans (``policy.backend_spans``), the circuit breaker
(``policy.circuit_breaker``) and the not-started refusal (``policy.backend_start``) each do
the same thing around every Backend method: a step before and after, the call itself
unchanged. :class:`AroundBackend` writes each Backend method once, as a call of the
subclass's :meth:`AroundBackend.around` hook with the method's name, the bucket it concerns
(None for ``list_buckets`` and the lifecycle methods) and a zero-argument ``invoke`` that
makes the call on ``inner``::

    class Timed(AroundBackend, passes_through={"start", "close"}):
        async def around(self, call, bucket, invoke):
            with timer(call):
                return await invoke()

A subclass names what it passes through untouched (``passes_through``), may define any
method itself, and gets the wrapped version of every other one, copied into its own class
body when it is defined (so ``tests/test_policy_wrappers.py``'s walk sees every method on
it, as on every wrapper). The deny-by-default check of :mod:`policy.forwarding` still holds:
a method added to :class:`translators.base.Backend` stops this class from being defined
until it is written here too, and each subclass then wraps it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.streams import PayloadStream
from policy.forwarding import BACKEND_METHODS, ForwardingBackend
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
from translators.versioning import (
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)

T = TypeVar("T")


class AroundBackend(ForwardingBackend):
    """Every Backend method as ``around(name, bucket, invoke)`` (module docstring)."""

    def __init_subclass__(cls, *, passes_through: Iterable[str] = (), **kwargs: Any) -> None:
        names = frozenset(passes_through)
        super().__init_subclass__(passes_through=names, **kwargs)
        for name in BACKEND_METHODS - names - set(vars(cls)):
            setattr(cls, name, vars(AroundBackend)[name])

    async def around(self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]) -> T:
        """Make ``invoke()`` (the Backend method ``call`` on ``inner``) with this wrapper's
        step around it, and return what it returns or raise what it raises."""
        raise NotImplementedError

    async def start(self) -> None:
        await self.around("start", None, self.inner.start)

    async def close(self) -> None:
        await self.around("close", None, self.inner.close)

    async def check_ready(self) -> None:
        await self.around("check_ready", None, self.inner.check_ready)

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        return await self.around("list_buckets", None, lambda: self.inner.list_buckets(ctx))

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        await self.around("create_bucket", bucket, lambda: self.inner.create_bucket(ctx, bucket))

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        return await self.around("head_bucket", bucket, lambda: self.inner.head_bucket(ctx, bucket))

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        await self.around("delete_bucket", bucket, lambda: self.inner.delete_bucket(ctx, bucket))

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return await self.around(
            "head_object", bucket, lambda: self.inner.head_object(ctx, bucket, key)
        )

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        return await self.around(
            "get_object", bucket, lambda: self.inner.get_object(ctx, bucket, key, options)
        )

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        return await self.around(
            "put_object",
            bucket,
            lambda: self.inner.put_object(ctx, bucket, key, body, metadata, conditions),
        )

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self.around(
            "delete_object", bucket, lambda: self.inner.delete_object(ctx, bucket, key)
        )

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        return await self.around(
            "list_objects", bucket, lambda: self.inner.list_objects(ctx, bucket, query)
        )

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        return await self.around(
            "create_multipart_upload",
            bucket,
            lambda: self.inner.create_multipart_upload(
                ctx, bucket, key, metadata, checksum_algorithm, checksum_type
            ),
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
        return await self.around(
            "upload_part",
            bucket,
            lambda: self.inner.upload_part(ctx, bucket, key, upload_id, part_number, body),
        )

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        return await self.around(
            "list_parts",
            bucket,
            lambda: self.inner.list_parts(
                ctx, bucket, key, upload_id, part_number_marker, max_parts
            ),
        )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        return await self.around(
            "list_multipart_uploads",
            bucket,
            lambda: self.inner.list_multipart_uploads(ctx, bucket, query),
        )

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        return await self.around(
            "complete_multipart_upload",
            bucket,
            lambda: self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            ),
        )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.around(
            "abort_multipart_upload",
            bucket,
            lambda: self.inner.abort_multipart_upload(ctx, bucket, key, upload_id),
        )

    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        return await self.around(
            "get_bucket_versioning", bucket, lambda: self.inner.get_bucket_versioning(ctx, bucket)
        )

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        await self.around(
            "put_bucket_versioning",
            bucket,
            lambda: self.inner.put_bucket_versioning(ctx, bucket, status),
        )

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        return await self.around(
            "head_version", bucket, lambda: self.inner.head_version(ctx, bucket, key, version_id)
        )

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        return await self.around(
            "get_version",
            bucket,
            lambda: self.inner.get_version(ctx, bucket, key, version_id, options),
        )

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        return await self.around(
            "delete_version",
            bucket,
            lambda: self.inner.delete_version(ctx, bucket, key, version_id),
        )

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        return await self.around(
            "list_versions", bucket, lambda: self.inner.list_versions(ctx, bucket, query)
        )
