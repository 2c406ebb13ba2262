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

Why reservations never leak
---------------------------
A single write's reservation belongs to the lease of the process taking it; a multipart
upload's belongs to the upload (the catalog records its key and upload id). A process
killed mid-write cannot release, so :class:`policy.leases.LeaseKeeper` reclaims, at
start-up and periodically, every single-write reservation whose lease expired or whose
process is gone, and every upload reservation whose upload no longer exists.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadDigest, PayloadStream
from policy.forwarding import LIFECYCLE, READS, ForwardingBackend
from policy.model import Catalog, ObjectRecord, QuotaExceeded, SitePolicy, parse_artifact_key
from policy.policies import PolicyResolver
from translators.base import (
    Backend,
    CompletedPart,
    ObjectInfo,
    PartInfo,
    UploadInfo,
    WriteConditions,
    WriteMetadata,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

#: How far an unknown-length body's reservation runs ahead of the bytes received.
GROWTH_STEP = 8 * 1024 * 1024
#: Attempts at a credited reservation before falling back to one without credit.
CREDIT_ATTEMPTS = 3
#: A policy whose quotas admit anything: moving an already admitted amount between ids.
_UNCHECKED = SitePolicy(quota_bytes=None, quota_artifacts=None)


def entity_too_large(size: int, limit: int, site: str) -> S3Error:
    return S3Error(
        "EntityTooLarge",
        f"Your proposed upload of {size} bytes exceeds the maximum object size of {limit} "
        f"bytes for site {site!r}.",
        ProposedSize=str(size),
        MaxSizeAllowed=str(limit),
    )


def quota_error(site: str, exc: QuotaExceeded, limit: int, request: str) -> S3Error:
    """The ``QuotaExceeded`` reply: names the site, the quota, the usage and the request."""
    usage = exc.usage
    if exc.which == "bytes":
        state = (
            f"{usage.bytes} bytes stored in {usage.objects} objects, "
            f"{usage.reserved_bytes} bytes reserved by uploads in progress"
        )
    else:
        state = (
            f"{usage.artifacts} artifacts stored, "
            f"{usage.reserved_artifacts} reserved by uploads in progress"
        )
    return S3Error(
        "QuotaExceeded",
        f"Site {site!r} would exceed its {exc.which} quota of {limit}: {state}; "
        f"this request needs {request}.",
    )


def _identity(record: ObjectRecord | None) -> tuple[int, str, object] | None:
    return None if record is None else (record.size, record.etag, record.created_at)


class Reservation:
    """One write's reservation of bytes and artifacts in the catalog, grown as needed.

    ``credit_key`` is the key the write replaces when it commits (None: no credit, e.g. a
    part that is not yet an object). ``upload`` (key, upload id) makes it a multipart
    upload's reservation, else it belongs to this process's lease.
    :meth:`add` raises ``S3Error("QuotaExceeded")``.
    """

    def __init__(
        self,
        catalog: Catalog,
        site: str,
        policy: SitePolicy,
        *,
        credit_key: str | None,
        reservation_id: str | None = None,
        upload: tuple[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.site = site
        self.policy = policy
        self.credit_key = credit_key
        self.upload = upload
        self.id = reservation_id or f"write:{site}:{uuid.uuid4().hex}"
        self.bytes = 0
        self.artifacts = 0
        self._held = False

    @property
    def _quota_on(self) -> bool:
        return self.policy.quota_bytes is not None or self.policy.quota_artifacts is not None

    def _credited(self, current: ObjectRecord | None) -> SitePolicy:
        if current is None:
            return self.policy
        quota_bytes, quota_artifacts = self.policy.quota_bytes, self.policy.quota_artifacts
        return replace(
            self.policy,
            quota_bytes=None if quota_bytes is None else quota_bytes + current.size,
            quota_artifacts=(
                None
                if quota_artifacts is None
                else quota_artifacts + (1 if current.is_artifact else 0)
            ),
        )

    async def add(self, size: int, artifacts: int = 0) -> None:
        """Reserve ``size`` more bytes and ``artifacts`` more artifacts, atomically checked.

        A site without quotas reserves nothing: the catalog round trips are skipped on the
        write path (uploads already in flight when a quota is switched on are not counted).
        """
        if (size == 0 and artifacts == 0) or not self._quota_on:
            return
        try:
            await self._add(size, artifacts)
        except QuotaExceeded as exc:
            limit = self.policy.quota_bytes if exc.which == "bytes" else self.policy.quota_artifacts
            request = f"{self.bytes + size} bytes" + (
                " and 1 artifact" if self.artifacts + artifacts else ""
            )
            raise quota_error(self.site, exc, limit or exc.limit, request) from exc
        self.bytes += size
        self.artifacts += artifacts

    async def _add(self, size: int, artifacts: int) -> None:
        upload = self.upload
        if self.credit_key is None or not self._quota_on:
            await self.catalog.reserve(
                self.site, self.id, size, artifacts, self.policy, upload=upload
            )
            self._held = True
            return
        step_bytes, step_artifacts = size, artifacts
        for _ in range(CREDIT_ATTEMPTS):
            before = await self.catalog.get(self.site, self.credit_key)
            await self.catalog.reserve(
                self.site,
                self.id,
                step_bytes,
                step_artifacts,
                self._credited(before),
                upload=upload,
            )
            self._held = True
            if before is None:
                return
            after = await self.catalog.get(self.site, self.credit_key)
            if _identity(after) == _identity(before):
                return
            # The replaced object changed while we reserved: the credit may be stale. Start
            # over with everything this write holds, under a fresh credit.
            await self.catalog.release(self.id)
            step_bytes, step_artifacts = self.bytes + size, self.artifacts + artifacts
        await self.catalog.reserve(
            self.site, self.id, step_bytes, step_artifacts, self.policy, upload=upload
        )

    async def move_to(self, reservation_id: str, upload: tuple[str, str]) -> None:
        """Hand everything held to the reservation ``reservation_id`` of the multipart
        ``upload`` (key, upload id); already admitted, so no quota check."""
        if self.bytes or self.artifacts:
            await self.catalog.reserve(
                self.site, reservation_id, self.bytes, self.artifacts, _UNCHECKED, upload=upload
            )
        await self.release()

    async def release(self) -> None:
        """Drop the reservation; failures are logged (the write's outcome stands)."""
        if not self._held:
            return
        await _release(self.catalog, self.id, self.site)
        self._held = False


class MeteredPayload:
    """A :class:`PayloadStream` that enforces a size limit and grows a reservation while the
    body flows: the limit raises ``EntityTooLarge``, the quota ``QuotaExceeded``, both from
    the iterator before the translator can commit."""

    def __init__(self, inner: PayloadStream, reservation: Reservation, limit: int | None) -> None:
        self._inner = inner
        self._reservation = reservation
        self._limit = limit
        self.received = 0

    @property
    def declared_size(self) -> int | None:
        return self._inner.declared_size

    def digest(self) -> PayloadDigest:
        return self._inner.digest()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        reservation = self._reservation
        async for chunk in self._inner:
            self.received += len(chunk)
            if self._limit is not None and self.received > self._limit:
                raise entity_too_large(self.received, self._limit, reservation.site)
            if self.received > reservation.bytes:
                needed = self.received - reservation.bytes
                try:
                    await reservation.add(max(needed, GROWTH_STEP))
                except S3Error:
                    if needed >= GROWTH_STEP:
                        raise
                    await reservation.add(needed)
            yield chunk


def upload_reservation_id(site: str, key: str, upload_id: str) -> str:
    """The reservation of a multipart upload, the same in every replica."""
    return f"upload:{site}:{key}:{upload_id}"


class QuotaBackend(
    ForwardingBackend,
    passes_through=LIFECYCLE | READS | {"create_bucket", "delete_bucket", "delete_object"},
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
        policy = await self._policies.for_site(bucket)
        limit = self._limit(policy)
        declared = body.declared_size
        if declared is not None and limit is not None and declared > limit:
            raise entity_too_large(declared, limit, bucket)
        reservation = Reservation(self._catalog, bucket, policy, credit_key=key)
        try:
            artifacts = 1 if parse_artifact_key(key) is not None else 0
            await reservation.add(declared or 0, artifacts)
            metered = MeteredPayload(body, reservation, limit)
            return await self.inner.put_object(ctx, bucket, key, metered, metadata, conditions)
        finally:
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
        policy = await self._policies.for_site(bucket)
        limit = self._limit(policy)
        declared = body.declared_size
        if declared is not None and limit is not None and declared > limit:
            raise entity_too_large(declared, limit, bucket)
        reservation = Reservation(self._catalog, bucket, policy, credit_key=key)
        try:
            await reservation.add(declared or 0)
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
            size = await self._assembled_size(ctx, bucket, key, upload_id, parts)
            if size > limit:
                raise entity_too_large(size, limit, bucket)
        rid = upload_reservation_id(bucket, key, upload_id)
        try:
            info = await self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            )
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                await self._release(rid, bucket)
            raise
        await self._release(rid, bucket)
        return info

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        """Abort, then release the upload's reservation (also when it was already gone)."""
        rid = upload_reservation_id(bucket, key, upload_id)
        try:
            await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                await self._release(rid, bucket)
            raise
        await self._release(rid, bucket)

    async def _assembled_size(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
    ) -> int:
        """The size the named parts add up to (parts not stored count 0: the inner
        completion rejects them)."""
        wanted = {p.part_number for p in parts}
        total, marker = 0, 0
        while True:
            _, page = await self.inner.list_parts(ctx, bucket, key, upload_id, marker, 1000)
            total += sum(p.size for p in page.parts if p.part_number in wanted)
            if page.next_part_number_marker is None:
                return total
            marker = page.next_part_number_marker

    async def _release(self, reservation_id: str, site: str) -> None:
        await _release(self._catalog, reservation_id, site)


async def _release(catalog: Catalog, reservation_id: str, site: str) -> None:
    """Drop a reservation, shielded from cancellation (a client hanging up must not leak
    it); a failure is logged, the write's outcome stands."""
    with anyio.CancelScope(shield=True):
        try:
            await catalog.release(reservation_id)
        except Exception:
            log.exception("releasing quota reservation %s of site %s failed", reservation_id, site)
