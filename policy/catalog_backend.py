"""Keep the catalog in step with the backend: a Backend wrapper that records each write.

Deny by default (:mod:`policy.forwarding`): a new Backend method keeps this class from being
defined until it is either handled here or named as passed through. Writes go to the
backend first; only after the backend succeeded is the catalog told:

* ``put_object`` / ``complete_multipart_upload`` upsert the object's :class:`ObjectRecord`,
* ``delete_object`` deletes its row, ``delete_bucket`` every row of the site;
* on a versioned bucket (a write or delete that names a version id), the key's version
  rows follow the backend's listing of the key, read once after the change; the row a
  write or delete replaces moves to the key's versions (policy.catalog_versions).

Tags are catalog state and belong to the object: a ``put_object`` stores the tags of its
:class:`WriteMetadata` with the new row, in the same statement that replaces the previous
object's (a new object never inherits tags). A multipart upload's tags are kept in the
catalog from ``create_multipart_upload`` (a failure to keep them aborts the upload and fails
the request) and given to the object in the transaction that records the completion;
``abort_multipart_upload`` forgets them.

A catalog failure after a successful backend write is logged at ERROR and swallowed: the
backend is the truth and ``pagewright-gateway reindex`` repairs the catalog. With a
:class:`policy.catalog_gate.CatalogGate`, writes are refused (503) before they start while
the catalog is down, so that window stays one write wide (per writer in flight when the
catalog went), and the keys of such writes are kept: before the first write admitted once
the catalog answers again, each is read back from the backend and its row written (or
deleted, the object being gone), with the tags its write set, so a short outage needs no
reindex (a restart in between does, as do sites deleted meanwhile). The catalog update is
shielded from cancellation, so a client hanging up right after the commit does not leave
the row behind.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import anyio

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from core.tracing import failed, span
from policy.catalog_gate import CatalogGate
from policy.forwarding import READS, ForwardingBackend
from policy.model import ACTION, CREATOR, STATUS, Catalog, ObjectRecord, parse_artifact_key
from translators.base import (
    Backend,
    CompletedPart,
    ObjectInfo,
    UploadInfo,
    WriteConditions,
    WriteMetadata,
)
from translators.versioning import DeleteOutcome, VersioningStatus, key_history

logger = logging.getLogger(__name__)

#: At most this many missed writes are kept for catching up; beyond, reindex repairs.
MAX_UNRECORDED = 10_000
_GONE = frozenset({"NoSuchKey", "NoSuchBucket"})


def object_record(
    bucket: str, info: ObjectInfo, principal: str, tags: dict[str, str] | None = None
) -> ObjectRecord:
    """The catalog row of ``info`` stored in ``bucket``, with ``tags`` (default: none).

    ``sha256`` is the object's full-object SHA256 checksum in hex, when it has one (a
    composite multipart checksum is a hash of part hashes, not the object's, so it is not
    used). ``creator`` is :func:`stored_creator` (what the gateway stored with an artifact),
    else ``principal``: a client's ``x-amz-meta-creator`` on an ordinary object is plain
    metadata, never the creator. ``status`` and ``action`` come from user metadata of those
    names.
    """
    artifact = parse_artifact_key(info.key)
    return ObjectRecord(
        site=bucket,
        key=info.key,
        size=info.size,
        etag=info.etag,
        created_at=info.last_modified,
        creator=stored_creator(info.key, info.user_metadata) or principal,
        content_type=info.content_type,
        build_id=None if artifact is None else artifact.build_id,
        compression=None if artifact is None else artifact.compression,
        sha256=_sha256_hex(info),
        status=info.user_metadata.get(STATUS),
        action=info.user_metadata.get(ACTION),
        user_metadata=dict(info.user_metadata),
        tags=dict(tags or {}),
        version_id=info.version_id,
    )


def stored_creator(key: str, user_metadata: dict[str, str]) -> str | None:
    """The creator kept with an artifact (``x-amz-meta-creator``, which :func:`with_creator`
    always sets to the uploading principal), or None (not an artifact, or none stored)."""
    if parse_artifact_key(key) is None:
        return None
    return user_metadata.get(CREATOR) or None


def with_creator(key: str, metadata: WriteMetadata, principal: str) -> WriteMetadata:
    """An artifact's creator is the authenticated uploading principal, always: it is kept
    with the object (``x-amz-meta-creator``, so that a reindex recovers it) and replaces any
    ``x-amz-meta-creator`` the client sent. Other keys' metadata is left as the client sent
    it."""
    if parse_artifact_key(key) is None:
        return metadata
    return replace(metadata, user_metadata={**metadata.user_metadata, CREATOR: principal})


def _sha256_hex(info: ObjectInfo) -> str | None:
    value = info.checksums.get("SHA256")
    if value is None or info.checksum_type == "COMPOSITE":
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


class CatalogBackend(
    ForwardingBackend,
    passes_through={"check_ready", "create_bucket", "upload_part"} | READS,
):
    """``inner`` with every successful write recorded in ``catalog``.

    It owns the catalog's lifecycle: ``start`` starts the catalog, then ``inner``;
    ``close`` closes both (``SqlCatalog.start``/``close`` are idempotent, so other wrappers
    sharing the catalog may call them too).
    """

    def __init__(
        self,
        inner: Backend,
        catalog: Catalog,
        gate: CatalogGate | None = None,
        *,
        start_catalog: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``gate``: refuse writes with 503 while the catalog is down (policy.catalog_gate);
        ``start_catalog``: how ``start`` starts the catalog (default ``catalog.start``; a
        :class:`policy.catalog_start.CatalogStart`'s keeps an outage instead of raising)."""
        super().__init__(inner)
        self.catalog = catalog
        self.gate = gate
        self._start_catalog = start_catalog or catalog.start
        # (site, key) -> principal of a write the catalog missed (only with a gate).
        self.unrecorded: dict[tuple[str, str], str] = {}
        # (site, key) -> the missed write's tags and the multipart upload it completed.
        self._unrecorded_tags: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}
        self._catching_up = anyio.Lock()

    async def _require_catalog(self) -> None:
        if self.gate is not None:
            await self.gate.require()
            if self.unrecorded:
                await self._catch_up()

    async def _catch_up(self) -> None:
        """Write the rows of the writes the catalog missed, as the backend holds them now
        (see the module docstring); one that fails again stays for the next write."""
        async with self._catching_up:
            for (site, key), principal in list(self.unrecorded.items()):
                ctx = RequestContext("catalog-catch-up", principal)
                try:
                    try:
                        info = await self.inner.head_object(ctx, site, key)
                    except S3Error as error:
                        if error.code not in _GONE:
                            raise
                        await self.catalog.delete(site, key)
                    else:
                        tags, upload_id = self._unrecorded_tags.get((site, key), ({}, None))
                        record = object_record(site, info, principal, tags)
                        await self.catalog.upsert(record, upload_id=upload_id)
                except Exception:
                    logger.exception("catalog: recording %s/%s after the outage failed", site, key)
                    return
                if self.unrecorded.get((site, key)) == principal:
                    del self.unrecorded[(site, key)]
                    self._unrecorded_tags.pop((site, key), None)
            logger.warning("catalog: the writes it missed while it was down are recorded")

    async def _record(
        self,
        what: str,
        update: Callable[[], Awaitable[None]],
        key: tuple[str, str] | None = None,
        principal: str = "",
        tags: tuple[dict[str, str], str | None] = ({}, None),
    ) -> None:
        """Run ``update`` (the catalog's side of the write of ``key``, by ``principal``,
        with ``tags``: the write's own tag set and the multipart upload whose tags it takes,
        kept with a missed write for the catch-up)."""
        with anyio.CancelScope(shield=True), span("catalog.write") as writing:
            try:
                await update()
                if self.gate is not None:
                    self.gate.answered()
                if key is not None:
                    self.unrecorded.pop(key, None)
                    self._unrecorded_tags.pop(key, None)
            except Exception as error:
                failed(writing, error)
                kept = False
                if self.gate is not None:
                    self.gate.failed(error)
                    if key is not None and len(self.unrecorded) < MAX_UNRECORDED:
                        self.unrecorded[key] = principal
                        self._unrecorded_tags[key] = tags
                        kept = True
                logger.exception(
                    "catalog update failed after a successful backend write (%s); %s",
                    what,
                    "it is recorded once the catalog answers again"
                    if kept
                    else "the catalog is stale until `pagewright-gateway reindex` runs",
                )

    # Lifecycle

    async def start(self) -> None:
        await self._start_catalog()
        await self.inner.start()

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            await self.catalog.close()

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        await self._require_catalog()
        await self.inner.delete_bucket(ctx, bucket)
        await self._record(f"delete site {bucket}", lambda: self.catalog.delete_site(bucket))

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        await self._require_catalog()
        metadata = with_creator(key, metadata, ctx.principal)
        info = await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)
        record = object_record(bucket, info, ctx.principal, metadata.tags)
        await self._record(
            f"put {bucket}/{key}",
            lambda: self.catalog.upsert(record),
            (bucket, key),
            ctx.principal,
            (metadata.tags, None),
        )
        if info.version_id is not None:
            await self._count_versions(ctx, bucket, key)
        return info

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self.delete_version(ctx, bucket, key, None)

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        """Without an id the key reads as absent afterwards (a delete marker, or nothing
        left): its row goes, as with ``delete_object``. With one, the row follows the key's
        latest object when the entry deleted was the latest (an older version, if any,
        becomes the latest); deleting an older version leaves the row as it is."""
        await self._require_catalog()
        if version_id is None:
            outcome = await self.inner.delete_version(ctx, bucket, key, None)
            await self._record(
                f"delete {bucket}/{key}",
                lambda: self.catalog.delete(bucket, key),
                (bucket, key),
                ctx.principal,
            )
            if outcome.version_id is not None:
                await self._count_versions(ctx, bucket, key)
            return outcome
        try:
            latest: str | None = (await self.inner.head_object(ctx, bucket, key)).version_id
        except S3Error as error:
            if error.code not in _GONE:
                raise
            latest = None
        outcome = await self.inner.delete_version(ctx, bucket, key, version_id)
        if latest is None or latest == version_id:
            await self._record(
                f"delete {bucket}/{key} version {version_id}",
                lambda: self._follow_latest(ctx, bucket, key),
                (bucket, key),
                ctx.principal,
            )
        await self._count_versions(ctx, bucket, key)
        return outcome

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        """Set it, then tell the catalog (quotas stop crediting overwrites)."""
        await self._require_catalog()
        await self.inner.put_bucket_versioning(ctx, bucket, status)
        await self._record(
            f"versioning {bucket} {status}",
            lambda: self.catalog.set_versioning_status(bucket, status),
        )

    async def _count_versions(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Make ``key``'s version rows what the backend lists now (after a write or delete
        on a versioned bucket): one listing of the key (policy.catalog_versions)."""

        async def count() -> None:
            history = await key_history(self.inner, ctx, bucket, key)
            await self.catalog.set_versions(bucket, key, history)

        await self._record(f"record the versions of {bucket}/{key}", count)

    async def _follow_latest(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Set ``key``'s row from the backend's latest object, or delete it (none left)."""
        try:
            info = await self.inner.head_object(ctx, bucket, key)
        except S3Error as error:
            if error.code not in _GONE:
                raise
            await self.catalog.delete(bucket, key)
        else:
            await self.catalog.upsert(object_record(bucket, info, ctx.principal, {}))

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        await self._require_catalog()
        metadata = with_creator(key, metadata, ctx.principal)
        upload = await self.inner.create_multipart_upload(
            ctx, bucket, key, metadata, checksum_algorithm, checksum_type
        )
        if metadata.tags:
            try:
                await self.catalog.set_upload_tags(bucket, upload.upload_id, key, metadata.tags)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._abort_quietly(ctx, bucket, key, upload.upload_id)
                raise
        return upload

    async def _abort_quietly(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        """Abort an upload whose tags could not be kept (the client never learns its id)."""
        try:
            await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        except Exception:
            logger.exception("could not abort upload %s of %s/%s", upload_id, bucket, key)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        await self._require_catalog()
        info = await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
        record = object_record(bucket, info, ctx.principal)
        await self._record(
            f"complete {bucket}/{key}",
            lambda: self.catalog.upsert(record, upload_id=upload_id),
            (bucket, key),
            ctx.principal,
            ({}, upload_id),
        )
        if info.version_id is not None:
            await self._count_versions(ctx, bucket, key)
        return info

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        await self._record(
            f"abort {bucket}/{key}", lambda: self.catalog.drop_upload_tags(bucket, upload_id)
        )
