"""Multipart uploads on GCS: parts as temporary objects, completion by compose.

Layout in the bookkeeping area (:meth:`translators.namespace.Namespace.system`):

* ``uploads/<id>``: the upload's state (bucket, key, metadata, checksum algorithm and type,
  initiation) in one metadata entry. It sits beside, not inside, the upload's directory, so
  one delimited listing of ``uploads/`` returns every pending upload with its state and none
  of its parts.
* ``uploads/<id>/parts/<nnnnn>``: part ``n`` with its record (size is native; MD5 ETag and
  checksums in an :mod:`translators.objectmeta` entry). Re-uploading a part replaces it.
* ``uploads/<id>/compose/<level>-<index>``: intermediate composites of a completion.

Completion plans with :func:`translators.multipart.plan_completion`, then composes the chosen
parts (pinned to the generations it planned with) in a tree of at most 32 sources per call;
the last compose creates the object with its metadata and the write's precondition, so the
object appears whole or not at all. The state, parts and intermediates are deleted after.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from datetime import datetime
from typing import Any, cast

import anyio

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import listing, multipart, objectmeta
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
from translators.gcs.io import discard, receive
from translators.gcs.store import COMPOSE_LIMIT, Store, last_modified
from translators.namespace import Location

_STATE_KEY = "pagewright-upload"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
#: How long, and for how many uploads, UploadPart trusts what it last saw of an upload.
_KNOWN_SECONDS = 10.0
_KNOWN_UPLOADS = 10_000


class Multipart:
    """The multipart half of the GCS translator (see the module docstring)."""

    def __init__(self, store: Store, min_part_size: int) -> None:
        self.store = store
        self.min_part_size = min_part_size
        self._ids = multipart.UploadIds()
        self._known: dict[str, tuple[float, str, str, UploadInfo]] = {}

    def _state(self, upload_id: str) -> Location:
        return self.store.namespace.system("uploads", upload_id)

    def _area(self, upload_id: str, *parts: str) -> Location:
        return self.store.namespace.system("uploads", upload_id, *parts)

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Record a new upload; the checksum type defaults as S3's does for the algorithm."""
        checksum_type = multipart.resolve_checksum_type(checksum_algorithm, checksum_type)
        await self.store.require_bucket(bucket)
        upload = multipart.new_upload(
            key, self._ids.next(), metadata, checksum_algorithm, checksum_type
        )
        blob = self.store.blob(self._state(upload.upload_id))
        blob.metadata = {_STATE_KEY: _encode_state(bucket, upload)}
        await self.store.run(
            lambda: blob.upload_from_string(b"", if_generation_match=0, retry=None),
            missing=lambda: S3Error("NoSuchBucket", BucketName=bucket),
        )
        self._remember(bucket, upload)
        return upload

    def _remember(self, bucket: str, upload: UploadInfo) -> None:
        if len(self._known) >= _KNOWN_UPLOADS:
            self._known.clear()
        self._known[upload.upload_id] = (
            time.monotonic() + _KNOWN_SECONDS,
            bucket,
            upload.key,
            upload,
        )

    async def find(
        self, bucket: str, key: str, upload_id: str, *, cached: bool = False
    ) -> UploadInfo:
        """The upload ``upload_id`` of ``bucket``/``key``; NoSuchBucket / NoSuchUpload.

        ``cached`` accepts what this process saw of the upload in the last few seconds
        (UploadPart only): an upload completed or aborted by another gateway meanwhile may
        then take a part that nothing will reference, as S3 warns parts racing an abort may.
        """
        known = self._known.get(upload_id) if cached else None
        if known is not None and known[0] > time.monotonic() and known[1:3] == (bucket, key):
            return known[3]
        if _UPLOAD_ID.fullmatch(upload_id):
            blob = await self.store.get_blob(self._state(upload_id))
            if blob is not None:
                owner, upload = _decode_state(blob, upload_id)
                if owner == bucket and upload.key == key:
                    self._remember(bucket, upload)
                    return upload
        await self.store.require_bucket(bucket)
        raise S3Error("NoSuchUpload", UploadId=upload_id)

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Store a part (replacing an earlier one of that number) with its record."""
        upload = await self.find(bucket, key, upload_id, cached=True)
        store = self.store
        location = self._area(upload_id, "parts", f"{part_number:05d}")
        staged = await receive(
            body,
            pool=store.pool,
            bucket=store.bucket(location.container),
            temp_name=self._area(upload_id, "incoming").name,
            endpoint=store.endpoint,
            algorithm=upload.checksum_algorithm,
        )
        try:
            part = multipart.received_part(part_number, staged.digest)
            assert part.last_modified is not None
            record = ObjectInfo(
                "", part.size, part.etag, part.last_modified, checksums=part.checksums
            )
            await store.commit(location, record, staged=staged)
        finally:
            if staged.temp is not None:
                await discard(store.pool, staged.temp)
        return part

    async def _stored(self, upload_id: str) -> dict[int, tuple[PartInfo, Any]]:
        prefix = self._area(upload_id, "parts").name + "/"
        blobs = await self.store.list_all(self.store.namespace.container, prefix)
        return {part.part_number: (part, blob) for blob in blobs for part in [_part(blob)]}

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        """Parts numbered above ``marker``, at most ``max_parts`` of them."""
        upload = await self.find(bucket, key, upload_id)
        if max_parts <= 0:
            return upload, PartsPage([], None)
        prefix = self._area(upload_id, "parts").name + "/"
        parts: list[PartInfo] = []
        token: str | None = None
        while len(parts) <= max_parts:
            blobs, _, token = await self.store.list_page(
                self.store.namespace.container,
                prefix=prefix,
                start_offset=f"{prefix}{marker + 1:05d}",
                page_size=min(1000, max_parts + 1 - len(parts)),
                token=token,
            )
            parts += [_part(blob) for blob in blobs]
            if token is None:
                break
        return upload, multipart.parts_page(parts, max_parts)

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        await self.store.require_bucket(bucket)
        return listing.page_uploads(await self._uploads_of(bucket), query)

    async def _uploads_of(self, bucket: str) -> list[UploadInfo]:
        prefix = self.store.namespace.system("uploads").name + "/"
        blobs = await self.store.list_all(self.store.namespace.container, prefix, "/")
        found = []
        for blob in blobs:
            owner, upload = _decode_state(blob, blob.name[len(prefix) :])
            if owner == bucket:
                found.append(upload)
        return found

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Validate, compose the parts into ``key`` atomically, then drop the upload."""
        store = self.store
        upload = await self.find(bucket, key, upload_id)
        stored = await self._stored(upload_id)
        plan = multipart.plan_completion(
            upload,
            {number: part for number, (part, _) in stored.items()},
            requested,
            min_part_size=self.min_part_size,
        )
        info = multipart.completed_object(key, upload, plan)
        location = store.namespace.object(bucket, key)
        generation = await store.precondition(location, conditions, key)
        sources = await self._compose_tree(
            upload_id, [stored[p.part_number][1] for p in plan.parts]
        )
        condition = "If-None-Match" if conditions.if_none_match is not None else "If-Match"
        await store.commit(
            location, info, sources=sources, generation=generation, condition=condition
        )
        await self._drop(upload_id)
        return info

    async def _compose_tree(self, upload_id: str, sources: list[Any]) -> list[Any]:
        """Compose groups of at most 32 into intermediates until 32 or fewer remain."""
        level = 0
        while len(sources) > COMPOSE_LIMIT:
            groups = [
                sources[start : start + COMPOSE_LIMIT]
                for start in range(0, len(sources), COMPOSE_LIMIT)
            ]
            composed: list[Any] = [None] * len(groups)

            async def compose(
                index: int, group: list[Any], level: int = level, composed: list[Any] = composed
            ) -> None:
                target = self._area(upload_id, "compose", f"{level}-{index:05d}")
                blob = self.store.blob(target)
                generations = [source.generation for source in group]

                def call() -> None:
                    blob.compose(group, if_source_generation_match=generations, retry=None)

                await self.store.run(
                    call,
                    idempotent=True,
                    missing=lambda: S3Error("InvalidPart", "A part vanished during completion."),
                )
                composed[index] = blob

            async with anyio.create_task_group() as tasks:
                for index, group in enumerate(groups):
                    tasks.start_soon(compose, index, group)
            sources, level = composed, level + 1
        return sources

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.find(bucket, key, upload_id)
        await self._drop(upload_id)

    async def abort_all(self, bucket: str) -> None:
        """Abort every pending upload of ``bucket`` (its deletion)."""
        for upload in await self._uploads_of(bucket):
            await self._drop(upload.upload_id)

    async def sweep_orphans(self, older_than: datetime, limit: int) -> int:
        """Delete parts and intermediates whose upload's state is gone (a crash between
        :meth:`_drop`'s two steps) and that were last written before ``older_than``, at most
        ``limit``; how many."""
        prefix = self.store.namespace.system("uploads").name + "/"
        blobs = await self.store.list_all(self.store.namespace.container, prefix)
        states = {b.name[len(prefix) :] for b in blobs if "/" not in b.name[len(prefix) :]}
        orphans = [
            b.name
            for b in blobs
            if "/" in b.name[len(prefix) :]
            and b.name[len(prefix) :].partition("/")[0] not in states
            and last_modified(b) < older_than
        ]
        orphans = orphans[:limit]
        await self.store.delete_names(self.store.namespace.container, orphans)
        return len(orphans)

    async def _drop(self, upload_id: str) -> None:
        """Delete the state first (the upload is gone), then its parts and intermediates."""
        self._known.pop(upload_id, None)
        container = self.store.namespace.container
        await self.store.delete_names(container, [self._state(upload_id).name])
        await self.store.delete_prefix(container, self._area(upload_id).name + "/")


