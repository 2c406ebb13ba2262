"""The Google Cloud Storage translator: a GCS bucket as an S3 backend.

Where things live (:mod:`translators.namespace`): with ``prefix`` mapping (the default) every
gateway bucket is ``<prefix>/<bucket>/`` inside the configured GCS bucket; with ``bucket``
mapping each gateway bucket is its own GCS bucket (``container_prefix + name``). Either way
a gateway bucket exists when its marker ``.pagewright/buckets/<name>`` does (created with
``if_generation_match=0``; its body and creation time record when).

Objects keep S3's semantics (ETag = the gateway's MD5 or multipart ETag, checksums, stored
headers, user metadata, part layout) in ONE :mod:`translators.objectmeta` metadata entry;
Content-Type, -Encoding, -Disposition, -Language and Cache-Control are also set natively.

Atomicity: a write becomes visible in a single request made after its body ended and
verified (see :mod:`translators.gcs.io`), so an interrupted or failed write leaves the previous
version in place. WriteConditions become ``if_generation_match`` on that request: 0 for
If-None-Match, the generation whose ETag matched for If-Match, so check and commit are one
atomic step on GCS. (fake-gcs-server ignores preconditions on requests carrying metadata; the
conditions are therefore also checked just before the commit.)

Reads pin the generation whose metadata they return and stream it in one request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final
from urllib.parse import quote

from google.api_core import exceptions as api
from google.cloud.exceptions import from_http_response

from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import multipart
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
from translators.config import BackendSpec
from translators.gcs.client import GCSSettings
from translators.gcs.io import EmptyBody, StreamBody, discard, receive
from translators.gcs.listing import list_objects
from translators.gcs.multipart import Multipart
from translators.gcs.store import Store, last_modified, object_info
from translators.namespace import Namespace
from translators.unversioned import Unversioned

log = logging.getLogger(__name__)

#: A GET re-reads the metadata when its generation was replaced before the download began.
#: Two round trips separate the metadata read from the download (one on the other backends),
#: so a key under heavy concurrent overwrite needs more tries before the answer is SlowDown.
_OPEN_ATTEMPTS: Final = 12
#: Temporary objects older than this are leftovers of a crash; start() removes them.
_STALE_TEMP: Final = timedelta(hours=6)


class GCSBackend(DelegatesMultipart, Unversioned):
    """A :class:`translators.base.Backend` over Google Cloud Storage.

    ``min_part_size`` is the smallest part but the last that CompleteMultipartUpload
    accepts (S3: 5 MiB).
    """

    name = "gcs"

    def __init__(
        self,
        settings: GCSSettings,
        namespace: Namespace,
        *,
        min_part_size: int = multipart.MIN_PART_SIZE,
    ) -> None:
        self.settings = settings
        self.namespace = namespace
        self.store = Store(settings, namespace)
        self.multipart: Multipart = Multipart(self.store, min_part_size)

    @classmethod
    def from_spec(cls, spec: BackendSpec, environ: Mapping[str, str]) -> GCSBackend:
        """A translator for ``gcs://bucket[/prefix]``; see :class:`GCSSettings` for options."""
        return cls(GCSSettings.from_spec(spec, environ), spec.namespace())

    # Lifecycle

    async def start(self) -> None:
        """Connect; the configured bucket must exist (created with option ``create=true``)."""
        await self.store.open()
        container = self.namespace.container
        exists = await self.store.run(
            lambda: self.store.bucket(container).exists(retry=None), idempotent=True
        )
        if not exists:
            if not self.settings.create:
                raise S3Error(
                    "ServiceUnavailable",
                    f"the GCS bucket {container!r} does not exist at {self.settings.endpoint}; "
                    "create it, or add ?create=true to the backend URL",
                )
            await self._create_container(container)
        await self._sweep_temporaries()

    async def _create_container(self, container: str) -> None:
        def create() -> None:
            try:
                self.store.client.create_bucket(container, retry=None)
            except api.Conflict:
                return  # created meanwhile, or already ours

        await self.store.run(create)

    async def _sweep_temporaries(self) -> None:
        try:
            await self._remove_temporaries(datetime.now(UTC) - _STALE_TEMP, None)
        except S3Error as error:
            log.warning("could not remove stale temporary objects: %s", error.message)

    async def _remove_temporaries(self, older_than: datetime, limit: int | None) -> int:
        prefix = self.namespace.system("tmp").name + "/"
        blobs = await self.store.list_all(self.namespace.container, prefix)
        stale = [b.name for b in blobs if last_modified(b) < older_than]
        if limit is not None:
            stale = stale[:limit]
        await self.store.delete_names(self.namespace.container, stale)
        return len(stale)

    async def sweep(self, older_than: datetime, limit: int) -> int:
        """Temporary objects of interrupted writes, then parts of uploads whose state is
        gone, last written before ``older_than``, at most ``limit`` of them (see
        :class:`translators.base.Sweeper`)."""
        removed = await self._remove_temporaries(older_than, limit)
        if removed < limit:
            removed += await self.multipart.sweep_orphans(older_than, limit - removed)
        return removed

    async def close(self) -> None:
        self.store.close()

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` unless the configured bucket answers."""
        handle = self.store.bucket(self.namespace.container)
        try:
            await self.store.run(lambda: handle.reload(retry=None, timeout=5))
        except S3Error as error:
            raise S3Error("ServiceUnavailable", error.message) from error

    # Buckets

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        prefix = self.namespace.buckets_prefix()
        blobs = await self.store.list_all(self.namespace.container, prefix, "/")
        found = [BucketInfo(b.name[len(prefix) :], last_modified(b)) for b in blobs]
        return sorted(found, key=lambda bucket: bucket.name)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """Write the marker with ``if_generation_match=0``; ``BucketAlreadyOwnedByYou``."""
        marker = self.namespace.bucket_marker(bucket)
        if await self.store.get_blob(marker) is not None:
            raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket)
        if self.namespace.mapping == "bucket":
            await self._create_container(self.namespace.container_for(bucket))
        created = json.dumps({"created": datetime.now(UTC).isoformat()}).encode()
        blob = self.store.blob(marker)
        try:
            await self.store.run(
                lambda: blob.upload_from_string(
                    created, content_type="application/json", if_generation_match=0, retry=None
                )
            )
        except S3Error as error:
            if error.code == "PreconditionFailed":
                raise S3Error("BucketAlreadyOwnedByYou", BucketName=bucket) from None
            raise

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        marker = await self.store.require_bucket(bucket)
        return BucketInfo(bucket, marker.time_created or last_modified(marker))

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` if objects remain; pending uploads are aborted first."""
        self.store.seen.forget(bucket)
        await self.store.require_bucket(bucket)
        container = self.namespace.container_for(bucket)
        blobs, _, _ = await self.store.list_page(
            container, prefix=self.namespace.bucket_prefix(bucket), page_size=1
        )
        if blobs:
            raise S3Error("BucketNotEmpty", BucketName=bucket)
        await self.multipart.abort_all(bucket)
        await self.store.delete_names(
            self.namespace.container, [self.namespace.bucket_marker(bucket).name]
        )
        self.store.seen.forget(bucket)
        if self.namespace.mapping == "bucket":
            handle = self.store.bucket(container)

            def delete() -> None:
                try:
                    handle.delete(retry=None)
                except api.Conflict:
                    log.warning("GCS bucket %s holds foreign objects; kept", container)

            await self.store.run(delete, missing=lambda: S3Error("NoSuchBucket", BucketName=bucket))

    # Objects

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return object_info(await self._current(bucket, key), key)

    async def _current(self, bucket: str, key: str) -> Any:
        blob = await self.store.get_blob(self.namespace.object(bucket, key))
        if blob is None:
            await self.store.require_bucket(bucket)
            raise S3Error("NoSuchKey", Key=key)
        return blob

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current generation; its bytes stream even if the key changes after."""
        for _ in range(_OPEN_ATTEMPTS):
            blob = await self._current(bucket, key)
            info = object_info(blob, key)
            span = multipart.read_span(info, options)
            start, length = (0, info.size) if span is None else (span.start, span.length)
            if length <= 0:
                return GetResult(info, span, EmptyBody())
            response = await self.store.run(
                partial(self._download, blob, start, length), idempotent=True
            )
            if response is not None:
                return GetResult(
                    info, span, StreamBody(response, self.store.pool, self.store.endpoint)
                )
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    def _download(self, blob: Any, start: int, length: int) -> Any:
        """Start streaming bytes ``start``.. of ``blob``'s generation; None if it is gone."""
        url = (
            f"{self.settings.endpoint}/download/storage/v1/b/{quote(blob.bucket.name, safe='')}"
            f"/o/{quote(blob.name, safe='')}?alt=media&generation={blob.generation}"
        )
        headers = {"Accept-Encoding": "gzip"}  # the stored bytes, never transcoded
        if start > 0 or length < int(blob.size):
            headers["Range"] = f"bytes={start}-{start + length - 1}"
        response = self.store.session.get(url, headers=headers, stream=True, timeout=(10, 60))
        if response.status_code in (200, 206):
            return response
        response.close()
        if response.status_code == 404:
            return None
        raise from_http_response(response)  # type: ignore[no-untyped-call]

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Receive ``body`` whole, then create the object in one conditional request."""
        await self.store.require_bucket_seen(bucket)
        store = self.store
        staged = await receive(
            body,
            pool=store.pool,
            bucket=store.bucket(self.namespace.container),
            temp_name=self.namespace.system("tmp").name,
            endpoint=store.endpoint,
        )
        try:
            info = written_object(key, staged.digest, metadata)
            location = self.namespace.object(bucket, key)
            generation = await store.precondition(location, conditions, key)
            condition = "If-None-Match" if conditions.if_none_match is not None else "If-Match"
            await store.commit(
                location, info, staged=staged, generation=generation, condition=condition
            )
        finally:
            if staged.temp is not None:
                await discard(store.pool, staged.temp)
        return info

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Remove ``key``; absent is fine, an absent bucket is ``NoSuchBucket``."""
        location = self.namespace.object(bucket, key)
        handle = self.store.bucket(location.container)

        def delete() -> bool:
            try:
                handle.delete_blob(location.name, retry=None)
            except api.NotFound:
                return False
            return True

        if not await self.store.run(delete, idempotent=True):
            await self.store.require_bucket(bucket)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """A page of keys; see :class:`translators.base.ListQuery`."""
        await self.store.require_bucket_seen(bucket)
        return await list_objects(self.store, bucket, query)
