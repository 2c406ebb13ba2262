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
  objects assembled from parts, a manifest (:mod:`translators.s3_codec`) hold them.
* **Write conditions** are checked with the gateway's ETags by a HEAD just before the commit
  and also sent natively (If-None-Match, If-Match on the backend's ETag of the checked
  version), so backends that enforce them (S3, MinIO, moto) make the check atomic; on one
  that ignores them (rclone) a write landing between the HEAD and the commit is a race.
* **Ranges** are validated against the backend's answer: a 200 with the whole body is
  sliced; a backend refusing a satisfiable range (rclone, on suffixes) is asked again with
  the range resolved against the object's size.

Every boto3 call runs in a :class:`translators.blocking.BlockingPool` inside
:func:`translators.s3_errors.map_errors`; idempotent ones are retried on transient errors.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import anyio
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from core.context import RequestContext
from core.errors import S3Error
from core.ranges import ByteRange, RangeSpec
from core.streams import PayloadStream
from translators import listing, multipart
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
from translators.config import BackendConfigError, BackendSpec
from translators.listing import Seek
from translators.s3_codec import (
    encode_manifest,
    native_headers,
    new_token,
    object_metadata,
    unquote,
)
from translators.s3_core import PART_SIZE
from translators.s3_io import BytesBody, EmptyBody, PartSplitter, StreamBody
from translators.s3_multipart import S3Multipart, content_md5

_OPTIONS = frozenset({"addressing", "pool", "create", "part_size", "min_part_size", "conditions"})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_OPEN_ATTEMPTS = 5
_MD5 = re.compile(r"[0-9a-f]{32}")
#: Whole objects up to this size are read at once and checked against their MD5 ETag.
_VERIFIED_READ = 1024 * 1024


