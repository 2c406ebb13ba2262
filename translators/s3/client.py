"""The plumbing the S3 translator's operations share: one boto3 client, the pool its calls
run in, error mapping and retries, gateway-bucket checks, object lookups and write
conditions. :class:`translators.s3.S3Backend` builds on it."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from core.errors import S3Error
from core.retries import retried
from translators import multipart
from translators.base import ObjectInfo, WriteConditions, WriteMetadata
from translators.blocking import BlockingPool
from translators.namespace import Location, Namespace
from translators.s3.codec import (
    apply_manifest,
    encode_manifest,
    native_headers,
    new_token,
    object_metadata,
    read_object,
    unquote,
)
from translators.s3.errors import map_errors
from translators.seen import SeenBuckets

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
log = logging.getLogger("pagewright.translators.s3")

#: Default size of the part buffers of a PutObject sent as a native multipart upload;
#: bodies up to this size are sent in one PutObject.
PART_SIZE: Final = 8 * 1024 * 1024


def count_retries(client: S3Client) -> None:
    """Report each retry ``client``'s botocore makes to :func:`core.retries.retried` (the
    ``request-created`` event fires once per attempt; attempts after the first are retries)."""

    def created(request: Any, **_: Any) -> None:
        context = getattr(request, "context", None) or {}
        if context.get("retries", {}).get("attempt", 1) > 1:
            retried()

    client.meta.events.register("request-created.s3", created)


@dataclass(frozen=True)
class Found:
    """A stored object: the gateway's view and the backend's own ETag of that version."""

    info: ObjectInfo
    backend_etag: str


class S3Store:
    """Shared state and helpers; see :class:`translators.s3.S3Backend` for the contracts."""

    def __init__(
        self,
        client: S3Client,
        namespace: Namespace,
        *,
        stream_client: S3Client | None = None,
        pool_size: int = 32,
        part_size: int = PART_SIZE,
        min_part_size: int = multipart.MIN_PART_SIZE,
        create: bool = False,
        native_conditions: bool = True,
    ) -> None:
        if part_size < multipart.MIN_PART_SIZE:
            raise ValueError("part_size must be at least 5 MiB (S3's minimum part size)")
        self.client = client
        # Streamed bodies cannot be rewound, so botocore must not retry them.
        self.stream_client = stream_client or client
        self.namespace = namespace
        self.pool = BlockingPool(pool_size)
        self.part_size = part_size
        self.min_part_size = min_part_size
        self.create = create
        self.native_conditions = native_conditions
        self.endpoint = str(client.meta.endpoint_url)
        self.seen = SeenBuckets()  # gateway buckets found recently (translators.seen)

    # Calls

    async def call(self, operation: str, call: Callable[[], T], **fields: str) -> T:
        """Run one blocking SDK ``call`` in the pool inside :func:`map_errors` (botocore
        retries it; see :class:`translators.s3.backend.S3Backend`)."""
        with map_errors(self.endpoint, operation, **fields):
            return await self.pool.run(call)

    async def quietly(self, operation: str, call: Callable[[], object]) -> None:
        """Best-effort cleanup: failures are logged, never raised."""
        try:
            await self.call(operation, call)
        except S3Error as error:
            log.warning("S3 backend %s: cleanup %s failed: %s", self.endpoint, operation, error)

    # Gateway buckets

    async def require_bucket(self, bucket: str) -> None:
        """``NoSuchBucket`` unless the gateway bucket's marker exists."""
        marker = self.namespace.bucket_marker(bucket)
        try:
            await self.call(
                "HeadObject",
                lambda: self.client.head_object(Bucket=marker.container, Key=marker.name),
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            raise

    async def require_bucket_seen(self, bucket: str) -> None:
        """:meth:`require_bucket` for the paths that run on every request (writes and
        listings): a bucket found is trusted for a moment (:mod:`translators.seen`)."""
        if not self.seen.trusted(bucket):
            await self.require_bucket(bucket)
            self.seen.found(bucket)

    async def require_bucket_for_writes(self, bucket: str) -> None:
        """Before a write: in ``prefix`` mapping nothing else would stop a write into a
        gateway bucket that does not exist; in ``bucket`` mapping the backend bucket does."""
        if self.namespace.mapping == "prefix":
            await self.require_bucket_seen(bucket)

    # Objects

    async def stat(self, bucket: str, key: str, version_id: str | None = None) -> Found | None:
        """The current object at ``key`` (or its backend version ``version_id``; manifest
        applied, ``version_id`` the backend's), None if absent; NoSuchBucket."""
        location = self.namespace.object(bucket, key)
        params: dict[str, Any] = {"Bucket": location.container, "Key": location.name}
        if version_id is not None:
            params["VersionId"] = version_id
        try:
            response: Any = await self.call(
                "HeadObject",
                functools.partial(self.client.head_object, **params),
                BucketName=bucket,
                Key=key,
            )
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            await self.require_bucket(bucket)
            return None
        return Found(await self.view(key, response), unquote(str(response.get("ETag", ""))))

    async def find(self, bucket: str, key: str, version_id: str | None = None) -> Found:
        found = await self.stat(bucket, key, version_id)
        if found is None:
            raise S3Error("NoSuchKey", Key=key)
        return found

    async def view(self, key: str, response: Any) -> ObjectInfo:
        """The gateway's ObjectInfo of a HEAD/GET response, with its manifest if it has one."""
        stored = read_object(key, response)
        version = response.get("VersionId")
        if version is not None:
            stored = replace(stored, info=replace(stored.info, version_id=str(version)))
        if stored.manifest is None:
            return stored.info
        manifest = self.manifest_location(stored.manifest)
        try:
            body = await self.call(
                "GetObject",
                lambda: self.client.get_object(Bucket=manifest.container, Key=manifest.name)[
                    "Body"
                ].read(),
            )
        except S3Error as error:
            if error.code != "NoSuchKey":
                raise
            log.warning("S3 backend %s: manifest %s of %r is missing", self.endpoint, manifest, key)
            return stored.info
        return apply_manifest(stored.info, body)

    async def bookkeeping_pages(
        self, prefix: str, start_after: str = ""
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The ListObjectsV2 pages (their ``Contents``) of the names under ``prefix`` in the
        bookkeeping container, from after ``start_after``, until the listing ends."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.namespace.container, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            elif start_after:
                params["StartAfter"] = start_after
            page: Any = await self.call(
                "ListObjectsV2", functools.partial(self.client.list_objects_v2, **params)
            )
            yield list(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def delete_names(self, names: list[str]) -> int:
        """Delete bookkeeping objects, 1,000 per request; how many were deleted (failures
        are logged). Bookkeeping keeps no history: in a versioned backend bucket the delete
        markers this adds and the older versions of those names are deleted too."""
        deleted = 0
        for start in range(0, len(names), 1000):
            batch: list[Any] = [{"Key": name} for name in names[start : start + 1000]]
            answer: Any = await self.call(
                "DeleteObjects",
                functools.partial(
                    self.client.delete_objects,
                    Bucket=self.namespace.container,
                    Delete={"Objects": batch, "Quiet": False},
                ),
            )
            failed = answer.get("Errors", [])
            if failed:
                log.warning(
                    "S3 backend %s: %d bookkeeping objects not deleted, e.g. %s: %s",
                    self.endpoint,
                    len(failed),
                    failed[0].get("Key"),
                    failed[0].get("Message") or failed[0].get("Code"),
                )
            deleted += len(batch) - len(failed)
            for item in answer.get("Deleted", []):
                if item.get("DeleteMarker"):
                    await self._delete_history(str(item["Key"]))
        return deleted

    async def _delete_history(self, name: str) -> None:
        """Delete every version and delete marker of bookkeeping object ``name``."""
        listing: Any = await self.call(
            "ListObjectVersions",
            functools.partial(
                self.client.list_object_versions, Bucket=self.namespace.container, Prefix=name
            ),
        )
        entries: list[Any] = [
            {"Key": name, "VersionId": str(item["VersionId"])}
            for field in ("Versions", "DeleteMarkers")
            for item in listing.get(field, [])
            if item["Key"] == name
        ]
        if entries:
            await self.call(
                "DeleteObjects",
                functools.partial(
                    self.client.delete_objects,
                    Bucket=self.namespace.container,
                    Delete={"Objects": entries, "Quiet": True},
                ),
            )

    def manifest_location(self, token: str) -> Location:
        return self.namespace.system("manifests", token)

    async def start_native_upload(
        self, bucket: str, location: Location, metadata: WriteMetadata
    ) -> tuple[str, str]:
        """Start a native multipart upload at ``location`` carrying ``metadata`` and a new
        manifest token; that token and the native upload id."""
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
        return token, str(created["UploadId"])

    async def write_manifest(self, token: str, bucket: str, info: ObjectInfo) -> None:
        """Write the manifest of ``info``, an object of gateway bucket ``bucket`` (what a
        multipart object's native copy cannot carry) under ``token``, before the native
        upload completes."""
        manifest = self.manifest_location(token)
        document = encode_manifest(info, bucket)
        await self.call(
            "PutObject",
            lambda: self.client.put_object(
                Bucket=manifest.container, Key=manifest.name, Body=document
            ),
        )

    async def check_conditions(
        self, bucket: str, key: str, conditions: WriteConditions
    ) -> dict[str, str]:
        """Check ``conditions`` against the current object with the gateway's ETags and
        return the native conditions that make the commit fail if that object changed
        meanwhile. A backend that ignores them (rclone) leaves a race between this check
        and the commit; S3, MinIO and moto enforce them."""
        if conditions.if_match is None and conditions.if_none_match is None:
            return {}
        found = await self.stat(bucket, key)
        try:
            conditions.check(found.info if found else None)
        except S3Error as error:
            if error.code == "NoSuchKey":
                raise S3Error("NoSuchKey", Key=key) from None
            raise
        native: dict[str, str] = {}
        if not self.native_conditions:
            return native
        if conditions.if_none_match is not None:
            native["IfNoneMatch"] = "*"
        if conditions.if_match is not None and found is not None:
            native["IfMatch"] = f'"{found.backend_etag}"'
        return native
