"""The base of every policy wrapper (Backend -> Backend): forwarding only what it names.

A wrapper subclasses :class:`ForwardingBackend` and names, in its class statement, the
Backend methods it passes to ``inner`` unchanged::

    class ReadOnlyBackend(ForwardingBackend, passes_through=LIFECYCLE | READS):
        async def put_object(self, ...): ...   # and every other write, each refused

Deny by default: when the class is defined, every Backend method must be either defined in
the class body or named in ``passes_through`` (a wrapper subclassing another wrapper
inherits that wrapper's decisions); ``passes_through`` may name only Backend methods, and
none the class defines. Anything else raises ``TypeError``, so a method added to
:class:`translators.base.Backend` stops every wrapper from being defined until each one
decides what to do with it. The forwards are written once, here; a wrapper's class body ends
up holding every Backend method, its own or a forward, as ``tests/test_policy_wrappers.py``
checks.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, ClassVar

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.streams import PayloadStream
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
from translators.versioning import (
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)

#: Every method of the Backend protocol, by name.
BACKEND_METHODS: frozenset[str] = frozenset(
    name
    for name, member in vars(Backend).items()
    if inspect.isfunction(member) and not name.startswith("_")
)

#: The lifecycle methods: a wrapper holding no resources of its own passes them through.
LIFECYCLE: frozenset[str] = frozenset({"start", "close", "check_ready"})

#: The reads of versions (translators.versioning) and of a bucket's versioning state.
VERSION_READS: frozenset[str] = frozenset(
    {"get_bucket_versioning", "head_version", "get_version", "list_versions"}
)

#: The methods that change nothing stored.
READS: frozenset[str] = (
    frozenset(
        {"list_buckets", "head_bucket", "head_object", "get_object", "list_objects"}
        | {"list_parts", "list_multipart_uploads"}
    )
    | VERSION_READS
)


class ForwardingBackend:
    """A Backend that forwards to ``inner`` exactly the methods its subclass names.

    ``name`` is ``inner``'s. See the module docstring for the check made when a subclass is
    defined; ``passes_through`` holds the names the class itself declared.
    """

    passes_through: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, inner: Backend) -> None:
        if type(self) is ForwardingBackend:
            raise TypeError("ForwardingBackend passes nothing through by itself: subclass it")
        self.inner = inner
        self.name = inner.name

    def __init_subclass__(cls, *, passes_through: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = frozenset(passes_through)
        own = {name for name in BACKEND_METHODS if name in vars(cls)}
        inherited = {
            name
            for base in cls.__mro__[1:]
            if issubclass(base, ForwardingBackend) and base is not ForwardingBackend
            for name in BACKEND_METHODS
            if name in vars(base)
        }
        problems = []
        if unknown := names - BACKEND_METHODS:
            problems.append(f"passes through {sorted(unknown)}, which are not Backend methods")
        if defined := names & own:
            problems.append(f"both defines and passes through {sorted(defined)}")
        if missing := BACKEND_METHODS - own - names - inherited:
            problems.append(f"neither defines nor passes through {sorted(missing)}")
        if problems:
            raise TypeError(f"{cls.__name__} " + "; ".join(problems))
        cls.passes_through = names
        for name in names:
            setattr(cls, name, vars(ForwardingBackend)[name])

    # The forwards, each passed through only by a subclass that names it.

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def check_ready(self) -> None:
        await self.inner.check_ready()

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        return await self.inner.list_buckets(ctx)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        await self.inner.create_bucket(ctx, bucket)

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        return await self.inner.head_bucket(ctx, bucket)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        await self.inner.delete_bucket(ctx, bucket)

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return await self.inner.head_object(ctx, bucket, key)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
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
        return await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self.inner.delete_object(ctx, bucket, key)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
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
        return await self.inner.list_parts(
            ctx, bucket, key, upload_id, part_number_marker, max_parts
        )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
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
        return await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)

    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        return await self.inner.get_bucket_versioning(ctx, bucket)

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        await self.inner.put_bucket_versioning(ctx, bucket, status)

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        return await self.inner.head_version(ctx, bucket, key, version_id)

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        return await self.inner.get_version(ctx, bucket, key, version_id, options)

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        return await self.inner.delete_version(ctx, bucket, key, version_id)

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        return await self.inner.list_versions(ctx, bucket, query)
