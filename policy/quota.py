"""Size limits and per-site quotas, enforced with catalog reservations (a Backend wrapper).

:class:`QuotaBackend` wraps the stack whose writes update the catalog (the catalog row of an
object exists once ``inner.put_object`` / ``complete_multipart_upload`` returned). Every
write reserves what it may add, in the shared catalog, before its body is read, and releases
the reservation once the write committed (its row now counts) or failed.

Why no combination of concurrent writes can overshoot a quota
------------------------------------------------------------
Let W be the worst usage the site can reach: per key, the largest of its committed size and
the sizes of the writes in flight to it, summed over keys. W bounds usage at every moment.

* Every write keeps its **full** size (and 1 artifact for an artifact key) reserved until its
  row is committed, so committed + reserved >= W at all times (a replaced key counts twice).
* A write to a new key is admitted by the catalog's atomic check
  committed + reserved + size <= quota, hence W stays <= quota.
* A write to key K whose current row has size c is admitted by the same atomic check with
  the quota raised by c (the *credit*: a replacement adds only the difference). If K's
  largest candidate afterwards is still c, W did not change; otherwise that candidate is one
  of K's in-flight writes, all of which are in ``reserved``, so
  W <= committed - c + reserved + size <= quota.
* The credit must be K's size *at the instant of the reservation*. It is read before and
  after reserving; a row identity (size, etag, created_at) that differs between the two
  reads means K changed meanwhile, so the reservation is dropped and retried, and after a
  few attempts taken without credit (conservative).
* Commits, deletes and releases only shrink W. Part uploads and unknown-length bodies grow
  their reservation through the same admission before the bytes beyond it are accepted.

Multipart: the upload holds one reservation (``upload:<site>:<key>:<upload id>``, the same
in every replica): 1 artifact from creation for an artifact key, plus every part's size once
the part is stored (a part first reserves under its own id, released if the part fails). A
re-uploaded part number stays counted twice until completion (conservative). Completion and
abort release it.

The reservations themselves are :class:`policy.quota_reservations.Reservation`.

Why reservations never leak
---------------------------
A single write's reservation belongs to the lease of the process taking it; a multipart
upload's belongs to the upload (the catalog records its key and upload id). A process
killed mid-write cannot release, so :class:`policy.leases.LeaseKeeper` reclaims, at
start-up and periodically, every single-write reservation whose lease expired or whose
process is gone, and every upload reservation whose upload no longer exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from core.tracing import span
from policy.forwarding import LIFECYCLE, READS, ForwardingBackend
from policy.model import Catalog, SitePolicy, parse_artifact_key
from policy.policies import PolicyResolver
from policy.quota_reservations import (
    MeteredPayload,
    Reservation,
    entity_too_large,
    release_reservation,
    upload_reservation_id,
)
from policy.upload_parts import named_parts_size
from translators.base import (
    Backend,
    CompletedPart,
    ObjectInfo,
    PartInfo,
    UploadInfo,
    WriteConditions,
    WriteMetadata,
)

#: The spans of a request's reservation being taken and released (core.tracing).
RESERVE = "quota.reserve"
RELEASE = "quota.release"


class QuotaBackend(
    ForwardingBackend,
    passes_through=LIFECYCLE
    | READS
    | {
        "create_bucket",
        "delete_bucket",
        "delete_object",
        "put_bucket_versioning",
        "delete_version",
    },
):
    """Backend wrapper enforcing ``max_object_size`` and per-site quotas (module docstring).

    ``max_object_size`` is the global limit used when the site's policy sets none. The
    methods that add data are metered; lifecycle, reads and deletes pass through.
    """

    def __init__(
        self,
        inner: Backend,
        catalog: Catalog,
        policies: PolicyResolver,
        *,
        max_object_size: int | None = None,
    ) -> None:
        super().__init__(inner)
        self._catalog = catalog
        self._policies = policies
        self._max_object_size = max_object_size

    def _limit(self, policy: SitePolicy) -> int | None:
        if policy.max_object_size is not None:
            return policy.max_object_size
        return self._max_object_size

    async def _reservation(
        self, bucket: str, key: str, declared: int | None
    ) -> tuple[Reservation, int | None]:
        """An empty reservation for a write of ``key`` and the size limit of ``bucket``;
        ``EntityTooLarge`` when the ``declared`` size is already over it."""
        policy = await self._policies.for_site(bucket)
        limit = self._limit(policy)
        if declared is not None and limit is not None and declared > limit:
            raise entity_too_large(declared, limit, bucket)
        return Reservation(self._catalog, bucket, policy, credit_key=key), limit

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Check the declared size, reserve it (+1 artifact) before reading, meter the body."""
        reservation, limit = await self._reservation(bucket, key, body.declared_size)
        try:
            artifacts = 1 if parse_artifact_key(key) is not None else 0
            with span(RESERVE):
                await reservation.add(body.declared_size or 0, artifacts)
            metered = MeteredPayload(body, reservation, limit)
            return await self.inner.put_object(ctx, bucket, key, metered, metadata, conditions)
        finally:
            with span(RELEASE):
                await reservation.release()

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Create the upload; an artifact key reserves its artifact now (aborted if over)."""
        upload = await self.inner.create_multipart_upload(
            ctx, bucket, key, metadata, checksum_algorithm, checksum_type
        )
        if parse_artifact_key(key) is None:
            return upload
        policy = await self._policies.for_site(bucket)
        reservation = Reservation(
            self._catalog,
            bucket,
            policy,
            credit_key=key,
            reservation_id=upload_reservation_id(bucket, key, upload.upload_id),
            upload=(key, upload.upload_id),
        )
        try:
            with span(RESERVE):
                await reservation.add(0, 1)
        except S3Error:
            await self.inner.abort_multipart_upload(ctx, bucket, key, upload.upload_id)
            raise
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
        """Reserve the part's size before reading; it joins the upload's reservation once
        stored, and is dropped if the part fails."""
        reservation, limit = await self._reservation(bucket, key, body.declared_size)
        try:
            with span(RESERVE):
                await reservation.add(body.declared_size or 0)
            metered = MeteredPayload(body, reservation, limit)
            part = await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, metered)
        except BaseException:
            await reservation.release()
            raise
        await reservation.move_to(upload_reservation_id(bucket, key, upload_id), (key, upload_id))
        return part

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Check the assembled size against the limit, complete, then release the upload's
        reservation (the object's row now counts). A failed completion keeps it: the upload
        still exists, unless it is gone (``NoSuchUpload``)."""
        policy = await self._policies.for_site(bucket)
        limit = self._limit(policy)
        if limit is not None:
            size = await named_parts_size(self.inner, ctx, bucket, key, upload_id, parts)
            if size > limit:
                raise entity_too_large(size, limit, bucket)
        async with self._upload_ending(bucket, key, upload_id):
            return await self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        """Abort, then release the upload's reservation (also when it was already gone)."""
        async with self._upload_ending(bucket, key, upload_id):
            await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)

    @asynccontextmanager
    async def _upload_ending(self, bucket: str, key: str, upload_id: str) -> AsyncIterator[None]:
        """Release the upload's reservation after the block ends the upload, or when the
        block finds it gone (``NoSuchUpload``); any other failure keeps it."""
        reservation_id = upload_reservation_id(bucket, key, upload_id)
        try:
            yield
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                await release_reservation(self._catalog, reservation_id, bucket)
            raise
        await release_reservation(self._catalog, reservation_id, bucket)
