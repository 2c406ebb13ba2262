"""Retention per site: which build artifacts to keep, and deleting the others.

Rules (:func:`plan_retention`, pure). An artifact is kept when any rule keeps it:

* it is pinned;
* it is among the ``retention_keep_last`` newest (by ``created_at``, then key);
* it is younger than ``retention_days`` (``created_at`` after ``now - days``);
* it is the newest *successful* artifact of the site: not corrupt, and its ``status`` is
  absent (an upload without a status is an ordinary, successful build) or, ignoring case,
  ``success`` / ``succeeded`` / ``ok`` / ``passed``. Any other status (``failed``,
  ``running``...) is not successful.

When the site has neither ``retention_keep_last`` nor ``retention_days``, every artifact is
kept. Only artifacts are ever planned for deletion; ordinary objects are not considered.

:class:`RetentionService` applies a plan through the Backend (the wrapped stack, so the
catalog follows), after every artifact upload (:class:`RetentionBackend`) and periodically.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio

from core.context import RequestContext
from core.streams import PayloadStream
from policy.forwarding import LIFECYCLE, READS, ForwardingBackend
from policy.metrics import Metrics
from policy.model import (
    ArtifactFilter,
    Catalog,
    ObjectRecord,
    SitePolicy,
    every_record,
    parse_artifact_key,
)
from policy.periodic import repeat
from policy.policies import PolicyResolver
from translators.base import (
    Backend,
    CompletedPart,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
)

log = logging.getLogger(__name__)

SUCCESS_STATUSES = frozenset({"success", "succeeded", "ok", "passed"})
RETENTION_PRINCIPAL = "pagewright-retention"


def is_successful(record: ObjectRecord) -> bool:
    """No status, or a success status, and not corrupt (see the module docstring)."""
    if record.corrupt:
        return False
    return record.status is None or record.status.strip().lower() in SUCCESS_STATUSES


@dataclass(frozen=True)
class RetentionPlan:
    """What a retention pass keeps and deletes (newest first), and why each is kept.

    ``reasons`` maps the key of every kept artifact to the rules that keep it.
    """

    keep: list[ObjectRecord]
    delete: list[ObjectRecord]
    reasons: dict[str, list[str]] = field(default_factory=dict)


def _newest_first(records: list[ObjectRecord]) -> list[ObjectRecord]:
    return sorted(records, key=lambda r: (r.created_at, r.key), reverse=True)


def plan_retention(
    artifacts: list[ObjectRecord], policy: SitePolicy, now: datetime
) -> RetentionPlan:
    """Decide which of a site's ``artifacts`` to keep under ``policy`` at ``now``.

    Pure: no I/O. Records that are not artifacts are ignored (neither kept nor deleted).
    """
    ordered = _newest_first([r for r in artifacts if r.is_artifact])
    keep_last, days = policy.retention_keep_last, policy.retention_days
    reasons: dict[str, list[str]] = {r.key: [] for r in ordered}
    if keep_last is None and days is None:
        for record in ordered:
            reasons[record.key].append("no retention rule")
        return RetentionPlan(keep=ordered, delete=[], reasons=reasons)

    cutoff = None if days is None else now - timedelta(days=days)
    newest_successful = next((r for r in ordered if is_successful(r)), None)
    for index, record in enumerate(ordered):
        why = reasons[record.key]
        if record.pinned:
            why.append("pinned")
        if keep_last is not None and index < keep_last:
            why.append(f"among the {keep_last} newest")
        if cutoff is not None and record.created_at > cutoff:
            why.append(f"younger than {days} days")
        if record is newest_successful:
            why.append("newest successful artifact")
    keep = [r for r in ordered if reasons[r.key]]
    delete = [r for r in ordered if not reasons[r.key]]
    return RetentionPlan(keep=keep, delete=delete, reasons={r.key: reasons[r.key] for r in keep})


def protected_artifacts(artifacts: list[ObjectRecord], policy: SitePolicy) -> set[str]:
    """The keys of the artifacts retention keeps whatever their age: pinned ones, the
    ``retention_keep_last`` newest and the newest successful one. No lifecycle expiration
    rule deletes them (``policy.lifecycle_job``). Pure."""
    ordered = _newest_first([r for r in artifacts if r.is_artifact])
    keep_last = policy.retention_keep_last
    newest_successful = next((r for r in ordered if is_successful(r)), None)
    return {
        record.key
        for index, record in enumerate(ordered)
        if record.pinned
        or (keep_last is not None and index < keep_last)
        or record is newest_successful
    }


class RetentionService:
    """Applies retention to sites through ``backend`` (deletes) and ``catalog`` (listing).

    Passes of one site are serialised within this process; concurrent passes in other
    replicas are harmless (deletes are idempotent, each is re-checked just before).
    """

    def __init__(
        self,
        backend: Backend,
        catalog: Catalog,
        policies: PolicyResolver,
        metrics: Metrics | None = None,
    ) -> None:
        self._backend = backend
        self._catalog = catalog
        self._policies = policies
        self._metrics = metrics
        self._locks: dict[str, anyio.Lock] = {}

    async def _artifacts(self, site: str) -> list[ObjectRecord]:
        rows = every_record(
            self._catalog,
            ArtifactFilter(site=site),
            artifacts_only=True,
            sort="created_at",
            descending=True,
        )
        return [record async for record in rows]

    async def apply(
        self,
        site: str,
        *,
        dry_run: bool,
        now: datetime | None = None,
        policy: SitePolicy | None = None,
        request_id: str | None = None,
    ) -> RetentionPlan:
        """Plan retention for ``site``; unless ``dry_run``, delete what the plan drops.

        Each doomed artifact is re-read from the catalog right before its delete and
        skipped if it changed (pinned meanwhile, replaced). A failed delete is logged and
        the pass continues. Returns the plan (with ``dry_run``: what would be deleted).
        ``policy`` previews proposed rules instead of the site's own: it is allowed only
        with ``dry_run`` (ValueError otherwise) and is never stored.
        ``request_id`` is the id of the request that caused the pass (an upload), or of the
        periodic job's pass; the deletes and their log lines carry it.
        """
        if policy is not None and not dry_run:
            raise ValueError("proposed retention rules can only be previewed (dry_run)")
        lock = self._locks.setdefault(site, anyio.Lock())
        async with lock:
            if policy is None:
                policy = await self._policies.for_site(site)
            plan = plan_retention(await self._artifacts(site), policy, now or datetime.now(UTC))
            if dry_run or not plan.delete:
                return plan
            ctx = RequestContext(
                request_id=request_id or f"retention-{uuid.uuid4().hex}",
                principal=RETENTION_PRINCIPAL,
            )
            for record in plan.delete:
                current = await self._catalog.get(site, record.key)
                if current is None or current.pinned or current.created_at != record.created_at:
                    continue
                where = {"request_id": ctx.request_id, "site": site, "key": record.key}
                try:
                    await self._backend.delete_object(ctx, site, record.key)
                except Exception:
                    log.exception("retention: deleting %s/%s failed", site, record.key, extra=where)
                else:
                    log.info("retention: deleted %s/%s", site, record.key, extra=where)
                    if self._metrics is not None:
                        self._metrics.retention_deletions.inc()
            return plan

    async def apply_all(self) -> None:
        """One pass over every site (bucket); a failing site is logged and skipped. The
        pass has its own job id (``retention-sweep-<hex>``), the request id of its lines."""
        job_id = f"retention-sweep-{uuid.uuid4().hex[:16]}"
        ctx = RequestContext(request_id=job_id, principal=RETENTION_PRINCIPAL)
        for bucket in await self._backend.list_buckets(ctx):
            try:
                await self.apply(bucket.name, dry_run=False, request_id=job_id)
            except Exception:
                log.exception(
                    "retention: pass over site %s failed",
                    bucket.name,
                    extra={"request_id": job_id, "site": bucket.name},
                )

    async def run_periodically(self, interval_s: float) -> None:
        """Run :meth:`apply_all` every ``interval_s`` seconds until cancelled (start it in a
        task group from the app's lifespan). A failing pass is logged; the loop goes on."""
        record = self._metrics.job("retention") if self._metrics is not None else None
        await repeat(self.apply_all, interval_s, log, "retention: periodic pass failed", record)


class RetentionBackend(
    ForwardingBackend,
    passes_through=LIFECYCLE
    | READS
    | {"create_bucket", "delete_bucket", "delete_object", "put_bucket_versioning", "delete_version"}
    | {"create_multipart_upload", "upload_part", "abort_multipart_upload"},
):
    """Backend wrapper running ``service.apply(site, dry_run=False)`` after every successful
    artifact put or multipart completion. A retention failure is logged, never fails the
    upload. Every other Backend method passes through."""

    def __init__(self, inner: Backend, service: RetentionService) -> None:
        super().__init__(inner)
        self._service = service

    async def _after_artifact(self, ctx: RequestContext, bucket: str, key: str) -> None:
        if parse_artifact_key(key) is None:
            return
        try:
            await self._service.apply(bucket, dry_run=False, request_id=ctx.request_id)
        except Exception:
            log.exception(
                "retention after the upload of %s/%s failed",
                bucket,
                key,
                extra={"request_id": ctx.request_id},
            )

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        info = await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)
        await self._after_artifact(ctx, bucket, key)
        return info

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        info = await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
        await self._after_artifact(ctx, bucket, key)
        return info
