"""The Azure translator's shared plumbing: container and blob clients, where a key lives,
the bucket check (cached briefly), bulk deletes and the conditional commit of a blob's
block list, used by objects and multipart uploads alike."""

from __future__ import annotations

import contextlib
import io
import time
from datetime import UTC, datetime
from typing import Any, Final

import anyio
from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

from core.errors import S3Error
from translators import multipart, objectmeta
from translators.azure import listing as azure_listing
from translators.azure import names as azure_names
from translators.azure.blocks import first_error
from translators.azure.errors import map_errors
from translators.base import (
    BucketInfo,
    ObjectInfo,
    WriteConditions,
)
from translators.namespace import Location, Namespace

#: Seconds a bucket seen to exist is trusted without re-reading its marker.
_BUCKET_TTL: Final = 2.0
#: Parallel requests when deleting an upload's part records.
_CLEANUP_CONCURRENCY: Final = 16


class AzureStore:
    """One service client and what every part of the translator needs from it."""

    def __init__(
        self, namespace: Namespace, service: BlobServiceClient, *, concurrency: int, block_size: int
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.concurrency = concurrency
        self.block_size = block_size
        self.ids = multipart.UploadIds()
        self.buckets: dict[str, tuple[float, BucketInfo]] = {}
        self._containers: dict[str, ContainerClient] = {}

    def container(self, name: str) -> ContainerClient:
        client = self._containers.get(name)
        if client is None:
            client = self._containers[name] = self.service.get_container_client(name)
        return client

    def blob(self, location: Location) -> BlobClient:
        return self.container(location.container).get_blob_client(location.name)

    def object(self, bucket: str, key: str) -> Location:
        """Where ``key`` lives. Azure itself rejects names past 1,024 characters."""
        location = self.namespace.object(bucket, "")
        return Location(location.container, location.name + azure_names.relative_name(key))

    async def write_record(self, location: Location, metadata: dict[str, str], bucket: str) -> None:
        """Write an empty blob at ``location`` whose ``metadata`` is the record (of an upload
        or a part), replacing one there; errors are ``bucket``'s."""
        with map_errors(bucket=bucket):
            await self.blob(location).upload_blob(b"", overwrite=True, metadata=metadata)

    async def properties(self, blob: BlobClient) -> Any | None:
        """A blob's properties, or None when it does not exist."""
        try:
            return await blob.get_blob_properties()
        except ResourceNotFoundError:
            return None

    async def require_bucket(self, bucket: str) -> BucketInfo:
        """The bucket, from its marker; ``NoSuchBucket`` if absent. A bucket seen within
        :data:`_BUCKET_TTL` seconds is not re-read (writes are hot; deleting a bucket in
        this process forgets it at once, in another process within the TTL)."""
        seen = self.buckets.get(bucket)
        if seen is not None and seen[0] > time.monotonic():
            return seen[1]
        with map_errors(bucket=bucket):
            props = await self.properties(self.blob(self.namespace.bucket_marker(bucket)))
        if props is None:
            self.buckets.pop(bucket, None)
            raise S3Error("NoSuchBucket", BucketName=bucket)
        created = (props.metadata or {}).get("created")
        when = datetime.fromtimestamp(float(created), UTC) if created else props.creation_time
        info = BucketInfo(bucket, when)
        self.buckets[bucket] = (time.monotonic() + _BUCKET_TTL, info)
        return info

    async def delete_all(self, container: ContainerClient, names: list[str]) -> None:
        limiter = anyio.Semaphore(_CLEANUP_CONCURRENCY)

        async def delete_once(name: str) -> None:
            with contextlib.suppress(ResourceNotFoundError):
                await container.delete_blob(name)

        async def delete(name: str) -> None:
            async with limiter:
                with map_errors():
                    await delete_once(name)

        try:
            async with anyio.create_task_group() as group:
                for name in names:
                    group.start_soon(delete, name)
        except BaseExceptionGroup as group:
            raise first_error(group) from None

    async def commit_conditions(
        self, blob: BlobClient, key: str, conditions: WriteConditions
    ) -> dict[str, Any]:
        """The request conditions that make ``conditions`` atomic with the commit."""
        if conditions.if_match is not None:
            with map_errors(key=key):
                props = await self.properties(blob)
            current = None if props is None else azure_listing.object_info(key, props)
            try:
                conditions.check(current)
            except S3Error as error:
                if error.code == "NoSuchKey":
                    raise S3Error("NoSuchKey", Key=key) from None
                raise
            assert props is not None
            return {"etag": props.etag, "match_condition": MatchConditions.IfNotModified}
        if conditions.if_none_match is not None:
            return {"match_condition": MatchConditions.IfMissing}
        return {}

    async def commit(
        self,
        blob: BlobClient,
        info: ObjectInfo,
        conditions: WriteConditions,
        *,
        block_ids: list[str] | None,
        small: bytes | None = None,
    ) -> ObjectInfo:
        """Make ``info`` visible: one Put Blob of ``small`` or one Put Block List."""
        request = await self.commit_conditions(blob, info.key, conditions)
        headers = info.headers
        settings = ContentSettings(
            content_type=headers.get("content-type"),
            content_encoding=headers.get("content-encoding"),
            content_language=headers.get("content-language"),
            content_disposition=headers.get("content-disposition"),
            cache_control=headers.get("cache-control"),
        )
        metadata = objectmeta.encode(info)
        try:
            with map_errors(key=info.key):
                if block_ids is None:
                    data = small or b""
                    result = await blob.upload_blob(
                        io.BytesIO(data),
                        length=len(data),
                        overwrite=True,
                        metadata=metadata,
                        content_settings=settings,
                        **request,
                    )
                else:
                    result = await blob.commit_block_list(
                        [BlobBlock(block_id) for block_id in block_ids],
                        metadata=metadata,
                        content_settings=settings,
                        **request,
                    )
        except S3Error as error:
            if error.code == "PreconditionFailed" and conditions.if_none_match is not None:
                raise S3Error("PreconditionFailed", Condition="If-None-Match") from None
            raise
        modified = result.get("last_modified") or info.last_modified
        return ObjectInfo(
            key=info.key,
            size=info.size,
            etag=info.etag,
            last_modified=modified,
            headers=info.headers,
            user_metadata=info.user_metadata,
            checksums=info.checksums,
            checksum_type=info.checksum_type,
            parts=info.parts,
        )
