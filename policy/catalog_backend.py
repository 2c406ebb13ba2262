"""Keep the catalog in step with the backend: a Backend wrapper that records each write.

Deny by default (:mod:`policy.forwarding`): a new Backend method keeps this class from being
defined until it is either handled here or named as passed through. Writes go to the
backend first; only after the backend succeeded is the catalog told:

* ``put_object`` / ``complete_multipart_upload`` upsert the object's :class:`ObjectRecord`,
* ``delete_object`` deletes its row, ``delete_bucket`` every row of the site.

Tags are catalog state and belong to the object: a ``put_object`` stores the tags of its
:class:`WriteMetadata` with the new row, in the same statement that replaces the previous
object's (a new object never inherits tags). A multipart upload's tags are kept in the
catalog from ``create_multipart_upload`` (a failure to keep them aborts the upload and fails
the request) and given to the object in the transaction that records the completion;
``abort_multipart_upload`` forgets them.

A catalog failure after a successful backend write is logged at ERROR and swallowed: the
backend is the truth and ``pagewright-gateway reindex`` repairs the catalog. With a
:class:`policy.catalog_gate.CatalogGate`, writes are refused (503) before they start while
the catalog is down, so that window stays one write wide. The catalog
update is shielded from cancellation, so a client hanging up right after the commit does
not leave the row behind.
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

logger = logging.getLogger(__name__)


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

    def __init__(self, inner: Backend, catalog: Catalog, gate: CatalogGate | None = None) -> None:
        """``gate``: refuse writes with 503 while the catalog is down (policy.catalog_gate)."""
        super().__init__(inner)
        self.catalog = catalog
        self.gate = gate

    async def _require_catalog(self) -> None:
        if self.gate is not None:
            await self.gate.require()

    async def _record(self, what: str, update: Callable[[], Awaitable[None]]) -> None:
        with anyio.CancelScope(shield=True), span("catalog.write") as writing:
            try:
                await update()
                if self.gate is not None:
                    self.gate.answered()
            except Exception as error:
                failed(writing, error)
                if self.gate is not None:
                    self.gate.failed(error)
                logger.exception(
                    "catalog update failed after a successful backend write (%s); the "
                    "catalog is stale until `pagewright-gateway reindex` runs",
                    what,
                )

    # Lifecycle

    async def start(self) -> None:
        await self.catalog.start()
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
        await self._record(f"put {bucket}/{key}", lambda: self.catalog.upsert(record))
        return info

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self._require_catalog()
        await self.inner.delete_object(ctx, bucket, key)
        await self._record(f"delete {bucket}/{key}", lambda: self.catalog.delete(bucket, key))

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
        )
        return info

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        await self._record(
            f"abort {bucket}/{key}", lambda: self.catalog.drop_upload_tags(bucket, upload_id)
        )
