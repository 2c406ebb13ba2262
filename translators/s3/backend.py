"""The S3 translator: the gateway storing into AWS S3 or any S3-compatible service through
boto3 (MinIO, Ceph RGW, RustFS, rclone serve s3, moto).

Layout (see :mod:`translators.namespace`): gateway buckets are markers under
``<root>/.pagewright/buckets/``; objects live under ``<root>/<bucket>/<key>`` in the
configured backend bucket (``prefix`` mapping) or verbatim in a backend bucket per gateway
bucket (``bucket`` mapping). Keys are used verbatim after the prefix.

Semantics the gateway presents whatever the backend does:

* **Writes are atomic and verified before commit.** A PutObject body up to ``part_size``
  (8 MiB) is buffered, then sent in one PutObject with Content-MD5; a larger or unsized one
  goes through a native multipart upload of ``part_size`` buffers (memory stays flat) that
  is completed only after the client's stream verified; a failure aborts it. The backend
  keeps the previous version until the commit.
* **ETag, checksums, metadata** are the gateway's: the reserved metadata entry and, for
  objects assembled from parts, a manifest (:mod:`translators.s3.codec`) hold them.
* **Write conditions** are checked with the gateway's ETags by a HEAD just before the commit
  and also sent natively (If-None-Match, If-Match on the backend's ETag of the checked
  version), so backends that enforce them (S3, MinIO, moto) make the check atomic; on one
  that ignores them (rclone) a write landing between the HEAD and the commit is a race.
* **Ranges** are validated against the backend's answer: a 200 with the whole body is
  sliced; a backend refusing a satisfiable range (rclone, on suffixes) is asked again with
  the range resolved against the object's size.
* **Leftovers** of a crash or a failed cleanup (the native upload of a streamed PutObject,
  notes of ended uploads) are removed by :meth:`S3Backend.sweep` once old enough (the
  ``sweep-staging`` job; see :mod:`~.sweep`, also for what it leaves: manifests).

Every boto3 call runs in a :class:`translators.blocking.BlockingPool` inside
:func:`translators.s3.errors.map_errors`; botocore retries transient failures (see
:class:`S3Backend`). The parts, composed by :class:`S3Backend`: :mod:`~.client` (the
client, its pool and the helpers all parts share), :mod:`~.reads`, :mod:`~.writes`,
:mod:`~.multipart`, :mod:`~.listing`, :mod:`~.codec` (metadata, manifests, upload ids),
:mod:`~.io`, :mod:`~.errors`, :mod:`~.spans` (a span per boto3 call, when tracing) and
:mod:`~.sweep` (what a crash leaves behind, and its removal).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import multipart
from translators.base import (
    BucketInfo,
    CompletedPart,
    GetOptions,
    GetResult,
    ListPage,
    ListQuery,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
)
from translators.composed import DelegatesMultipart
from translators.config import BackendConfigError, BackendSpec
from translators.s3 import listing as s3_listing
from translators.s3.client import PART_SIZE, S3Store, count_retries
from translators.s3.multipart import S3Multipart
from translators.s3.reads import S3Reads
from translators.s3.spans import trace_calls
from translators.s3.sweep import S3Sweeper
from translators.s3.versions import S3Versions
from translators.s3.writes import S3Writes
from translators.unversioned import Unversioned
from translators.versioning import (
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)

if TYPE_CHECKING:
    pass

_OPTIONS = frozenset({"addressing", "pool", "create", "part_size", "min_part_size", "conditions"})


class S3Backend(DelegatesMultipart, Unversioned):
    """A :class:`translators.base.Backend` over an S3-compatible service.

    Options (backend URL query): ``addressing=path|virtual|auto`` (default ``path`` with an
    endpoint, else ``auto``), ``pool=N`` connections and worker threads (32),
    ``create=true`` creates the configured bucket at start, ``part_size=BYTES`` (8 MiB, at
    least 5 MiB), ``min_part_size=BYTES`` the smallest non-last part CompleteMultipartUpload
    accepts (S3's 5 MiB; lower it only for backends that accept smaller parts),
    ``conditions=native|check`` (``check``: never send If-Match/If-None-Match to a backend
    that rejects them; the HEAD check alone then guards writes).

    Retries: one layer, botocore's (standard mode: 3 attempts with jittered exponential
    backoff on throttling, 5xx and dropped connections, for every call with a body it can
    rewind); a streamed part upload goes through a second client that makes one attempt.
    The translator adds no loop of its own.
    """

    name = "s3"

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self.namespace = store.namespace
        self.multipart: S3Multipart = S3Multipart(self.store)
        self._reads = S3Reads(self.store)
        self._writes = S3Writes(self.store)
        self._versions = S3Versions(self.store, self._reads, self.name)
        self._sweeper = S3Sweeper(self.store, self.multipart, self._versions)

    @classmethod
    def from_spec(cls, spec: BackendSpec, environ: Mapping[str, str]) -> S3Backend:
        """Build the client from ``environ``'s standard AWS variables; without keys,
        botocore's default chain (profiles, instance roles) supplies credentials."""
        unknown = set(spec.options) - _OPTIONS
        if unknown:
            raise BackendConfigError(f"s3 backend: unknown option(s) {', '.join(sorted(unknown))}")
        options = dict(spec.options)
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
        addressing = options.get("addressing") or ("path" if endpoint else "auto")
        if addressing not in ("path", "virtual", "auto"):
            raise BackendConfigError("s3 backend: addressing must be path, virtual or auto")
        try:
            pool = int(options.get("pool", "32"))
            part_size = int(options.get("part_size", str(PART_SIZE)))
            min_part_size = int(options.get("min_part_size", str(multipart.MIN_PART_SIZE)))
        except ValueError as error:
            raise BackendConfigError(f"s3 backend: {error}") from None
        if pool < 1 or part_size < multipart.MIN_PART_SIZE or min_part_size < 1:
            raise BackendConfigError(
                "s3 backend: pool must be >= 1, part_size >= 5 MiB, min_part_size >= 1"
            )
        conditions = options.get("conditions", "native")
        if conditions not in ("native", "check"):
            raise BackendConfigError("s3 backend: conditions must be native or check")
        try:
            session = boto3.session.Session(
                aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
                aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
                aws_session_token=environ.get("AWS_SESSION_TOKEN") or None,
                region_name=region,
                profile_name=environ.get("AWS_PROFILE") or None,
            )

            def config(attempts: int) -> Config:
                return Config(
                    region_name=region or session.region_name or "us-east-1",
                    retries={"mode": "standard", "max_attempts": attempts},
                    max_pool_connections=pool,
                    connect_timeout=10,
                    read_timeout=60,
                    response_checksum_validation="when_required",
                    request_checksum_calculation="when_required",
                    s3=cast(
                        Any, {"addressing_style": addressing, "payload_signing_enabled": False}
                    ),
                )

            client = session.client("s3", endpoint_url=endpoint, config=config(3))
            # Streamed bodies cannot be rewound, so botocore must not retry them.
            stream_client = session.client("s3", endpoint_url=endpoint, config=config(1))
        except BotoCoreError as error:
            raise BackendConfigError(f"s3 backend: {error}") from error
        for traced in (client, stream_client):
            trace_calls(traced)  # a span per call while a request is traced (core.tracing)
            count_retries(traced)  # pagewright_backend_retries_total (core.retries)
        return cls(
            S3Store(
                client,
                spec.namespace(),
                stream_client=stream_client,
                pool_size=pool,
                part_size=part_size,
                min_part_size=min_part_size,
                create=options.get("create", "").lower() in ("1", "true", "yes"),
                native_conditions=conditions == "native",
            )
        )

    async def start(self) -> None:
        """Verify the configured bucket exists (create it with ``create=true``)."""
        container = self.store.namespace.container
        try:
            await self.store.call(
                "HeadBucket",
                lambda: self.store.client.head_bucket(Bucket=container),
            )
            return
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise BackendConfigError(
                    f"s3 backend: bucket {container!r} at {self.store.endpoint} is not usable: "
                    f"{error.message}"
                ) from error
        if not self.store.create:
            raise BackendConfigError(
                f"s3 backend: bucket {container!r} does not exist at {self.store.endpoint}; "
                "create it or add ?create=true to the backend URL"
            )
        await self._create_backend_bucket(container)

    async def _create_backend_bucket(self, name: str) -> None:
        params: dict[str, Any] = {"Bucket": name}
        region = self.store.client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self.store.call("CreateBucket", lambda: self.store.client.create_bucket(**params))
        except S3Error as error:
            if error.code != "BucketAlreadyOwnedByYou":
                raise

    async def sweep(self, older_than: datetime, limit: int) -> int:
        """Native uploads no note names, stale upload notes and orphaned part notes, last
        written before ``older_than``, at most ``limit`` of them (see
        :mod:`translators.s3.sweep` and :class:`translators.base.Sweeper`)."""
        return await self._sweeper.sweep(older_than, limit)

    async def close(self) -> None:
        await self.store.pool.run(self.store.client.close)
        await self.store.pool.run(self.store.stream_client.close)

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` unless a HeadBucket on the configured bucket succeeds."""
        container = self.store.namespace.container
        try:
            await self.store.call(
                "HeadBucket", lambda: self.store.client.head_bucket(Bucket=container)
            )
        except S3Error as error:
            raise S3Error(
                "ServiceUnavailable",
                f"The storage backend at {self.store.endpoint} cannot serve bucket {container!r}.",
            ) from error

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        prefix = self.store.namespace.buckets_prefix()
        buckets: list[BucketInfo] = []
        async for contents in self.store.bookkeeping_pages(prefix):
            for item in contents:
                name = str(item["Key"])[len(prefix) :]
                if name and "/" not in name:
                    buckets.append(BucketInfo(name, item["LastModified"]))
        return sorted(buckets, key=lambda b: b.name)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """Write the bucket's marker (and, in ``bucket`` mapping, create its backend bucket)."""
        marker = self.store.namespace.bucket_marker(bucket)
        if self.store.namespace.mapping == "bucket":
            container = self.store.namespace.container_for(bucket)
            if container == self.store.namespace.container:
                raise S3Error("InvalidBucketName", BucketName=bucket)
        try:
            await self.store.require_bucket(bucket)
        except S3Error as error:
            if error.code != "NoSuchBucket":
                raise
        else:
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
        if self.store.namespace.mapping == "bucket":
            await self._create_backend_bucket(self.store.namespace.container_for(bucket))
        try:
            await self.store.call(
                "PutObject",
                lambda: self.store.client.put_object(
                    Bucket=marker.container, Key=marker.name, Body=b"", IfNoneMatch="*"
                ),
            )
        except S3Error as error:
            if error.code == "PreconditionFailed":
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket) from None
            raise

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        marker = self.store.namespace.bucket_marker(bucket)
        try:
            response: Any = await self.store.call(
                "HeadObject",
                lambda: self.store.client.head_object(Bucket=marker.container, Key=marker.name),
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            raise
        return BucketInfo(bucket, response["LastModified"])

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` if objects remain; pending uploads are aborted, then the backend
        bucket (``bucket`` mapping) and the marker are removed. An object written into the
        bucket while it is being deleted may be left under its prefix, unlisted."""
        self.store.seen.forget(bucket)
        await self.store.require_bucket(bucket)
        container = self.store.namespace.container_for(bucket)
        base = self.store.namespace.bucket_prefix(bucket)
        page: Any = await self.store.call(
            "ListObjectsV2",
            lambda: self.store.client.list_objects_v2(Bucket=container, Prefix=base, MaxKeys=1),
            BucketName=bucket,
        )
        if page.get("Contents") or (
            await self._versions.status(bucket) is not None
            and not await self._versions.is_empty(bucket)
        ):
            raise S3Error("BucketNotEmpty", BucketName=bucket)
        for upload in await self.multipart._native_uploads(bucket, base):
            key, native = str(upload["Key"]), str(upload["UploadId"])
            await self.store.quietly(
                "AbortMultipartUpload",
                functools.partial(
                    self.store.client.abort_multipart_upload,
                    Bucket=container,
                    Key=key,
                    UploadId=native,
                ),
            )
            await self.multipart.delete_names(
                await self.multipart.list_names(self.multipart.part_note_prefix(native))
            )
        await self.multipart.delete_names(
            await self.multipart.list_names(self.multipart.upload_note_prefix(bucket))
        )
        await self.multipart.delete_names(
            await self.multipart.list_names(self._versions.nulls_prefix(bucket))
        )
        if self.store.namespace.mapping == "bucket":
            try:
                await self.store.call(
                    "DeleteBucket",
                    lambda: self.store.client.delete_bucket(Bucket=container),
                    BucketName=bucket,
                )
            except S3Error as error:
                if error.code != "NoSuchBucket":
                    raise
        await self._versions.names.remove(self.store.namespace.bucket_marker(bucket))
        self.store.seen.forget(bucket)
        self._versions.forget(bucket)

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        info = (await self.store.find(bucket, key)).info
        return await self._versions.client_info(bucket, key, info)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Remove ``key`` (absent is fine) by the bucket's versioning. A manifest of a
        removed multipart object stays behind (a few hundred bytes, never read again)."""
        await self._versions.delete(bucket, key, None)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """See :meth:`translators.s3.reads.S3Reads.get_object`."""
        result = await self._reads.get_object(bucket, key, options)
        info = await self._versions.client_info(bucket, key, result.info)
        return result if info is result.info else replace(result, info=info)

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """See :meth:`translators.s3.writes.S3Writes.put_object`."""
        info = await self._writes.put_object(bucket, key, body, metadata, conditions)
        return await self._versions.after_write(bucket, key, info)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """See :func:`translators.s3.listing.list_objects`."""
        return await s3_listing.list_objects(self.store, bucket, query)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """See :meth:`translators.s3.multipart.S3Multipart.complete_multipart_upload`."""
        info = await self.multipart.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
        return await self._versions.after_write(bucket, key, info)

    # Versioning (see translators.s3.versions); a never-versioned bucket answers as
    # translators.unversioned does.

    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        return await self._versions.status(bucket)

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        await self._versions.set_status(bucket, status)

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        if await self._versions.status_of(bucket, key) is None:
            return await super().head_version(ctx, bucket, key, version_id)
        return await self._versions.head(bucket, key, version_id)

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        if await self._versions.status_of(bucket, key) is None:
            return await super().get_version(ctx, bucket, key, version_id, options)
        return await self._versions.get(bucket, key, version_id, options)

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        return await self._versions.delete(bucket, key, version_id)

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        if await self._versions.status(bucket) is None:
            return await super().list_versions(ctx, bucket, query)
        return await self._versions.list(bucket, query)
