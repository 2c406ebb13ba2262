"""The in-memory translator: buckets, objects and multipart uploads held in the process.

Nothing is durable: every byte lives in this process and is gone when it exits. Use it for
tests (policy, handler and API tests run against it in-process) and throw-away gateways,
never for data anyone needs to keep.

Every other contract of :class:`translators.base.Backend` holds as for the stores that are
durable: a write receives and verifies its whole :class:`PayloadStream` before one locked
step checks its conditions and swaps the object in, so a failed or cancelled write leaves the
previous version untouched; stored buffers are immutable, so a reader keeps the version it
opened across an overwrite or a delete; keys are opaque dictionary keys, never paths.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import listing, multipart, versioning
from translators.base import (
    BucketInfo,
    GetOptions,
    GetResult,
    ListPage,
    ListQuery,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
    written_object,
)
from translators.composed import DelegatesMultipart
from translators.config import BackendConfigError, BackendSpec
from translators.memory.body import BytesBody
from translators.memory.multipart import MemoryMultipart
from translators.memory.store import Bucket, MemoryStore, Stored, receive
from translators.versioning import (
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)


class MemoryBackend(DelegatesMultipart):
    """A :class:`translators.base.Backend` holding everything in this process; NOT durable.

    ``min_part_size`` is the smallest part but the last that CompleteMultipartUpload accepts
    (S3: 5 MiB). State changes happen under one lock and never across an ``await``, so the
    backend may be shared by event loops in several threads. Multipart uploads are its
    :class:`~translators.memory.multipart.MemoryMultipart` component's.
    """

    name = "memory"

    def __init__(self, *, min_part_size: int = multipart.MIN_PART_SIZE) -> None:
        self.min_part_size = min_part_size
        self.store = MemoryStore()
        self.multipart: MemoryMultipart = MemoryMultipart(self.store, min_part_size)
        self._started = False

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> MemoryBackend:
        """The backend a ``memory://`` URL names; its one option is ``min_part_size``."""
        unknown = sorted(set(spec.options) - {"min_part_size"})
        if unknown:
            raise BackendConfigError(f"{spec.redacted()}: unknown options {', '.join(unknown)}")
        value = spec.options.get("min_part_size", str(multipart.MIN_PART_SIZE))
        if not value.isdigit():
            raise BackendConfigError(f"{spec.redacted()}: min_part_size must be a byte count")
        return cls(min_part_size=int(value))

    # Lifecycle

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False

    async def check_ready(self) -> None:
        if not self._started:
            raise S3Error("ServiceUnavailable", "The memory backend is not started.")

    def held_buffers(self) -> list[str]:
        """A name for every object and part buffer held, sorted (for tests: what a failed,
        aborted or completed write left behind)."""
        with self.store.lock:
            names: list[str] = []
            for bucket_name, bucket in self.store.buckets.items():
                names += [f"object:{bucket_name}/{key}" for key in bucket.keys]
                for upload_id, upload in bucket.uploads.items():
                    names += [f"part:{upload_id}/{number}" for number in upload.parts]
            return sorted(names)

    # Buckets

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        with self.store.lock:
            buckets = self.store.buckets
            return [BucketInfo(name, buckets[name].created) for name in sorted(buckets)]

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        with self.store.lock:
            if bucket in self.store.buckets:
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
            self.store.buckets[bucket] = Bucket(datetime.now(UTC))

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        with self.store.bucket(bucket) as found:
            return BucketInfo(bucket, found.created)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` if it holds objects; its pending uploads go with it."""
        with self.store.bucket(bucket) as found:
            if found.history:
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            del self.store.buckets[bucket]

    # Objects

    def _find(self, bucket: str, key: str) -> Stored:
        with self.store.bucket(bucket) as found:
            stored = found.objects.get(key)
            if stored is None:
                raise versioning.absent(key, next(iter(found.entries(key)), None))
            return stored

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return self._find(bucket, key).info

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current version; see :meth:`translators.base.Backend.get_object`."""
        stored = self._find(bucket, key)
        info = stored.info
        span = multipart.read_span(info, options)
        start, length = (0, info.size) if span is None else (span.start, span.length)
        return GetResult(info, span, BytesBody(stored.data, start, max(length, 0)))

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Receive and verify ``body`` whole, then swap it in under ``key`` if ``conditions``
        hold at that moment."""
        self.store.require_bucket(bucket)
        data, digest = await receive(body)
        info = written_object(key, digest, metadata)
        with self.store.bucket(bucket) as found:
            return found.store(key, Stored(info, data), conditions)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self.delete_version(ctx, bucket, key, None)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery`. Objects carry no parts."""
        with self.store.bucket(bucket) as found:
            page = listing.collect_sync(
                listing.objects_page(query), _scanner(found, query.prefix), seek_past_prefixes=True
            )
        return listing.list_page(page)

    # Versioning (translators.versioning)

    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        with self.store.bucket(bucket) as found:
            return found.status

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        with self.store.bucket(bucket) as found:
            found.set_status(status)

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        with self.store.bucket(bucket) as found:
            return versioning.find_version(found.entries(key), key, version_id)

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        with self.store.bucket(bucket) as found:
            entry = versioning.find_version(found.entries(key), key, version_id)
            info = versioning.readable(entry)
            data = found.data(key, version_id)
        span = multipart.read_span(info, options)
        start, length = (0, info.size) if span is None else (span.start, span.length)
        return GetResult(info, span, BytesBody(data, start, max(length, 0)))

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        with self.store.bucket(bucket) as found:
            return found.delete(key, version_id)

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        """A page of every key's history; see :class:`translators.versioning.VersionsQuery`."""
        with self.store.bucket(bucket) as found:
            position = versioning.marker_position(found.entries(query.key_marker), query)
            entries = [
                (key, replace(v, info=None if v.info is None else replace(v.info, parts=())))
                for key in sorted(found.history)
                if key.startswith(query.prefix)
                for v in found.entries(key)
            ]
        page = listing.collect_sync(
            versioning.versions_page(query, position),
            lambda _, __: iter(entries),
            seek_past_prefixes=False,
        )
        return versioning.to_versions_page(page)


def _scanner(bucket: Bucket, prefix: str) -> listing.SyncScan[ObjectInfo]:
    """The listing engine's entry stream over ``bucket``'s sorted keys under ``prefix``
    (read with the lock held)."""

    def scan(seek: listing.Seek, wanted: int) -> Iterator[tuple[str, ObjectInfo | None]]:
        keys = bucket.keys
        find = bisect_left if seek.inclusive else bisect_right
        for index in range(find(keys, seek.key), len(keys)):
            key = keys[index]
            if not key.startswith(prefix):
                return
            yield key, replace(bucket.objects[key].info, parts=())

    return scan
