"""The GCS translator's core: one client, one thread pool, and the calls every operation uses.

Every SDK call runs in the :class:`~translators.blocking.BlockingPool` inside one
:func:`~translators.gcs.client.map_errors`; reads, listings and deletes are retried on
transient failures, writes are not (their body is consumed, or their precondition would
misreport a retried success). The SDK's own retry is switched off everywhere (``retry=None``)
so a failure surfaces in bounded time.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from google.api_core import exceptions as api

from core.errors import S3Error
from translators import objectmeta
from translators.base import ObjectInfo, WriteConditions
from translators.blocking import BlockingPool, retrying
from translators.gcs.client import GCSSettings, make_client
from translators.gcs.errors import is_transient, map_errors
from translators.gcs.io import Staged
from translators.namespace import Location, Namespace
from translators.seen import SeenBuckets

T = TypeVar("T")

#: Stored headers that GCS also keeps as native object properties.
NATIVE_HEADERS: dict[str, str] = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-disposition": "content_disposition",
    "content-language": "content_language",
    "cache-control": "cache_control",
}
#: Sources per compose request (a GCS limit).
COMPOSE_LIMIT = 32


class Store:
    """The client, pool and namespace of one GCS translator, with its common calls."""

    def __init__(self, settings: GCSSettings, namespace: Namespace) -> None:
        self.settings = settings
        self.namespace = namespace
        self.endpoint = settings.endpoint
        self.pool = BlockingPool(settings.pool)
        self._client: Any = None
        self._session: Any = None
        self._buckets: dict[str, Any] = {}
        self.seen = SeenBuckets()  # gateway buckets found recently (translators.seen)

    async def open(self) -> None:
        self._client, self._session = await self.pool.run(make_client, self.settings)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._client = self._session = None
        self._buckets.clear()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise S3Error("ServiceUnavailable", "The GCS backend is not started.")
        return self._client

    @property
    def session(self) -> Any:
        return self._session

    def bucket(self, container: str) -> Any:
        """A (network-free) handle on a GCS bucket."""
        handle = self._buckets.get(container)
        if handle is None:
            handle = self._buckets[container] = self.client.bucket(container)
        return handle

    def blob(self, location: Location, **kwargs: Any) -> Any:
        return self.bucket(location.container).blob(location.name, **kwargs)

    async def run(
        self,
        call: Callable[[], T],
        *,
        idempotent: bool = False,
        missing: Callable[[], S3Error] | None = None,
        condition: str = "If-Match",
    ) -> T:
        """Run a blocking SDK call in the pool, retried if ``idempotent``, errors mapped."""
        with map_errors(self.endpoint, missing=missing, condition=condition):
            if idempotent:
                return await retrying(lambda: self.pool.run(call), transient=is_transient)
            return await self.pool.run(call)

    # Reads

    async def get_blob(self, location: Location) -> Any | None:
        """The current object at ``location`` with its metadata, or None."""
        handle = self.bucket(location.container)
        return await self.run(
            lambda: handle.get_blob(location.name, retry=None),
            idempotent=True,
            missing=lambda: S3Error("NoSuchBucket", BucketName=location.container),
        )

    async def require_bucket(self, bucket: str) -> Any:
        """The marker of gateway bucket ``bucket``; ``NoSuchBucket`` if there is none."""
        marker = await self.get_blob(self.namespace.bucket_marker(bucket))
        if marker is None:
            raise S3Error("NoSuchBucket", BucketName=bucket)
        return marker

    async def require_bucket_seen(self, bucket: str) -> None:
        """:meth:`require_bucket` for the paths that run on every request (writes and
        listings): a bucket found is trusted for a moment (:mod:`translators.seen`)."""
        if not self.seen.trusted(bucket):
            await self.require_bucket(bucket)
            self.seen.found(bucket)

    async def list_page(
        self,
        container: str,
        *,
        prefix: str,
        delimiter: str = "",
        start_offset: str = "",
        page_size: int = 1000,
        token: str | None = None,
    ) -> tuple[list[Any], list[str], str | None]:
        """One page of a GCS listing: objects, prefixes (native roll-up), next page token."""
        handle = self.bucket(container)

        def call() -> tuple[list[Any], list[str], str | None]:
            iterator = self.client.list_blobs(
                handle,
                prefix=prefix or None,
                delimiter=delimiter or None,
                start_offset=start_offset or None,
                page_size=page_size,
                page_token=token,
                retry=None,
            )
            page = next(iterator.pages, None)
            if page is None:
                return [], [], None
            return list(page), list(page.prefixes), iterator.next_page_token

        return await self.run(
            call,
            idempotent=True,
            missing=lambda: S3Error("NoSuchBucket", BucketName=container),
        )

    async def list_all(self, container: str, prefix: str, delimiter: str = "") -> list[Any]:
        """Every object under ``prefix`` (``delimiter`` keeps deeper names out)."""
        found: list[Any] = []
        token: str | None = None
        while True:
            blobs, _, token = await self.list_page(
                container, prefix=prefix, delimiter=delimiter, token=token
            )
            found += blobs
            if token is None:
                return found

    # Writes

    async def delete_names(self, container: str, names: Sequence[str]) -> None:
        """Delete objects (absent ones are fine), many at once."""
        handle = self.bucket(container)

        async def delete(name: str) -> None:
            def call() -> None:
                with contextlib.suppress(api.NotFound):
                    handle.delete_blob(name, retry=None)

            await self.run(call, idempotent=True)

        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(delete, name)

    async def delete_prefix(self, container: str, prefix: str) -> None:
        blobs = await self.list_all(container, prefix)
        await self.delete_names(container, [blob.name for blob in blobs])

    async def precondition(
        self, location: Location, conditions: WriteConditions, key: str
    ) -> int | None:
        """The ``if_generation_match`` that makes the commit check ``conditions`` atomically.

        The conditions are also checked here against the current object, so a store that
        ignores preconditions on some calls (emulators) still refuses the plain cases.
        """
        if conditions.if_match is None and conditions.if_none_match is None:
            return None
        current = await self.get_blob(location)
        try:
            conditions.check(None if current is None else object_info(current, key))
        except S3Error as error:
            if error.code == "NoSuchKey":
                raise S3Error("NoSuchKey", Key=key) from None
            raise
        return 0 if current is None else int(current.generation)

    async def commit(
        self,
        location: Location,
        info: ObjectInfo,
        *,
        staged: Staged | None = None,
        sources: Sequence[Any] = (),
        generation: int | None = None,
        condition: str = "If-Match",
        metadata: dict[str, str] | None = None,
    ) -> Any:
        """Make ``location`` the object ``info`` describes, in one request: an upload of a
        staged in-memory body, or a compose of ``sources`` (a staged temp object or parts),
        carrying the metadata and ``if_generation_match=generation``."""
        blob = self.blob(location)
        blob.metadata = objectmeta.encode(info) if metadata is None else metadata
        for header, attribute in NATIVE_HEADERS.items():
            if header in info.headers:
                setattr(blob, attribute, info.headers[header])
        if staged is not None and staged.data is not None:
            data = staged.data
            blob.md5_hash = base64.b64encode(bytes.fromhex(staged.digest.md5_hex)).decode()

            def upload() -> Any:
                blob.upload_from_string(
                    data,
                    content_type=info.headers.get("content-type"),
                    if_generation_match=generation,
                    checksum=None,
                    retry=None,
                )
                return blob

            return await self.run(upload, idempotent=generation is None, condition=condition)
        parts = list(sources) if staged is None or staged.temp is None else [staged.temp]
        if any(part.bucket.name != location.container for part in parts):
            return await self._commit_across(location, blob, parts, generation, condition)
        source_generations = [part.generation for part in parts]

        def compose() -> Any:
            blob.compose(
                parts,
                if_generation_match=generation,
                if_source_generation_match=source_generations,
                retry=None,
            )
            return blob

        return await self.run(
            compose,
            idempotent=generation is None,
            condition=condition,
            missing=lambda: S3Error("InvalidPart", "A part vanished while it was assembled."),
        )

    async def _commit_across(
        self,
        location: Location,
        blob: Any,
        parts: list[Any],
        generation: int | None,
        condition: str,
    ) -> Any:
        """:meth:`commit` of parts staged in another bucket (``bucket`` mapping: staging is in
        the configured bucket): GCS composes only within a bucket, so the parts are composed
        into one scratch object beside them (a single part is used as it is), which one
        rewrite then copies onto ``location`` with the metadata and the precondition; the
        scratch object is deleted after."""
        source = parts[0]
        scratch: Any = None
        if len(parts) > 1:
            scratch = source.bucket.blob(self.namespace.system("tmp", uuid.uuid4().hex).name)
            generations = [part.generation for part in parts]

            def compose() -> Any:
                scratch.compose(parts, if_source_generation_match=generations, retry=None)
                return scratch

            source = await self.run(
                compose,
                missing=lambda: S3Error("InvalidPart", "A part vanished while it was assembled."),
            )
        source_generation = source.generation

        def rewrite() -> Any:
            token, _, _ = blob.rewrite(
                source,
                if_generation_match=generation,
                if_source_generation_match=source_generation,
                retry=None,
            )
            while token is not None:  # large or cross-location copies take several calls
                token, _, _ = blob.rewrite(
                    source,
                    token=token,
                    if_generation_match=generation,
                    if_source_generation_match=source_generation,
                    retry=None,
                )
            return blob

        try:
            return await self.run(
                rewrite,
                idempotent=generation is None,
                condition=condition,
                missing=lambda: S3Error("InvalidPart", "A part vanished while it was assembled."),
            )
        finally:
            if scratch is not None:
                with contextlib.suppress(S3Error):
                    await self.run(lambda: scratch.delete(retry=None), idempotent=True)


def last_modified(blob: Any) -> datetime:
    stamp = blob.updated or blob.time_created
    return stamp if isinstance(stamp, datetime) else datetime.now(UTC)


def object_info(blob: Any, key: str) -> ObjectInfo:
    """The S3 view of a GCS object: our metadata entry, else its native properties."""
    native = {
        header: getattr(blob, attribute)
        for header, attribute in NATIVE_HEADERS.items()
        if getattr(blob, attribute, None)
    }
    fallback = ""
    if blob.md5_hash:
        fallback = base64.b64decode(blob.md5_hash).hex()
    elif blob.etag:
        fallback = str(blob.etag)
    return objectmeta.decode(
        blob.metadata,
        key=key,
        size=int(blob.size or 0),
        last_modified=last_modified(blob),
        fallback_etag=fallback,
        fallback_headers=native,
    )