def _encode_state(bucket: str, upload: UploadInfo) -> str:
    document = {
        "b": bucket,
        "k": upload.key,
        "h": upload.metadata.headers,
        "u": upload.metadata.user_metadata,
        "a": upload.checksum_algorithm,
        "t": upload.checksum_type,
        "i": upload.initiated.isoformat(),
    }
    raw = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_state(blob: Any, upload_id: str) -> tuple[str, UploadInfo]:
    """(gateway bucket, upload) of a state object."""
    value = (blob.metadata or {}).get(_STATE_KEY, "")
    document = json.loads(zlib.decompress(base64.urlsafe_b64decode(value.encode("ascii"))))
    upload = UploadInfo(
        key=document["k"],
        upload_id=upload_id,
        initiated=datetime.fromisoformat(document["i"]),
        metadata=WriteMetadata(dict(document["h"]), dict(document["u"])),
        checksum_algorithm=cast(ChecksumAlgorithm | None, document["a"]),
        checksum_type=cast(ChecksumType | None, document["t"]),
    )
    return str(document["b"]), upload


def _part(blob: Any) -> PartInfo:
    number = int(blob.name.rsplit("/", 1)[1])
    record = objectmeta.decode(
        blob.metadata, key="", size=int(blob.size or 0), last_modified=last_modified(blob)
    )
    return PartInfo(number, record.size, record.etag, record.last_modified, record.checksums)