class S3Backend(S3Multipart):
    """A :class:`translators.base.Backend` over an S3-compatible service.

    Options (backend URL query): ``addressing=path|virtual|auto`` (default ``path`` with an
    endpoint, else ``auto``), ``pool=N`` connections and worker threads (32),
    ``create=true`` creates the configured bucket at start, ``part_size=BYTES`` (8 MiB, at
    least 5 MiB), ``min_part_size=BYTES`` the smallest non-last part CompleteMultipartUpload
    accepts (S3's 5 MiB; lower it only for backends that accept smaller parts),
    ``conditions=native|check`` (``check``: never send If-Match/If-None-Match to a backend
    that rejects them; the HEAD check alone then guards writes).

    Retries: one layer, the gateway's. botocore makes one attempt per call; an idempotent
    call (reads, listings, HEADs, deletes, part uploads from a buffer) is retried on
    transient errors by :func:`translators.blocking.retrying` (4 attempts, jittered
    exponential backoff). A call whose repetition could misreport its outcome (a
    conditional write, creating or completing an upload) is made once; a transient failure
    reaches the client as a 5xx its own SDK retries.
    """

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

            # botocore retries nothing: the one retry layer is the gateway's (see the class).
            config = Config(
                region_name=region or session.region_name or "us-east-1",
                retries={"mode": "standard", "max_attempts": 1},
                max_pool_connections=pool,
                connect_timeout=10,
                read_timeout=60,
                response_checksum_validation="when_required",
                request_checksum_calculation="when_required",
                s3=cast(Any, {"addressing_style": addressing, "payload_signing_enabled": False}),
            )
            client = session.client("s3", endpoint_url=endpoint, config=config)
        except BotoCoreError as error:
            raise BackendConfigError(f"s3 backend: {error}") from error
        return cls(
            client,
            spec.namespace(),
            pool_size=pool,
            part_size=part_size,
            min_part_size=min_part_size,
            create=options.get("create", "").lower() in ("1", "true", "yes"),
            native_conditions=conditions == "native",
        )

    # Lifecycle

    async def start(self) -> None:
        """Verify the configured bucket exists (create it with ``create=true``)."""
        container = self.namespace.container
        try:
            await self.call(
                "HeadBucket", lambda: self.client.head_bucket(Bucket=container), idempotent=True
            )
            return
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise BackendConfigError(
                    f"s3 backend: bucket {container!r} at {self.endpoint} is not usable: "
                    f"{error.message}"
                ) from error
        if not self.create:
            raise BackendConfigError(
                f"s3 backend: bucket {container!r} does not exist at {self.endpoint}; "
                "create it or add ?create=true to the backend URL"
            )
        await self._create_backend_bucket(container)

    async def _create_backend_bucket(self, name: str) -> None:
        params: dict[str, Any] = {"Bucket": name}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self.call("CreateBucket", lambda: self.client.create_bucket(**params))
        except S3Error as error:
            if error.code != "BucketAlreadyOwnedByYou":
                raise

    async def close(self) -> None:
        await self.pool.run(self.client.close)

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` unless a HeadBucket on the configured bucket succeeds."""
        container = self.namespace.container
        try:
            await self.call("HeadBucket", lambda: self.client.head_bucket(Bucket=container))
        except S3Error as error:
            raise S3Error(
                "ServiceUnavailable",
                f"The storage backend at {self.endpoint} cannot serve bucket {container!r}.",
            ) from error

    # Buckets

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        prefix = self.namespace.buckets_prefix()
        buckets: list[BucketInfo] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.namespace.container, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page: Any = await self.call(
                "ListObjectsV2",
                functools.partial(self.client.list_objects_v2, **params),
                idempotent=True,
            )
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(prefix) :]
                if name and "/" not in name:
                    buckets.append(BucketInfo(name, item["LastModified"]))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(buckets, key=lambda b: b.name)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """Write the bucket's marker (and, in ``bucket`` mapping, create its backend bucket)."""
        marker = self.namespace.bucket_marker(bucket)
        if self.namespace.mapping == "bucket":
            container = self.namespace.container_for(bucket)
            if container == self.namespace.container:
                raise S3Error("InvalidBucketName", BucketName=bucket)
        try:
            await self.require_bucket(bucket)
        except S3Error as error:
            if error.code != "NoSuchBucket":
                raise
        else:
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
        if self.namespace.mapping == "bucket":
            await self._create_backend_bucket(self.namespace.container_for(bucket))
        try:
            await self.call(
                "PutObject",
                lambda: self.client.put_object(
                    Bucket=marker.container, Key=marker.name, Body=b"", IfNoneMatch="*"
                ),
            )
        except S3Error as error:
            if error.code == "PreconditionFailed":
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket) from None
            raise

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        marker = self.namespace.bucket_marker(bucket)
        try:
            response: Any = await self.call(
                "HeadObject",
                lambda: self.client.head_object(Bucket=marker.container, Key=marker.name),
                idempotent=True,
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
        await self.require_bucket(bucket)
        container = self.namespace.container_for(bucket)
        base = self.namespace.bucket_prefix(bucket)
        page: Any = await self.call(
            "ListObjectsV2",
            lambda: self.client.list_objects_v2(Bucket=container, Prefix=base, MaxKeys=1),
            idempotent=True,
            BucketName=bucket,
        )
        if page.get("Contents"):
            raise S3Error("BucketNotEmpty", BucketName=bucket)
        for upload in await self._native_uploads(bucket, base):
            key, native = str(upload["Key"]), str(upload["UploadId"])
            await self.quietly(
                "AbortMultipartUpload",
                functools.partial(
                    self.client.abort_multipart_upload, Bucket=container, Key=key, UploadId=native
                ),
            )
            await self.delete_names(await self.list_names(self.part_note_prefix(native)))
        await self.delete_names(await self.list_names(self.upload_note_prefix(bucket)))
        if self.namespace.mapping == "bucket":
            try:
                await self.call(
                    "DeleteBucket",
                    lambda: self.client.delete_bucket(Bucket=container),
                    BucketName=bucket,
                )
            except S3Error as error:
                if error.code != "NoSuchBucket":
                    raise
        marker = self.namespace.bucket_marker(bucket)
        await self.call(
            "DeleteObject",
            lambda: self.client.delete_object(Bucket=marker.container, Key=marker.name),
            idempotent=True,
        )

    # Objects

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return (await self.find(bucket, key)).info

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """One GET streams one version. A part number is resolved on a HEAD first, then read
        with If-Match on that version's backend ETag (retried if it changed meanwhile)."""
        if options.part_number is not None:
            for _ in range(_OPEN_ATTEMPTS):
                found = await self.find(bucket, key)
                span = multipart.part_range(found.info.size, found.info.parts, options.part_number)
                if span is not None and span.length <= 0:
                    return GetResult(found.info, span, EmptyBody())
                try:
                    return await self._open(bucket, key, span, found.backend_etag)
                except S3Error as error:
                    if error.code not in ("PreconditionFailed", "NoSuchKey"):
                        raise
            raise S3Error("SlowDown", "The object is being overwritten too often to be read.")
        spec = options.range
        if spec is None:
            return await self._open_whole(bucket, key)
        if spec.first is None and not spec.last:
            spec.resolve((await self.find(bucket, key)).info.size)  # raises InvalidRange
        try:
            return await self._open(bucket, key, spec, None)
        except S3Error as error:
            if error.code != "InvalidRange" or spec is None:
                raise
        # The backend refused the range: resolve it ourselves (InvalidRange with the right
        # Content-Range if it is unsatisfiable) and ask for that exact version and range.
        for _ in range(_OPEN_ATTEMPTS):
            found = await self.find(bucket, key)
            span = spec.resolve(found.info.size)
            try:
                return await self._open(bucket, key, span, found.backend_etag)
            except S3Error as error:
                if error.code not in ("PreconditionFailed", "InvalidRange", "NoSuchKey"):
                    raise
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    async def _open_whole(self, bucket: str, key: str) -> GetResult:
        """The whole object. A small one whose ETag is its MD5 is read at once and verified
        (retried if a non-atomic backend tore it); a larger one is verified as it streams."""
        for _ in range(_OPEN_ATTEMPTS):
            result = await self._open(bucket, key, None, None)
            size, etag = result.info.size, result.info.etag
            if size > _VERIFIED_READ or not _MD5.fullmatch(etag):
                return result
            try:
                data = b"".join([chunk async for chunk in result.body])
            except S3Error as error:
                if error.code != "InternalError":
                    raise
                continue
            if hashlib.md5(data, usedforsecurity=False).hexdigest() == etag:
                return GetResult(result.info, None, BytesBody(data))
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    async def _open(
        self, bucket: str, key: str, wanted: RangeSpec | ByteRange | None, if_match: str | None
    ) -> GetResult:
        location = self.namespace.object(bucket, key)
        params: dict[str, Any] = {"Bucket": location.container, "Key": location.name}
        if isinstance(wanted, ByteRange):
            params["Range"] = f"bytes={wanted.start}-{wanted.end}"
        elif wanted is not None:
            first = "" if wanted.first is None else str(wanted.first)
            last = "" if wanted.last is None else str(wanted.last)
            params["Range"] = f"bytes={first}-{last}"
        if if_match is not None:
            params["IfMatch"] = f'"{if_match}"'
        try:
            response: Any = await self.call(
                "GetObject",
                lambda: self.client.get_object(**params),
                idempotent=True,
                BucketName=bucket,
                Key=key,
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                await self.require_bucket(bucket)
                raise S3Error("NoSuchKey", Key=key) from None
            raise
        stream = response["Body"]
        try:
            info = await self.view(key, response)
            span = self._served_span(response, info.size, wanted)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.pool.run(stream.close)
            raise
        skip, length = span
        resolved = None if wanted is None else ByteRange(skip[1], skip[1] + length - 1)
        if length <= 0:
            await self.pool.run(stream.close)
            return GetResult(info, resolved, EmptyBody())
        expected = info.etag if wanted is None and _MD5.fullmatch(info.etag) else None
        body = StreamBody(self.pool, stream, skip[0], length, self.endpoint, expected)
        return GetResult(info, resolved, body)

    def _served_span(
        self, response: Any, size: int, wanted: RangeSpec | ByteRange | None
    ) -> tuple[tuple[int, int], int]:
        """((bytes to skip in the body, first offset), length) of what the client asked,
        checked against what the backend sent (a range, or the whole object)."""
        served_start, served_end = 0, int(response.get("ContentLength") or 0) - 1
        match = _CONTENT_RANGE.fullmatch(str(response.get("ContentRange") or "").strip())
        if match:
            served_start, served_end = int(match.group(1)), int(match.group(2))
        if wanted is None:
            if served_start != 0 or served_end != size - 1:
                raise S3Error("InternalError", "The storage backend sent part of an object.")
            return (0, 0), size
        target = wanted if isinstance(wanted, ByteRange) else wanted.resolve(size)
        if served_start > target.start or served_end < target.end:
            raise S3Error("InternalError", "The storage backend sent the wrong range.")
        return (target.start - served_start, target.start), target.length

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Buffer up to ``part_size`` and send one PutObject, else stream a native multipart
        upload; either commits only after ``body`` verified (see the module docstring)."""
        await self.require_bucket_for_writes(bucket)
        splitter = PartSplitter(body.__aiter__())
        first = await splitter.next(self._part_size_for(body.declared_size, 1))
        if splitter.finished:
            return await self._put_single(bucket, key, first, body, metadata, conditions)
        return await self._put_parts(bucket, key, first, splitter, body, metadata, conditions)

    def _part_size_for(self, declared: int | None, number: int) -> int:
        """Parts of ``part_size``, larger when 10,000 would not hold the object; for an
        unknown size they grow every 1,000 parts (about 440 GB at 8 MiB)."""
        if declared is not None:
            return max(self.part_size, -(-declared // 9_000))
        return self.part_size * (1 + (number - 1) // 1_000)

    async def _put_single(
        self,
        bucket: str,
        key: str,
        data: bytes,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        digest = body.digest()
        info = written_object(key, digest, metadata)
        native_conditions = await self.check_conditions(bucket, key, conditions)
        location = self.namespace.object(bucket, key)
        params: dict[str, Any] = {
            "Bucket": location.container,
            "Key": location.name,
            "Body": data,
            "ContentLength": len(data),
            "ContentMD5": content_md5(data),
            "Metadata": object_metadata(
                info.headers,
                info.user_metadata,
                etag=info.etag,
                checksums=info.checksums,
                checksum_type=info.checksum_type,
            ),
            **native_headers(info.headers),
            **native_conditions,
        }
        await self.call(
            "PutObject",
            lambda: self.client.put_object(**params),
            idempotent=not native_conditions,
            BucketName=bucket,
            Key=key,
        )
        return info

    async def _put_parts(
        self,
        bucket: str,
        key: str,
        first: bytes,
        splitter: PartSplitter,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        location = self.namespace.object(bucket, key)
        token = new_token()
        params: dict[str, Any] = {
            "Bucket": location.container,
            "Key": location.name,
            "Metadata": object_metadata(metadata.headers, metadata.user_metadata, manifest=token),
            **native_headers(metadata.headers),
        }
        created: Any = await self.call(
            "CreateMultipartUpload",
            lambda: self.client.create_multipart_upload(**params),
            BucketName=bucket,
        )
        native = str(created["UploadId"])
        manifest = self.manifest_location(token)
        try:
            parts: list[dict[str, Any]] = []
            data, number = first, 1
            while True:
                last = splitter.finished
                sent: Any = await self.call(
                    "UploadPart",
                    functools.partial(
                        self.client.upload_part,
                        Bucket=location.container,
                        Key=location.name,
                        UploadId=native,
                        PartNumber=number,
                        Body=data,
                        ContentLength=len(data),
                        ContentMD5=content_md5(data),
                    ),
                    idempotent=True,
                )
                parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                if last:
                    break
                number += 1
                data = await splitter.next(self._part_size_for(body.declared_size, number))
            digest = body.digest()
            info = written_object(key, digest, metadata)
            native_conditions = await self.check_conditions(bucket, key, conditions)
            document = encode_manifest(info)
            await self.call(
                "PutObject",
                lambda: self.client.put_object(
                    Bucket=manifest.container, Key=manifest.name, Body=document
                ),
                idempotent=True,
            )
            await self.call(
                "CompleteMultipartUpload",
                lambda: self.client.complete_multipart_upload(
                    Bucket=location.container,
                    Key=location.name,
                    UploadId=native,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                    **native_conditions,  # type: ignore[arg-type]
                ),
                BucketName=bucket,
                Key=key,
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.quietly(
                    "AbortMultipartUpload",
                    lambda: self.client.abort_multipart_upload(
                        Bucket=location.container, Key=location.name, UploadId=native
                    ),
                )
                await self.quietly(
                    "DeleteObject",
                    lambda: self.client.delete_object(Bucket=manifest.container, Key=manifest.name),
                )
            raise
        return info

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Remove ``key`` (absent is fine). A manifest of a removed multipart object stays
        behind (a few hundred bytes, never read again)."""
        await self.require_bucket_for_writes(bucket)
        location = self.namespace.object(bucket, key)
        try:
            await self.call(
                "DeleteObject",
                lambda: self.client.delete_object(Bucket=location.container, Key=location.name),
                idempotent=True,
                BucketName=bucket,
                Key=key,
            )
        except S3Error as error:
            if error.code == "NoSuchKey":
                return
            if error.code == "NoSuchBucket":
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            raise

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """ListObjectsV2 under the bucket's prefix, paged by :mod:`translators.listing`. The
        backend rolls up ``/``; other delimiters (which some S3-compatible servers ignore)
        are rolled up by the engine, reading the keys under each common prefix. Objects
        carry the backend's ETag (for an object the gateway stored through a native
        multipart upload it differs from HEAD's) and no parts or metadata."""
        if self.namespace.mapping == "prefix" or query.max_keys <= 0:
            await self.require_bucket(bucket)
        container = self.namespace.container_for(bucket)
        base = self.namespace.bucket_prefix(bucket)

        async def scan(_: Seek, wanted: int) -> AsyncIterator[tuple[str, ObjectInfo | None]]:
            token: str | None = None
            max_keys = min(1000, wanted + 1)
            while True:
                params: dict[str, Any] = {
                    "Bucket": container,
                    "Prefix": base + query.prefix,
                    "MaxKeys": max_keys,
                }
                if query.delimiter == "/":
                    params["Delimiter"] = "/"
                if token:
                    params["ContinuationToken"] = token
                elif query.start_after and query.start_after > query.prefix:
                    params["StartAfter"] = base + query.start_after
                page: Any = await self.call(
                    "ListObjectsV2",
                    functools.partial(self.client.list_objects_v2, **params),
                    idempotent=True,
                    BucketName=bucket,
                )
                entries = [(str(item["Key"]), item) for item in page.get("Contents", [])]
                entries += [(str(item["Prefix"]), None) for item in page.get("CommonPrefixes", [])]
                entries.sort(key=lambda entry: entry[0].encode())
                for name, item in entries:
                    key = name[len(base) :]
                    yield key, None if item is None else _listed_info(key, item)
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    return
                max_keys = 1000

        page = await listing.collect(listing.objects_page(query), scan, seek_past_prefixes=False)
        if query.max_keys > 0 and not page.count and self.namespace.mapping == "bucket":
            await self.require_bucket(bucket)
        return listing.list_page(page)


def _listed_info(key: str, item: Any) -> ObjectInfo:
    return ObjectInfo(
        key, int(item.get("Size", 0)), unquote(str(item.get("ETag", ""))), item["LastModified"]
    )
