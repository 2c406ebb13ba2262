"""The Azure Blob Storage translator (async SDK, ``azure.storage.blob.aio``).

Where things live: see :mod:`translators.namespace` (``prefix`` mapping by default: every
gateway bucket under ``<prefix>/<bucket>/`` of the one configured container; ``bucket``
mapping: a container per gateway bucket) and :mod:`translators.azure.names` (keys Azure
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
:func:`translators.azure.names.block_id`), as Azure requires per blob, and carries a
per-attempt nonce so a re-uploaded part never overwrites blocks a record still names.

Leftovers: blocks staged by an interrupted write stay uncommitted until the key's next
commit or Azure's 7-day garbage collection; records a crash or a failed cleanup left (part
records of ended uploads, records of deleted buckets) are deleted by :meth:`AzureBackend.sweep`
once old enough (the ``sweep-staging`` job; :mod:`~.sweep`).

Reads: GetObject without a range streams one ``download_blob`` and takes the properties
from the downloader; with a range or part number it reads the properties, resolves the
range, and downloads with ``If-Match`` on that version (retrying if it was replaced in
between). Chunks are at most 1 MiB. A read slower than an overwrite of a blob larger than
one chunk fails rather than mix versions (Azure keeps no old version to finish from).

Retries: one layer, the SDK's retry policy (connection errors, 408, 429 and 5xx; listings
being iterated and downloads being streamed included), with the short full-jitter waits of
:class:`translators.azure.retries.ShortRetry`; the translator itself retries no call.

The parts: this module (the Backend: lifecycle, buckets, objects), :mod:`~.store` (clients,
locations, the bucket check, the conditional commit), :mod:`~.multipart`, :mod:`~.listing`,
:mod:`~.blocks` (staging and downloads), :mod:`~.records` (upload and part records),
:mod:`~.names`, :mod:`~.errors` (the one ``map_errors()``), :mod:`~.retries` and
:mod:`~.sweep` (leftovers).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobServiceClient

from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import multipart
from translators.azure import listing as azure_listing
from translators.azure.blocks import BlockWriter, DownloadBody
from translators.azure.errors import map_errors
from translators.azure.multipart import AzureMultipart
from translators.azure.retries import ShortRetry
from translators.azure.store import AzureStore
from translators.azure.sweep import sweep as sweep_records
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
from translators.namespace import Namespace
from translators.proxies import proxies_for
from translators.unversioned import Unversioned

log = logging.getLogger("pagewright.translators.azure")

MIB: Final = 1024 * 1024
#: Bytes per staged block (Azure allows 4,000 MiB; this bounds memory per transfer).
BLOCK_SIZE: Final = 4 * MIB
#: Bytes per read request of a GetObject body (held in memory once per transfer; the body
#: yields them in pieces of ``blocks.BODY_PIECE``). Each is one ranged Get Blob: 1 MiB
#: requests made a 64 MiB read 64 round trips, 5x slower through Azurite than 8 MiB ones.
CHUNK_SIZE: Final = 8 * MIB
#: Attempts to open a version of a key that keeps being replaced.
_OPEN_ATTEMPTS: Final = 5
_CONTAINER_NAME: Final = r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"


class AzureBackend(DelegatesMultipart, Unversioned):
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
        self.store = AzureStore(
            namespace, service, concurrency=max(1, concurrency), block_size=block_size
        )
        self.multipart: AzureMultipart = AzureMultipart(self.store, min_part_size)
        self.min_part_size = min_part_size
        self.create = create
        self._credential = credential
        self._tokens = azure_listing.TokenCache()

    @classmethod
    def from_spec(cls, spec: BackendSpec, environ: Mapping[str, str]) -> AzureBackend:
        """Build from a backend URL and credentials in ``environ``, first match wins:
        ``AZURE_STORAGE_CONNECTION_STRING``; else ``AZURE_STORAGE_ACCOUNT_URL`` (or
        ``AZURE_STORAGE_ACCOUNT`` → ``https://<account>.blob.core.windows.net``) with
        ``AZURE_STORAGE_KEY``, ``AZURE_STORAGE_SAS_TOKEN`` or, lacking both,
        DefaultAzureCredential. Options: ``concurrency=N``, ``create=true``,
        ``min_part_size=BYTES``, ``block_size=BYTES``, ``chunk_size=BYTES`` (reads)."""
        options = dict(spec.options)
        try:
            concurrency = int(options.pop("concurrency", "4"))
            block_size = int(options.pop("block_size", str(BLOCK_SIZE)))
            chunk_size = int(options.pop("chunk_size", str(CHUNK_SIZE)))
            min_part_size = int(options.pop("min_part_size", str(multipart.MIN_PART_SIZE)))
        except ValueError as error:
            raise BackendConfigError(f"azure backend: {error}") from None
        if not MIB <= chunk_size <= 256 * MIB:
            raise BackendConfigError("azure backend: chunk_size must be 1 MiB to 256 MiB")
        create = options.pop("create", "false").lower() in ("1", "true", "yes")
        if options:
            raise BackendConfigError(f"azure backend: unknown options {sorted(options)}")
        client_options: dict[str, Any] = {
            "max_single_get_size": chunk_size,
            "max_chunk_get_size": chunk_size,
            "max_single_put_size": block_size,
            "max_block_size": block_size,
            # The one retry layer: the SDK's, with short waits (translators.azure.retries).
            "retry_policy": ShortRetry(),
            # The proxy is decided once (translators.proxies): aiohttp trusting the
            # environment reads ~/.netrc in a worker thread on every request.
            "use_env_settings": False,
        }
        credential: Any = None
        connection = environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if connection:
            service = BlobServiceClient.from_connection_string(connection, **client_options)
            if proxies := proxies_for(service.url, environ):  # decided once: see .proxies
                service = BlobServiceClient.from_connection_string(
                    connection, proxies=proxies, **client_options
                )
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
            service = BlobServiceClient(
                url, credential=auth, proxies=proxies_for(url, environ), **client_options
            )
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

    async def start(self) -> None:
        """Check that the configured container exists; create it if ``create`` is set."""
        container = self.store.container(self.store.namespace.container)
        try:
            await container.get_container_properties()
            return
        except ResourceNotFoundError:
            if not self.create:
                raise S3Error(
                    "ServiceUnavailable",
                    f"Azure container {self.store.namespace.container!r} does not exist; create it "
                    "or add create=true to the backend URL.",
                ) from None
        except Exception as error:
            with map_errors():
                raise error
        with map_errors(), contextlib.suppress(ResourceExistsError):
            await container.create_container()

    async def sweep(self, older_than: datetime, limit: int) -> int:
        """Part records of ended uploads and records of deleted buckets, last written
        before ``older_than``, at most ``limit`` of them (see :mod:`translators.azure.sweep`,
        also for uncommitted blocks, which Azure removes itself, and
        :class:`translators.base.Sweeper`)."""
        return await sweep_records(self.store, older_than, limit)

    async def close(self) -> None:
        await self.store.service.close()
        if self._credential is not None:
            await self._credential.close()

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` unless the configured container answers."""
        try:
            await self.store.container(self.store.namespace.container).get_container_properties()
        except Exception as error:
            log.warning("Azure readiness check failed: %s", error)
            raise S3Error(
                "ServiceUnavailable", "Azure Blob Storage is not reachable or not set up."
            ) from error

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        container = self.store.container(self.store.namespace.container)
        start = self.store.namespace.buckets_prefix()
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
        if self.store.namespace.mapping == "bucket":
            container = self.store.namespace.container_for(bucket)
            if not re.match(_CONTAINER_NAME, container):
                raise S3Error(
                    "InvalidBucketName",
                    f"Azure cannot name a container {container!r} (3-63 lower-case letters, "
                    "digits and single hyphens); use the prefix mapping for this bucket name.",
                    BucketName=bucket,
                )
            with map_errors(bucket=bucket), contextlib.suppress(ResourceExistsError):
                await self.store.container(container).create_container()
        marker = self.store.blob(self.store.namespace.bucket_marker(bucket))
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
        self.store.buckets.pop(bucket, None)
        return await self.store.require_bucket(bucket)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` while any object remains; pending uploads are aborted."""
        self.store.buckets.pop(bucket, None)
        await self.store.require_bucket(bucket)
        location = self.store.namespace.object(bucket, "")
        container = self.store.container(location.container)
        with map_errors(bucket=bucket):
            async for _ in container.list_blobs(name_starts_with=location.name, results_per_page=1):
                raise S3Error("BucketNotEmpty", BucketName=bucket)
            uploads = self.store.namespace.system("uploads", bucket).name + "/"
            system = self.store.container(self.store.namespace.container)
            records = [b.name async for b in system.list_blobs(name_starts_with=uploads)]
        await self.store.delete_all(system, sorted(records, key=len))
        self.store.buckets.pop(bucket, None)
        self.multipart.forget_bucket(bucket)
        with map_errors(bucket=bucket):
            try:
                await self.store.blob(self.store.namespace.bucket_marker(bucket)).delete_blob()
            except ResourceNotFoundError:
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            if self.store.namespace.mapping == "bucket":
                with contextlib.suppress(ResourceNotFoundError):
                    await container.delete_container()

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        blob = self.store.blob(self.store.object(bucket, key))
        with map_errors(bucket=bucket, key=key):
            props = await self.store.properties(blob)
        if props is None:
            await self.store.require_bucket(bucket)
            raise S3Error("NoSuchKey", Key=key)
        return azure_listing.object_info(key, props)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current version; see :meth:`translators.base.Backend.get_object`."""
        blob = self.store.blob(self.store.object(bucket, key))
        for _ in range(_OPEN_ATTEMPTS):
            try:
                with map_errors(bucket=bucket, key=key):
                    if options.range is None and options.part_number is None:
                        downloader = await blob.download_blob(decompress=False)
                        info = azure_listing.object_info(key, downloader.properties)
                        return GetResult(info, None, DownloadBody(downloader, key))
                    props = await blob.get_blob_properties()
                    info = azure_listing.object_info(key, props)
                    span = multipart.read_span(info, options)
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
                await self.store.require_bucket(bucket)
                raise S3Error("NoSuchKey", Key=key) from None
            except ResourceModifiedError:
                continue  # replaced between reading its properties and opening it
            except S3Error as error:
                if error.code == "NoSuchKey":
                    await self.store.require_bucket(bucket)
                if error.code != "PreconditionFailed":
                    raise
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

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
        await self.store.require_bucket(bucket)
        blob = self.store.blob(self.store.object(bucket, key))
        writer = BlockWriter(
            blob,
            upload_id=self.store.ids.next(),
            part_number=0,
            block_size=self.store.block_size,
            concurrency=self.store.concurrency,
            keep_small=True,
            key=key,
        )
        await writer.receive(body)
        digest = body.digest()
        info = written_object(key, digest, metadata)
        if writer.small is not None:
            return await self.store.commit(
                blob, info, conditions, block_ids=None, small=writer.small
            )
        return await self.store.commit(blob, info, conditions, block_ids=writer.block_ids)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Delete ``key`` (and any snapshots); absent keys succeed, absent buckets do not."""
        blob = self.store.blob(self.store.object(bucket, key))
        try:
            with map_errors(bucket=bucket, key=key):
                await blob.delete_blob(delete_snapshots="include")
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            await self.store.require_bucket(bucket)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery` and
        :mod:`translators.azure.listing`."""
        location = self.store.namespace.object(bucket, "")
        container = self.store.container(location.container)
        with map_errors(bucket=bucket):
            page = await azure_listing.list_objects(container, location.name, query, self._tokens)
        if not page.objects and not page.common_prefixes:
            await self.store.require_bucket(bucket)
        return page
