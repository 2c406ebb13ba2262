"""Quota reservations: one write's reserved bytes and artifacts, and the body that grows them.

:class:`Reservation` reserves in the shared catalog, crediting the size of the object a
write replaces; :class:`MeteredPayload` grows it as an upload's bytes arrive. Why this never
lets concurrent writes overshoot a quota, and why reservations never leak, is argued in
:mod:`policy.quota`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio

from core.errors import S3Error
from core.streams import PassThroughPayload, PayloadStream
from policy.model import Catalog, ObjectRecord, QuotaExceeded, SitePolicy

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
        if self.credit_key is not None and await self.catalog.versioning_status(self.site):
            # On a versioned site the replaced object stays as a noncurrent version: no credit.
            self.credit_key = None
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
        await release_reservation(self.catalog, self.id, self.site)
        self._held = False


class MeteredPayload(PassThroughPayload):
    """A :class:`PayloadStream` that enforces a size limit and grows a reservation while the
    body flows: the limit raises ``EntityTooLarge``, the quota ``QuotaExceeded``, both from
    the iterator before the translator can commit."""

    def __init__(self, inner: PayloadStream, reservation: Reservation, limit: int | None) -> None:
        super().__init__(inner)
        self._reservation = reservation
        self._limit = limit
        self.received = 0

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


async def release_reservation(catalog: Catalog, reservation_id: str, site: str) -> None:
    """Drop a reservation, shielded from cancellation (a client hanging up must not leak
    it); a failure is logged, the write's outcome stands."""
    with anyio.CancelScope(shield=True):
        try:
            await catalog.release(reservation_id)
        except Exception:
            log.exception("releasing quota reservation %s of site %s failed", reservation_id, site)
