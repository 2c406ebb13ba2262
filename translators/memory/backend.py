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

import itertools
import os
import threading
from bisect import bisect_left, insort
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.ranges import ByteRange
from core.streams import PayloadDigest, PayloadStream
from translators import multipart
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
from translators.config import BackendConfigError, BackendSpec
from translators.memory import listing
from translators.memory.body import BytesBody


@dataclass(frozen=True)
class _Stored:
    """An object or a part: what is known of it and its immutable bytes."""

    info: ObjectInfo
    data: bytes


@dataclass
class _Upload:
    info: UploadInfo
    parts: dict[int, tuple[PartInfo, bytes]] = field(default_factory=dict)


@dataclass
class _Bucket:
    created: datetime
    keys: list[str] = field(default_factory=list)  # sorted: code point order is UTF-8 order
    objects: dict[str, _Stored] = field(default_factory=dict)
    uploads: dict[str, _Upload] = field(default_factory=dict)

    def store(self, key: str, stored: _Stored) -> None:
        if key not in self.objects:
            insort(self.keys, key)
        self.objects[key] = stored

    def remove(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            del self.keys[bisect_left(self.keys, key)]

    def upload(self, key: str, upload_id: str) -> _Upload:
        found = self.uploads.get(upload_id)
        if found is None or found.info.key != key:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        return found


class MemoryBackend:
    """A :class:`translators.base.Backend` holding everything in this process; NOT durable.

    ``min_part_size`` is the smallest part but the last that CompleteMultipartUpload accepts
    (S3: 5 MiB). State changes happen under one lock and never across an ``await``, so the
    backend may be shared by event loops in several threads.
    """

    name = "memory"

    def __init__(self, *, min_part_size: int = multipart.MIN_PART_SIZE) -> None:
        self.min_part_size = min_part_size
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count()
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
        with self._lock:
            names: list[str] = []
            for bucket_name, bucket in self._buckets.items():
                names += [f"object:{bucket_name}/{key}" for key in bucket.keys]
                for upload_id, upload in bucket.uploads.items():
                    names += [f"part:{upload_id}/{number}" for number in upload.parts]
            return sorted(names)

    def _require_bucket(self, name: str) -> None:
        with self._bucket(name):
            return

    @contextmanager
    def _bucket(self, name: str) -> Iterator[_Bucket]:
        """Bucket ``name`` with the lock held; ``NoSuchBucket`` if absent."""
        with self._lock:
            found = self._buckets.get(name)
            if found is None:
                raise S3Error("NoSuchBucket", BucketName=name)
            yield found

    # Buckets

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        with self._lock:
            return [BucketInfo(name, self._buckets[name].created) for name in sorted(self._buckets)]

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        with self._lock:
            if bucket in self._buckets:
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
            self._buckets[bucket] = _Bucket(datetime.now(UTC))

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        with self._bucket(bucket) as found:
            return BucketInfo(bucket, found.created)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` if it holds objects; its pending uploads go with it."""
        with self._bucket(bucket) as found:
            if found.objects:
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            del self._buckets[bucket]

    # Objects

    def _find(self, bucket: str, key: str) -> _Stored:
        with self._bucket(bucket) as found:
            stored = found.objects.get(key)
            if stored is None:
                raise S3Error("NoSuchKey", Key=key)
            return stored

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return self._find(bucket, key).info

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current version; see :meth:`translators.base.Backend.get_object`."""
        stored = self._find(bucket, key)
        info = stored.info
        span: ByteRange | None
        if options.part_number is not None:
            span = multipart.part_range(info.size, info.parts, options.part_number)
        elif options.range is not None:
            span = options.range.resolve(info.size)
        else:
            span = None
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
        self._require_bucket(bucket)
        data, digest = await _receive(body)
        info = ObjectInfo(
            key=key,
            size=digest.size,
            etag=digest.md5_hex,
            last_modified=datetime.now(UTC),
            headers=dict(metadata.headers),
            user_metadata=dict(metadata.user_metadata),
            checksums=dict(digest.checksums),
            checksum_type="FULL_OBJECT" if digest.checksums else None,
        )
        with self._bucket(bucket) as found:
            _check(conditions, found, key)
            found.store(key, _Stored(info, data))
        return info

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        with self._bucket(bucket) as found:
            found.remove(key)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery`. Objects carry no parts."""
        with self._bucket(bucket) as found:
            return listing.list_objects(found.keys, found.objects, query)

    # Multipart

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
        with self._bucket(bucket) as found:
            upload = UploadInfo(
                key=key,
                upload_id=self._next_upload_id(),
                initiated=datetime.now(UTC),
                metadata=WriteMetadata(dict(metadata.headers), dict(metadata.user_metadata)),
                checksum_algorithm=checksum_algorithm,
                checksum_type=checksum_type,
            )
            found.uploads[upload.upload_id] = _Upload(upload)
        return upload

    def _next_upload_id(self) -> str:
        """An id that sorts by creation (so listing by id lists by initiation): ids of a
        memory store never outlive its process, so a counter orders them."""
        return f"{next(self._sequence):016x}{os.urandom(8).hex()}"

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
        with self._bucket(bucket) as found:
            upload = found.upload(key, upload_id).info
        data, digest = await _receive(body)
        part_checksums = dict(digest.checksums)
        algorithm = upload.checksum_algorithm
        if algorithm is not None and algorithm not in part_checksums:
            part_checksums[algorithm] = checksums.checksum(algorithm, data)
        part = PartInfo(
            part_number=part_number,
            size=digest.size,
            etag=digest.md5_hex,
            last_modified=datetime.now(UTC),
            checksums=part_checksums,
        )
        with self._bucket(bucket) as found:
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
        with self._bucket(bucket) as found:
            upload = found.upload(key, upload_id)
            numbers = sorted(n for n in upload.parts if n > part_number_marker)
            parts = [upload.parts[n][0] for n in numbers[: max(max_parts, 0)]]
        more = max_parts > 0 and len(numbers) > max_parts
        return upload.info, PartsPage(parts, parts[-1].part_number if more else None)

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """Pending uploads by key then initiation; markers as S3 defines them."""
        with self._bucket(bucket) as found:
            return listing.list_uploads((u.info for u in found.uploads.values()), query)

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
        with self._bucket(bucket) as found:
            upload = found.upload(key, upload_id)
            stored = dict(upload.parts)
            plan = multipart.plan_completion(
                upload.info,
                {number: part for number, (part, _) in stored.items()},
                parts,
                min_part_size=self.min_part_size,
            )
            info = ObjectInfo(
                key=key,
                size=plan.size,
                etag=plan.etag,
                last_modified=datetime.now(UTC),
                headers=dict(upload.info.metadata.headers),
                user_metadata=dict(upload.info.metadata.user_metadata),
                checksums=plan.checksums,
                checksum_type=plan.checksum_type,
                parts=tuple(
                    PartInfo(p.part_number, p.size, p.etag, None, p.checksums) for p in plan.parts
                ),
            )
            _check(conditions, found, key)
            data = b"".join(stored[part.part_number][1] for part in plan.parts)
            found.store(key, _Stored(info, data))
            del found.uploads[upload_id]
        return info

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        with self._bucket(bucket) as found:
            found.upload(key, upload_id)
            del found.uploads[upload_id]


def _check(conditions: WriteConditions, bucket: _Bucket, key: str) -> None:
    """Check a write's ``conditions`` against the current object of ``key``."""
    current = bucket.objects.get(key)
    try:
        conditions.check(current.info if current is not None else None)
    except S3Error as error:
        if error.code == "NoSuchKey":
            error.fields["Key"] = key
        raise


async def _receive(body: PayloadStream) -> tuple[bytes, PayloadDigest]:
    """Read ``body`` to its end; its bytes and verified digest (the stream raises on a bad
    payload, before anything is stored)."""
    chunks = [chunk async for chunk in body]
    return b"".join(chunks), body.digest()
