"""Artifact integrity: validate archives before they become visible, re-hash them on reads.

:class:`ValidationBackend` wraps a :class:`~translators.base.Backend` (Backend → Backend).
It decides for every Backend method (deny by default, :mod:`policy.forwarding`); what it
adds, for artifact keys only (:func:`policy.model.parse_artifact_key`):

* **PutObject**: the body is wrapped in a :class:`ValidatingPayload` that feeds each chunk to
  an :class:`~policy.archive.ArchiveValidator` (when the site's ``validate_archives`` is on)
  and to a SHA256 hasher. A broken rule raises its ``S3Error`` from the payload's iterator,
  at the latest when the body ends, so the translator (which commits only after a full,
  error-free iteration) stores nothing and the earlier artifact under the key is untouched.
  The stored object always carries a full-object ``SHA256`` checksum, validation on or off;
  when the client sent ``x-amz-checksum-sha256`` it must match (``BadDigest``).
* **Multipart uploads** are staged, because the Backend interface cannot read an upload's
  parts before completion. CreateMultipartUpload of ``builds/1.tar.gz`` creates the inner
  upload under ``.pagewright-staging/<nonce>/builds/1.tar.gz`` (:data:`STAGING_PREFIX`,
  ``nonce`` 32 hex digits ordered by creation time) and answers the upload id
  ``<nonce>.<inner id>``. The id alone names the staging key, so every replica resolves it
  without shared state. UploadPart / ListParts / AbortMultipartUpload translate the id;
  ListMultipartUploads merges staged uploads back under their client keys.
  CompleteMultipartUpload completes the staging object, streams it through the validator
  (``get_object``) into a ``put_object`` of the final key with the upload's metadata and
  the client's conditions, and deletes the staging object whatever happened. Costs: one
  extra read and write of every multipart artifact (its size in transient storage and I/O);
  the final object has a single-part ETag (MD5 of the whole body, not ``<md5>-N``) and
  full-object checksums instead of composite ones; a GET by ``partNumber`` sees one part;
  ListMultipartUploads reads every staged upload of the bucket (only artifact uploads in
  flight). A crash between the staging completion and its deletion leaves a hidden staging
  object behind (no client can see or address it).
* The reserved areas (:data:`core.reserved.RESERVED_PREFIXES`: the staging area and the
  per-site state record of :mod:`policy.site_state`) are hidden from ListObjects and
  ListMultipartUploads; a client key under them is refused with ``InvalidObjectName``, and
  DeleteBucket removes what they hold once nothing else is left.
* **Key spelling**: a write of a key under ``builds/`` ending in an archive extension (any
  letter case) that is not a valid artifact key is refused with ``InvalidArtifactKey``
  naming the rule (:func:`policy.model.artifact_key_problem`), so no spelling bypasses
  validation.
* **GetObject** of a whole artifact (no range, no part number) with a stored full-object
  SHA256 re-hashes the body as it streams and holds back the last chunk until the hash
  matched. On a mismatch it logs site/key/expected/actual, counts
  ``pagewright_artifact_corrupt_total``, marks the record corrupt in the catalog (when
  one is given) and raises :class:`~policy.validation_streams.CorruptArtifactError` from the
  body's iterator: the gateway then aborts the response, so the client sees a failed
  download, never wrong bytes presented as complete.

The streams are in :mod:`policy.validation_streams`, the staging ids and the merged upload
listing in :mod:`policy.staging`, the corrupt reports in
:mod:`policy.validation_metrics` (counted in :mod:`policy.metrics`).

Where it sits: below the catalog and quota wrappers (they see the client's key and the final
object of a completion, never the staging area), directly above the translator.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import anyio

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.reserved import RESERVED_PREFIXES, is_reserved_key
from core.streams import PayloadStream
from core.tracing import SITE, span
from policy import staging
from policy.archive import ArchiveValidator
from policy.encryption_meta import encryption_of
from policy.forwarding import LIFECYCLE, ForwardingBackend
from policy.metrics import Metrics
from policy.model import Catalog, SitePolicy, artifact_key_problem, parse_artifact_key
from policy.validation_metrics import report_corrupt
from policy.validation_streams import RehashingBody, ValidatingPayload, sha256_hex
from translators.base import (
    Backend,
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
)
from translators.versioning import DeleteOutcome, Version, VersionsPage, VersionsQuery

log = logging.getLogger(__name__)

PolicySource = Callable[[str], Awaitable[SitePolicy]]


def _reserved(key: str) -> S3Error:
    return S3Error(
        "InvalidObjectName",
        f"Keys under {' and '.join(map(repr, RESERVED_PREFIXES))} are reserved by PageWright.",
        Key=key,
    )


def check_writable_key(key: str) -> None:
    """Refuse a client write of a reserved key (``InvalidObjectName``) or of a key that
    looks like an artifact but is not a valid artifact key (``InvalidArtifactKey``)."""
    if is_reserved_key(key):
        raise _reserved(key)
    problem = artifact_key_problem(key)
    if problem is not None:
        raise S3Error("InvalidArtifactKey", f"{key!r} is not a valid artifact key: {problem}.")


class ValidationBackend(
    ForwardingBackend,
    passes_through=LIFECYCLE
    | {"list_buckets", "create_bucket", "head_bucket"}
    | {"get_bucket_versioning", "put_bucket_versioning"},
):
    """Backend wrapper validating artifacts on write and re-hashing them on read.

    See the module docstring for the contracts. ``policies(site)`` gives a site's effective
    policy; ``catalog`` (optional) is where corrupt artifacts are marked;
    ``on_corrupt(site, key)`` (optional) is an extra hook called after a mismatch is found.
    """

    def __init__(
        self,
        inner: Backend,
        policies: PolicySource,
        catalog: Catalog | None = None,
        *,
        on_corrupt: Callable[[str, str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(inner)
        self._policies = policies
        self._catalog = catalog
        self._on_corrupt_hook = on_corrupt
        self._metrics = metrics

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """Delete the bucket; objects in the reserved areas (which clients cannot see or
        delete) do not keep it from being deleted: they are removed first."""
        try:
            await self.inner.delete_bucket(ctx, bucket)
        except S3Error as error:
            if error.code != "BucketNotEmpty":
                raise
            reserved = await self._reserved_only(ctx, bucket)
            if reserved is None:
                raise
            for key in reserved:
                await self.inner.delete_object(ctx, bucket, key)
            await self.inner.delete_bucket(ctx, bucket)

    async def _reserved_only(self, ctx: RequestContext, bucket: str) -> list[str] | None:
        """Every key of ``bucket`` if all are reserved, else None."""
        keys: list[str] = []
        query = ListQuery()
        while True:
            page = await self.inner.list_objects(ctx, bucket, query)
            for listed in page.objects:
                if not is_reserved_key(listed.key):
                    return None
                keys.append(listed.key)
            if page.next_start_after is None:
                return keys
            query = ListQuery(start_after=page.next_start_after)

    # Objects

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        if is_reserved_key(key):
            raise _reserved(key)
        return await self.inner.head_object(ctx, bucket, key)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """The inner result; a whole artifact with a stored SHA256 gets a re-hashing body."""
        if is_reserved_key(key):
            raise _reserved(key)
        result = await self.inner.get_object(ctx, bucket, key, options)
        return self._rehashing(bucket, key, options, result, mark=True)

    def _rehashing(
        self, bucket: str, key: str, options: GetOptions, result: GetResult, *, mark: bool
    ) -> GetResult:
        """``result`` with a re-hashing body when it reads a whole artifact with a stored
        SHA256; a mismatch is reported (and marked in the catalog if ``mark``)."""
        if options.range is not None or options.part_number is not None:
            return result
        if parse_artifact_key(key) is None:
            return result
        expected = sha256_hex(result.info)
        if expected is None:
            return result

        async def corrupt(actual: str) -> None:
            await self.report_corrupt(bucket, key, expected, actual, mark=mark)

        body = RehashingBody(
            result.body, site=bucket, key=key, expected_hex=expected, on_corrupt=corrupt
        )
        return replace(result, body=body)

    # Versions: reserved keys stay out of reach; a whole artifact version is re-hashed too
    # (a corrupt older version is logged and counted, not marked: the catalog's row is the
    # latest version's).

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        if is_reserved_key(key):
            raise _reserved(key)
        return await self.inner.head_version(ctx, bucket, key, version_id)

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        if is_reserved_key(key):
            raise _reserved(key)
        result = await self.inner.get_version(ctx, bucket, key, version_id, options)
        return self._rehashing(bucket, key, options, result, mark=False)

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        if is_reserved_key(key):
            raise _reserved(key)
        return await self.inner.delete_version(ctx, bucket, key, version_id)

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        """The inner page without the reserved areas (a page may come back short for them)."""
        if is_reserved_key(query.prefix):
            await self.inner.head_bucket(ctx, bucket)
            return VersionsPage([], [], None, None)
        page = await self.inner.list_versions(ctx, bucket, query)
        return replace(
            page,
            versions=[v for v in page.versions if not is_reserved_key(v.key)],
            common_prefixes=[p for p in page.common_prefixes if not is_reserved_key(p)],
        )

    async def report_corrupt(
        self, site: str, key: str, expected: str, actual: str, *, mark: bool = True
    ) -> None:
        """Log, count and (if ``mark``) mark an artifact whose bytes do not match its
        SHA256."""
        if self._on_corrupt_hook is not None:
            self._on_corrupt_hook(site, key)
        catalog = self._catalog if mark else None
        await report_corrupt(catalog, site, key, expected, actual, self._metrics)

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Store ``body``; an artifact is validated and hashed as it streams (module doc)."""
        check_writable_key(key)
        if parse_artifact_key(key) is None:
            return await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)
        return await self._validated_put(ctx, bucket, key, body, metadata, conditions)

    async def _validated_put(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Store an artifact validated and hashed as ``body`` streams, in a ``validation``
        span (core.tracing): the write it checks on the way is its child."""
        with span("validation", {SITE: bucket}):
            payload = await self._validating(ctx, bucket, key, body)
            return await self.inner.put_object(ctx, bucket, key, payload, metadata, conditions)

    async def _validating(
        self, ctx: RequestContext, bucket: str, key: str, body: PayloadStream
    ) -> ValidatingPayload:
        artifact = parse_artifact_key(key)
        assert artifact is not None
        policy = await self._policies(bucket)
        validator = (
            ArchiveValidator(artifact.compression, policy) if policy.validate_archives else None
        )

        def rejected(error: S3Error) -> None:
            if self._metrics is not None:
                self._metrics.validation_rejections.labels(error.code).inc()
            log.info(
                "artifact rejected",
                extra={
                    "request_id": ctx.request_id,
                    "site": bucket,
                    "key": key,
                    "code": error.code,
                    "reason": error.message,
                },
            )

        return ValidatingPayload(body, validator, on_reject=rejected)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        if is_reserved_key(key):
            raise _reserved(key)
        await self.inner.delete_object(ctx, bucket, key)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """The inner page without the reserved areas (a page may come back short for them)."""
        if is_reserved_key(query.prefix):
            await self.inner.head_bucket(ctx, bucket)
            return ListPage([], [], None)
        page = await self.inner.list_objects(ctx, bucket, query)
        return ListPage(
            [o for o in page.objects if not is_reserved_key(o.key)],
            [p for p in page.common_prefixes if not is_reserved_key(p)],
            page.next_start_after,
        )

    # Multipart

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """An artifact's upload is created under a staging key (module docstring)."""
        check_writable_key(key)
        if parse_artifact_key(key) is None:
            return await self.inner.create_multipart_upload(
                ctx, bucket, key, metadata, checksum_algorithm, checksum_type
            )
        nonce = staging.new_nonce()
        upload = await self.inner.create_multipart_upload(
            ctx,
            bucket,
            staging.staging_key(nonce, key),
            metadata,
            checksum_algorithm,
            checksum_type,
        )
        return staging.staged_upload(nonce, key, upload)

    def _inner_upload(self, key: str, upload_id: str) -> tuple[str, str]:
        """The inner (key, upload id) of a client's upload; ``NoSuchUpload`` if it cannot be."""
        if is_reserved_key(key):
            raise _reserved(key)
        if parse_artifact_key(key) is None:
            return key, upload_id
        return staging.inner_upload(key, upload_id)

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        inner_key, inner_id = self._inner_upload(key, upload_id)
        return await self.inner.upload_part(ctx, bucket, inner_key, inner_id, part_number, body)

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        inner_key, inner_id = self._inner_upload(key, upload_id)
        upload, page = await self.inner.list_parts(
            ctx, bucket, inner_key, inner_id, part_number_marker, max_parts
        )
        return replace(upload, key=key, upload_id=upload_id), page

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        inner_key, inner_id = self._inner_upload(key, upload_id)
        await self.inner.abort_multipart_upload(ctx, bucket, inner_key, inner_id)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """An artifact: complete the staging object, validate it while copying it to ``key``,
        delete the staging object. Nothing is visible under ``key`` unless it passed."""
        check_writable_key(key)
        inner_key, inner_id = self._inner_upload(key, upload_id)
        if inner_key == key:
            return await self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            )
        # Fail fast on unmet conditions while the upload can still be retried; the put
        # below checks them again atomically with its commit.
        try:
            current: ObjectInfo | None = await self.inner.head_object(ctx, bucket, key)
        except S3Error as error:
            if error.code != "NoSuchKey":
                raise
            current = None
        conditions.check(current)
        staged = await self.inner.complete_multipart_upload(
            ctx, bucket, inner_key, inner_id, parts, WriteConditions()
        )
        try:
            key_given = GetOptions(customer_key=ctx.customer_key)
            source = await self.inner.get_object(ctx, bucket, inner_key, key_given)
            try:
                algorithms = [a for a in staged.checksums if a != "SHA256"] or ["CRC64NVME"]
                copy = HashingPayload(source.body, source.info.size, algorithms)
                metadata = WriteMetadata(
                    dict(staged.headers),
                    dict(staged.user_metadata),
                    encryption=encryption_of(staged.encryption, ctx.customer_key),
                )
                return await self._validated_put(ctx, bucket, key, copy, metadata, conditions)
            finally:
                await source.body.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.inner.delete_object(ctx, bucket, inner_key)
                except Exception:
                    log.exception(
                        "could not delete a staging object", extra={"site": bucket, "key": key}
                    )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """The inner uploads without the reserved areas, merged with the staged uploads
        shown under their client keys and ids (:func:`policy.staging.merged_uploads`)."""
        if is_reserved_key(query.prefix):
            await self.inner.head_bucket(ctx, bucket)
            return UploadsPage([], [], None, None)
        return await staging.merged_uploads(self.inner, ctx, bucket, query)
