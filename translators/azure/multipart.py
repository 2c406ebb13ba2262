"""Multipart uploads of the Azure translator: parts staged as blocks on the final blob,
one record blob per upload and per part, completion committing the chosen blocks (see
:mod:`translators.azure.backend`)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from azure.core.exceptions import (
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobPrefix

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import listing, multipart
from translators.azure import listing as azure_listing
from translators.azure import records as azure_records
from translators.azure.blocks import BlockWriter
from translators.azure.errors import map_errors
from translators.azure.records import PartRecord
from translators.azure.store import AzureStore
from translators.base import (
    CompletedPart,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)
from translators.namespace import Location

log = logging.getLogger("pagewright.translators.azure")

#: Seconds a bucket seen to exist is trusted without re-reading its marker.
_BUCKET_TTL: Final = 2.0


class AzureMultipart:
    """Multipart uploads over an :class:`~translators.azure.store.AzureStore`;
    ``min_part_size`` is the smallest non-last part completion accepts."""

    def __init__(self, store: AzureStore, min_part_size: int) -> None:
        self.store = store
        self.min_part_size = min_part_size
        self._uploads: dict[tuple[str, str], tuple[float, UploadInfo]] = {}
        self._tokens = azure_listing.TokenCache()  # ListParts continuation tokens

    def forget_bucket(self, bucket: str) -> None:
        """Drop the cached uploads of a deleted bucket."""
        self._uploads = {k: v for k, v in self._uploads.items() if k[0] != bucket}

    def _upload_record(self, bucket: str, upload_id: str) -> Location:
        return self.store.namespace.system("uploads", bucket, upload_id)

    async def _find_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """The upload's record (``NoSuchUpload`` / ``NoSuchBucket``). Records read within
        :data:`_BUCKET_TTL` seconds are reused: parts arrive in bursts, and an upload
        aborted or completed in this process is forgotten at once."""
        seen = self._uploads.get((bucket, upload_id))
        upload = None
        if seen is not None and seen[0] > time.monotonic():
            upload = seen[1]
        elif azure_records.valid_upload_id(upload_id):
            record = self.store.blob(self._upload_record(bucket, upload_id))
            with map_errors(bucket=bucket):
                props = await self.store.properties(record)
            if props is not None:
                upload = azure_records.decode_upload(upload_id, props.metadata)
            if upload is not None:
                self._uploads[(bucket, upload_id)] = (time.monotonic() + _BUCKET_TTL, upload)
                if len(self._uploads) > 1024:
                    self._uploads.pop(next(iter(self._uploads)))
        if upload is None or upload.key != key:
            await self.store.require_bucket(bucket)
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        return upload

    async def _part_records(self, bucket: str, upload_id: str) -> dict[int, PartRecord]:
        start = self._upload_record(bucket, upload_id).name + "/"
        container = self.store.container(self.store.namespace.container)
        records: dict[int, PartRecord] = {}
        with map_errors(bucket=bucket):
            blobs = container.list_blobs(
                name_starts_with=start, include=["metadata"], results_per_page=5000
            )
            async for blob in blobs:
                record = azure_records.decode_part(blob.metadata)
                if record is not None:
                    records[record.part.part_number] = record
        return records

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Write the upload's record; the checksum type defaults as S3's does."""
        checksum_type = multipart.resolve_checksum_type(checksum_algorithm, checksum_type)
        await self.store.require_bucket(bucket)
        self.store.object(bucket, key)  # KeyTooLongError now rather than at the first part
        upload = multipart.new_upload(
            key, self.store.ids.next(), metadata, checksum_algorithm, checksum_type
        )
        await self.store.write_record(
            self._upload_record(bucket, upload.upload_id),
            azure_records.encode_upload(upload),
            bucket,
        )
        return upload

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Stage the part's blocks on the key's blob, then write its record (replacing an
        earlier one of that number, whose blocks the next commit discards)."""
        upload = await self._find_upload(bucket, key, upload_id)
        algorithm = upload.checksum_algorithm
        hasher = checksums.new_hasher(algorithm) if algorithm is not None else None
        writer = BlockWriter(
            self.store.blob(self.store.object(bucket, key)),
            upload_id=upload_id,
            part_number=part_number,
            block_size=self.store.block_size,
            concurrency=self.store.concurrency,
            keep_small=False,
            key=key,
            hasher=hasher,
        )
        await writer.receive(body)
        computed: dict[str, str] = {}
        if algorithm is not None and hasher is not None:
            computed[algorithm] = checksums.encode(hasher.digest())
        part = multipart.received_part(part_number, body.digest(), computed)
        record = PartRecord(part, writer.attempt, len(writer.block_ids))
        location = self._upload_record(bucket, upload_id)
        await self.store.write_record(
            Location(location.container, f"{location.name}/{part_number:05d}"),
            azure_records.encode_part(record),
            bucket,
        )
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
        upload = await self._find_upload(bucket, key, upload_id)
        if max_parts <= 0:
            return upload, PartsPage([], None)
        start = self._upload_record(bucket, upload_id).name + "/"
        container = self.store.container(self.store.namespace.container)
        cache_key = (container.container_name, start, str(part_number_marker))
        _, token = self._tokens.get(cache_key) if part_number_marker else (True, None)
        parts: list[PartInfo] = []
        more = False
        with map_errors(bucket=bucket):
            blobs = container.list_blobs(
                name_starts_with=start,
                include=["metadata"],
                results_per_page=min(max_parts + 1, 5000),
            )
            pages = blobs.by_page(continuation_token=token)
            page_token = token
            async for page in _pages(pages):
                async for blob in page[1]:
                    record = azure_records.decode_part(blob.metadata)
                    if record is None or record.part.part_number <= part_number_marker:
                        continue
                    if len(parts) == max_parts:
                        more = True
                        break
                    parts.append(record.part)
                page_token = page[0]
                if more:
                    break
        if not more:
            return upload, PartsPage(parts, None)
        last = parts[-1].part_number
        self._tokens.put((container.container_name, start, str(last)), page_token)
        return upload, PartsPage(parts, last)

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """Pending uploads by key then initiation, paged from the bucket's upload records."""
        await self.store.require_bucket(bucket)
        start = self.store.namespace.system("uploads", bucket).name + "/"
        container = self.store.container(self.store.namespace.container)
        uploads: list[UploadInfo] = []
        with map_errors(bucket=bucket):
            blobs = container.walk_blobs(
                name_starts_with=start, include=["metadata"], delimiter="/"
            )
            async for item in blobs:
                if isinstance(item, BlobPrefix):
                    continue
                upload = azure_records.decode_upload(item.name[len(start) :], item.metadata)
                if upload is not None:
                    uploads.append(upload)
        return listing.page_uploads(uploads, query)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Validate (:func:`translators.multipart.plan_completion`), commit the chosen
        parts' blocks in order as the object in one request, then drop the records."""
        upload = await self._find_upload(bucket, key, upload_id)
        records = await self._part_records(bucket, upload_id)
        plan = multipart.plan_completion(
            upload,
            {number: record.part for number, record in records.items()},
            parts,
            min_part_size=self.min_part_size,
        )
        block_ids = [
            block for part in plan.parts for block in records[part.part_number].block_ids(upload_id)
        ]
        info = multipart.completed_object(key, upload, plan)
        blob = self.store.blob(self.store.object(bucket, key))
        try:
            info = await self.store.commit(blob, info, conditions, block_ids=block_ids)
        except S3Error as error:
            if error.code == "ConditionalRequestConflict":
                raise S3Error(
                    "InvalidPart",
                    "The upload's staged parts were discarded (a write to this key meanwhile, "
                    "or older than 7 days); upload the parts again.",
                ) from None
            raise
        await self._drop_upload(bucket, upload_id, records)
        return info

    async def _drop_upload(
        self, bucket: str, upload_id: str, records: dict[int, PartRecord] | None = None
    ) -> None:
        self._uploads.pop((bucket, upload_id), None)
        location = self._upload_record(bucket, upload_id)
        container = self.store.container(location.container)
        if records is None:
            records = await self._part_records(bucket, upload_id)
        with map_errors(bucket=bucket), contextlib.suppress(ResourceNotFoundError):
            await container.delete_blob(location.name)
        # The upload is gone once its record is; part records left by a failure here are
        # unreachable, and the sweep (translators.azure.sweep) or deleting the bucket
        # removes them.
        try:
            await self.store.delete_all(container, [f"{location.name}/{n:05d}" for n in records])
        except S3Error as error:
            log.warning("upload %s: part records not all deleted: %s", upload_id, error)

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        """Drop the upload's records; its staged blocks are never committed and Azure
        discards them (at the key's next commit, or after 7 days)."""
        await self._find_upload(bucket, key, upload_id)
        await self._drop_upload(bucket, upload_id)


async def _pages(pages: Any) -> AsyncIterator[tuple[str | None, Any]]:
    """The pages of an Azure pager, each with the continuation token that fetched it."""
    while True:
        token = pages.continuation_token
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return
        yield token, page
