"""The Azure Blob Storage translator (async SDK, ``azure.storage.blob.aio``).

Where things live: see :mod:`translators.namespace` (``prefix`` mapping by default: every
gateway bucket under ``<prefix>/<bucket>/`` of the one configured container; ``bucket``
mapping: a container per gateway bucket) and :mod:`translators.azure_names` (keys Azure
cannot hold verbatim are escaped). A bucket exists while its marker blob does; the marker
holds the creation time. S3 semantics (ETag, checksums, headers, user metadata, part
layout) travel in one metadata entry (:mod:`translators.objectmeta`); native
ContentSettings are set too, for other tools.

Writes: a body is staged in bounded blocks and made visible by ONE ``commit_block_list``
(a body shorter than one block by one Put Blob) only after the :class:`PayloadStream`
verified it, with the write's conditions attached to that request: If-None-Match ``*`` as
``If-None-Match: *``; If-Match compares the gateway ETag, which Azure does not know, so the
current blob's properties are read and the commit carries ``If-Match: <its Azure ETag>``,
which makes the check and the commit atomic.

Multipart staging, the design choice: a part's blocks are staged **on the final blob**
(the key's own name) and completion commits the chosen parts' block ids in order: no byte
is copied, completion is one request whatever the size, and 10,000 parts cost 10,000
``stage_block`` calls. Azure offers no way to move staged blocks between blobs; the
alternative, a blob per part plus ``put_block_from_url`` at completion, copies every byte
again, needs a SAS or bearer token the source can be read with (not available with every
credential), and doubles the requests. The price, documented as a limitation: Azure drops
a blob's uncommitted blocks when any block list or Put Blob is committed to it, so a
PutObject, DeleteObject or another completed upload on the same key while an upload is
pending discards that upload's staged parts; its completion then fails with ``InvalidPart``
(the records remain, so the client sees why and can re-upload), never with wrong data.
Azure also garbage-collects blocks left uncommitted for 7 days, so an upload pending
longer cannot be completed. Every staged block id has one length (see
:func:`translators.azure_names.block_id`), as Azure requires per blob, and carries a
per-attempt nonce so a re-uploaded part never overwrites blocks a record still names.

Reads: GetObject without a range streams one ``download_blob`` and takes the properties
from the downloader; with a range or part number it reads the properties, resolves the
range, and downloads with ``If-Match`` on that version (retrying if it was replaced in
between). Chunks are at most 1 MiB. A read slower than an overwrite of a blob larger than
one chunk fails rather than mix versions (Azure keeps no old version to finish from).

Retries: one layer, the SDK's (``retry_total=3``: exponential backoff with jitter on
connection errors, 408, 429 and 5xx); the translator itself retries no call. The SDK's
policy covers what a gateway loop could not wrap: listings being iterated and downloads
being streamed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import anyio
from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import BlobClient, BlobPrefix, BlobServiceClient, ContainerClient

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import (
    azure_listing,
    azure_names,
    azure_records,
    listing,
    multipart,
    objectmeta,
)
from translators.azure_blocks import BlockWriter, DownloadBody, first_error
from translators.azure_errors import map_errors
from translators.azure_records import PartRecord
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
    written_object,
)
from translators.config import BackendConfigError, BackendSpec
from translators.namespace import Location, Namespace

log = logging.getLogger("pagewright.translators.azure")

MIB: Final = 1024 * 1024
#: Bytes per staged block (Azure allows 4,000 MiB; this bounds memory per transfer).
BLOCK_SIZE: Final = 4 * MIB
#: Largest chunk a GetObject body yields.
CHUNK_SIZE: Final = MIB
#: Attempts to open a version of a key that keeps being replaced.
_OPEN_ATTEMPTS: Final = 5
#: Seconds a bucket seen to exist is trusted without re-reading its marker.
_BUCKET_TTL: Final = 2.0
#: Parallel requests when deleting an upload's part records.
_CLEANUP_CONCURRENCY: Final = 16
_CONTAINER_NAME: Final = r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"


class AzureBackend:
    """A :class:`translators.base.Backend` over Azure Blob Storage (see the module docs).

    ``service`` is the process's one client (closed by :meth:`close`, with ``credential``
    if given). ``concurrency`` bounds the blocks in flight per transfer, ``block_size`` their
    size; ``min_part_size`` is the smallest non-last part completion accepts (S3: 5 MiB);
    ``create`` makes :meth:`start` create the configured container when it is missing.
    """

    name = "azure"

    def __init__(
        self,
        namespace: Namespace,
        service: BlobServiceClient,
        *,
        credential: Any = None,
        concurrency: int = 4,
        block_size: int = BLOCK_SIZE,
        min_part_size: int = multipart.MIN_PART_SIZE,
        create: bool = False,
    ) -> None:
        if block_size * 0x10000 < 5 * 1024 * MIB:
            raise ValueError("block_size must let 65,536 blocks hold 5 GiB")
        self.namespace = namespace
        self.service = service
        self.concurrency = max(1, concurrency)
        self.block_size = block_size
        self.min_part_size = min_part_size
        self.create = create
        self._credential = credential
        self._containers: dict[str, ContainerClient] = {}
        self._tokens = azure_listing.TokenCache()
        self._ids = azure_records.UploadIds()
        self._buckets: dict[str, tuple[float, BucketInfo]] = {}
        self._uploads: dict[tuple[str, str], tuple[float, UploadInfo]] = {}

    @classmethod
    def from_spec(cls, spec: BackendSpec, environ: Mapping[str, str]) -> AzureBackend:
        """Build from a backend URL and credentials in ``environ``, first match wins:
        ``AZURE_STORAGE_CONNECTION_STRING``; else ``AZURE_STORAGE_ACCOUNT_URL`` (or
        ``AZURE_STORAGE_ACCOUNT`` → ``https://<account>.blob.core.windows.net``) with
        ``AZURE_STORAGE_KEY``, ``AZURE_STORAGE_SAS_TOKEN`` or, lacking both,
        DefaultAzureCredential. Options: ``concurrency=N``, ``create=true``,
        ``min_part_size=BYTES``, ``block_size=BYTES``."""
        options = dict(spec.options)
        try:
            concurrency = int(options.pop("concurrency", "4"))
            block_size = int(options.pop("block_size", str(BLOCK_SIZE)))
            min_part_size = int(options.pop("min_part_size", str(multipart.MIN_PART_SIZE)))
        except ValueError as error:
            raise BackendConfigError(f"azure backend: {error}") from None
        create = options.pop("create", "false").lower() in ("1", "true", "yes")
        if options:
            raise BackendConfigError(f"azure backend: unknown options {sorted(options)}")
        client_options: dict[str, Any] = {
            "max_single_get_size": CHUNK_SIZE,
            "max_chunk_get_size": CHUNK_SIZE,
            "max_single_put_size": block_size,
            "max_block_size": block_size,
            # The one retry layer: the SDK's exponential retry (3 retries, with jitter) on
            # connection errors, 408, 429 and 5xx, for every call including streamed ones.
            "retry_total": 3,
        }
        credential: Any = None
        connection = environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if connection:
            service = BlobServiceClient.from_connection_string(connection, **client_options)
        else:
            account = environ.get("AZURE_STORAGE_ACCOUNT", "")
            url = environ.get("AZURE_STORAGE_ACCOUNT_URL") or (
                f"https://{account}.blob.core.windows.net" if account else ""
            )
            if not url:
                raise BackendConfigError(
                    "azure backend: set AZURE_STORAGE_CONNECTION_STRING, or "
                    "AZURE_STORAGE_ACCOUNT_URL / AZURE_STORAGE_ACCOUNT with a credential"
                )
            key = environ.get("AZURE_STORAGE_KEY")
            sas = environ.get("AZURE_STORAGE_SAS_TOKEN")
            auth: Any
            if key:
                name = account or url.split("//", 1)[-1].split(".", 1)[0]
                auth = {"account_name": name, "account_key": key}
            elif sas:
                auth = sas.lstrip("?")
            else:
                from azure.identity.aio import DefaultAzureCredential

                auth = credential = DefaultAzureCredential()
            service = BlobServiceClient(url, credential=auth, **client_options)
        try:
            namespace = spec.namespace()
        except ValueError as error:
            raise BackendConfigError(f"azure backend: {error}") from None
        return cls(
            namespace,
            service,
            credential=credential,
            concurrency=concurrency,
            block_size=block_size,
            min_part_size=min_part_size,
            create=create,
        )

    # Lifecycle

    async def start(self) -> None:
        """Check that the configured container exists; create it if ``create`` is set."""
        container = self._container(self.namespace.container)
        try:
            await container.get_container_properties()
            return
        except ResourceNotFoundError:
            if not self.create:
                raise S3Error(
                    "ServiceUnavailable",
                    f"Azure container {self.namespace.container!r} does not exist; create it "
                    "or add create=true to the backend URL.",
                ) from None
        except Exception as error:
            with map_errors():
                raise error
        with map_errors(), contextlib.suppress(ResourceExistsError):
            await container.create_container()

    async def close(self) -> None:
        await self.service.close()
        if self._credential is not None:
            await self._credential.close()

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` unless the configured container answers."""
        try:
            await self._container(self.namespace.container).get_container_properties()
        except Exception as error:
            log.warning("Azure readiness check failed: %s", error)
            raise S3Error(
                "ServiceUnavailable", "Azure Blob Storage is not reachable or not set up."
            ) from error

    # Plumbing

    def _container(self, name: str) -> ContainerClient:
        client = self._containers.get(name)
        if client is None:
            client = self._containers[name] = self.service.get_container_client(name)
        return client

    def _blob(self, location: Location) -> BlobClient:
        return self._container(location.container).get_blob_client(location.name)

    def _object(self, bucket: str, key: str) -> Location:
        """Where ``key`` lives. Azure itself rejects names past 1,024 characters."""
        location = self.namespace.object(bucket, "")
        return Location(location.container, location.name + azure_names.relative_name(key))

    async def _properties(self, blob: BlobClient) -> Any | None:
        """A blob's properties, or None when it does not exist."""
        try:
            return await blob.get_blob_properties()
        except ResourceNotFoundError:
            return None

    async def _require_bucket(self, bucket: str) -> BucketInfo:
        """The bucket, from its marker; ``NoSuchBucket`` if absent. A bucket seen within
        :data:`_BUCKET_TTL` seconds is not re-read (writes are hot; deleting a bucket in
        this process forgets it at once, in another process within the TTL)."""
        seen = self._buckets.get(bucket)
        if seen is not None and seen[0] > time.monotonic():
            return seen[1]
        with map_errors(bucket=bucket):
            props = await self._properties(self._blob(self.namespace.bucket_marker(bucket)))
        if props is None:
            self._buckets.pop(bucket, None)
            raise S3Error("NoSuchBucket", BucketName=bucket)
        created = (props.metadata or {}).get("created")
        when = datetime.fromtimestamp(float(created), UTC) if created else props.creation_time
        info = BucketInfo(bucket, when)
        self._buckets[bucket] = (time.monotonic() + _BUCKET_TTL, info)
        return info

    async def _delete_all(self, container: ContainerClient, names: list[str]) -> None:
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

    # Buckets

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        container = self._container(self.namespace.container)
        start = self.namespace.buckets_prefix()
        buckets: list[BucketInfo] = []
        with map_errors():
            async for blob in container.list_blobs(name_starts_with=start, include=["metadata"]):
                created = (blob.metadata or {}).get("created")
                when = (
                    datetime.fromtimestamp(float(created), UTC) if created else blob.creation_time
                )
                buckets.append(BucketInfo(blob.name[len(start) :], when))
        return sorted(buckets, key=lambda b: b.name)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """Write the bucket's marker (If-None-Match: *); with the bucket mapping, create its
        container first (``InvalidBucketName`` for a name Azure cannot hold)."""
        if self.namespace.mapping == "bucket":
            container = self.namespace.container_for(bucket)
            if not re.match(_CONTAINER_NAME, container):
                raise S3Error(
                    "InvalidBucketName",
                    f"Azure cannot name a container {container!r} (3-63 lower-case letters, "
                    "digits and single hyphens); use the prefix mapping for this bucket name.",
                    BucketName=bucket,
                )
            with map_errors(bucket=bucket), contextlib.suppress(ResourceExistsError):
                await self._container(container).create_container()
        marker = self._blob(self.namespace.bucket_marker(bucket))
        try:
            with map_errors(bucket=bucket):
                await marker.upload_blob(
                    b"",
                    overwrite=True,
                    metadata={"created": repr(datetime.now(UTC).timestamp())},
                    match_condition=MatchConditions.IfMissing,
                )
        except S3Error as error:
            if error.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket) from None
            raise

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        self._buckets.pop(bucket, None)
        return await self._require_bucket(bucket)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` while any object remains; pending uploads are aborted."""
        self._buckets.pop(bucket, None)
        await self._require_bucket(bucket)
        location = self.namespace.object(bucket, "")
        container = self._container(location.container)
        with map_errors(bucket=bucket):
            async for _ in container.list_blobs(name_starts_with=location.name, results_per_page=1):
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            uploads = self.namespace.system("uploads", bucket).name + "/"
            system = self._container(self.namespace.container)
            records = [b.name async for b in system.list_blobs(name_starts_with=uploads)]
        await self._delete_all(system, sorted(records, key=len))
        self._buckets.pop(bucket, None)
        self._uploads = {k: v for k, v in self._uploads.items() if k[0] != bucket}
        with map_errors(bucket=bucket):
            try:
                await self._blob(self.namespace.bucket_marker(bucket)).delete_blob()
            except ResourceNotFoundError:
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            if self.namespace.mapping == "bucket":
                with contextlib.suppress(ResourceNotFoundError):
                    await container.delete_container()

    # Objects

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        blob = self._blob(self._object(bucket, key))
        with map_errors(bucket=bucket, key=key):
            props = await self._properties(blob)
        if props is None:
            await self._require_bucket(bucket)
            raise S3Error("NoSuchKey", Key=key)
        return azure_listing.object_info(key, props)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current version; see :meth:`translators.base.Backend.get_object`."""
        blob = self._blob(self._object(bucket, key))
        for _ in range(_OPEN_ATTEMPTS):
            try:
                with map_errors(bucket=bucket, key=key):
                    if options.range is None and options.part_number is None:
                        downloader = await blob.download_blob(decompress=False)
                        info = azure_listing.object_info(key, downloader.properties)
                        return GetResult(info, None, DownloadBody(downloader, key))
                    props = await blob.get_blob_properties()
                    info = azure_listing.object_info(key, props)
                    if options.part_number is not None:
                        span = multipart.part_range(info.size, info.parts, options.part_number)
                    else:
                        assert options.range is not None
                        span = options.range.resolve(info.size)
                    if span is not None and span.length <= 0:
                        return GetResult(info, span, DownloadBody(None, key))
                    offset, length = (None, None) if span is None else (span.start, span.length)
                    downloader = await blob.download_blob(
                        offset=offset,
                        length=length,
                        decompress=False,
                        etag=props.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                    return GetResult(info, span, DownloadBody(downloader, key))
            except ResourceNotFoundError:
                await self._require_bucket(bucket)
                raise S3Error("NoSuchKey", Key=key) from None
            except ResourceModifiedError:
                continue  # replaced between reading its properties and opening it
            except S3Error as error:
                if error.code == "NoSuchKey":
                    await self._require_bucket(bucket)
                if error.code != "PreconditionFailed":
                    raise
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    async def _commit_conditions(
        self, blob: BlobClient, key: str, conditions: WriteConditions
    ) -> dict[str, Any]:
        """The request conditions that make ``conditions`` atomic with the commit."""
        if conditions.if_match is not None:
            with map_errors(key=key):
                props = await self._properties(blob)
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

    async def _commit(
        self,
        blob: BlobClient,
        info: ObjectInfo,
        conditions: WriteConditions,
        *,
        block_ids: list[str] | None,
        small: bytes | None = None,
    ) -> ObjectInfo:
        """Make ``info`` visible: one Put Blob of ``small`` or one Put Block List."""
        request = await self._commit_conditions(blob, info.key, conditions)
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

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Stage ``body`` in blocks, then commit it and its conditions in one request."""
        await self._require_bucket(bucket)
        blob = self._blob(self._object(bucket, key))
        writer = BlockWriter(
            blob,
            upload_id=self._ids.next(),
            part_number=0,
            block_size=self.block_size,
            concurrency=self.concurrency,
            keep_small=True,
            key=key,
        )
        await writer.receive(body)
        digest = body.digest()
        info = written_object(key, digest, metadata)
        if writer.small is not None:
            return await self._commit(blob, info, conditions, block_ids=None, small=writer.small)
        return await self._commit(blob, info, conditions, block_ids=writer.block_ids)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Delete ``key`` (and any snapshots); absent keys succeed, absent buckets do not."""
        blob = self._blob(self._object(bucket, key))
        try:
            with map_errors(bucket=bucket, key=key):
                await blob.delete_blob(delete_snapshots="include")
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            await self._require_bucket(bucket)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery` and
        :mod:`translators.azure_listing`."""
        location = self.namespace.object(bucket, "")
        container = self._container(location.container)
        with map_errors(bucket=bucket):
            page = await azure_listing.list_objects(container, location.name, query, self._tokens)
        if not page.objects and not page.common_prefixes:
            await self._require_bucket(bucket)
        return page

    # Multipart

    def _upload_record(self, bucket: str, upload_id: str) -> Location:
        return self.namespace.system("uploads", bucket, upload_id)

    async def _find_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """The upload's record (``NoSuchUpload`` / ``NoSuchBucket``). Records read within
        :data:`_BUCKET_TTL` seconds are reused: parts arrive in bursts, and an upload
        aborted or completed in this process is forgotten at once."""
        seen = self._uploads.get((bucket, upload_id))
        upload = None
        if seen is not None and seen[0] > time.monotonic():
            upload = seen[1]
        elif azure_records.valid_upload_id(upload_id):
            record = self._blob(self._upload_record(bucket, upload_id))
            with map_errors(bucket=bucket):
                props = await self._properties(record)
            if props is not None:
                upload = azure_records.decode_upload(upload_id, props.metadata)
            if upload is not None:
                self._uploads[(bucket, upload_id)] = (time.monotonic() + _BUCKET_TTL, upload)
                if len(self._uploads) > 1024:
                    self._uploads.pop(next(iter(self._uploads)))
        if upload is None or upload.key != key:
            await self._require_bucket(bucket)
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        return upload

    async def _part_records(self, bucket: str, upload_id: str) -> dict[int, PartRecord]:
        start = self._upload_record(bucket, upload_id).name + "/"
        container = self._container(self.namespace.container)
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
        await self._require_bucket(bucket)
        self._object(bucket, key)  # KeyTooLongError now rather than at the first part
        upload = UploadInfo(
            key=key,
            upload_id=self._ids.next(),
            initiated=datetime.now(UTC),
            metadata=WriteMetadata(dict(metadata.headers), dict(metadata.user_metadata)),
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
        )
        record = self._blob(self._upload_record(bucket, upload.upload_id))
        with map_errors(bucket=bucket):
            await record.upload_blob(
                b"", overwrite=True, metadata=azure_records.encode_upload(upload)
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
            self._blob(self._object(bucket, key)),
            upload_id=upload_id,
            part_number=part_number,
            block_size=self.block_size,
            concurrency=self.concurrency,
            keep_small=False,
            key=key,
            hasher=hasher,
        )
        await writer.receive(body)
        digest = body.digest()
        part_checksums = dict(digest.checksums)
        if algorithm is not None and hasher is not None and algorithm not in part_checksums:
            part_checksums[algorithm] = checksums.encode(hasher.digest())
        part = PartInfo(part_number, digest.size, digest.md5_hex, datetime.now(UTC), part_checksums)
        record = PartRecord(part, writer.attempt, len(writer.block_ids))
        location = self._upload_record(bucket, upload_id)
        part_blob = self._blob(Location(location.container, f"{location.name}/{part_number:05d}"))
        with map_errors(bucket=bucket):
            await part_blob.upload_blob(
                b"", overwrite=True, metadata=azure_records.encode_part(record)
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
        container = self._container(self.namespace.container)
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
        await self._require_bucket(bucket)
        start = self.namespace.system("uploads", bucket).name + "/"
        container = self._container(self.namespace.container)
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
        blob = self._blob(self._object(bucket, key))
        try:
            info = await self._commit(blob, info, conditions, block_ids=block_ids)
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
        container = self._container(location.container)
        if records is None:
            records = await self._part_records(bucket, upload_id)
        with map_errors(bucket=bucket), contextlib.suppress(ResourceNotFoundError):
            await container.delete_blob(location.name)
        # The upload is gone once its record is; part records left by a failure here are
        # unreachable, and deleting the bucket sweeps them.
        try:
            await self._delete_all(container, [f"{location.name}/{n:05d}" for n in records])
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
