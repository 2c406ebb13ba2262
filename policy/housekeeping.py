"""Housekeeping passes run as background jobs (policy.jobs), and the standard job set.

Each pass does bounded work per run: it walks listings page by page and stops after
``limit`` removals, leaving the rest to the next run.

* :func:`abort_abandoned_uploads`: multipart uploads initiated before a cutoff, in every
  bucket, aborted through the wrapped stack (so their quota reservations are released and
  staged artifact uploads are aborted under their client ids).
* :func:`sweep_leftovers`: hidden staging objects a crash left between a multipart
  artifact's completion and the staging object's deletion (policy.validation), then the
  translator's own leftovers when it can sweep them (:class:`translators.base.Sweeper`:
  the filesystem, GCS, S3 and Azure translators; the in-memory one keeps none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from core.context import RequestContext
from core.errors import S3Error
from core.reserved import STAGING_PREFIX
from policy.jobs import Job
from policy.leases import LeaseKeeper
from policy.lifecycle_job import LifecycleJob
from policy.retention import RetentionService
from policy.scrub import Scrubber
from translators.base import Backend, ListQuery, Sweeper, UploadsQuery

log = logging.getLogger("pagewright.housekeeping")

_CTX: Final = RequestContext(request_id="housekeeping", principal="pagewright")
#: Removals per run of a sweep or of the abandoned-upload pass.
DEFAULT_LIMIT: Final = 1000
#: Listing page size.
PAGE_SIZE: Final = 500
#: Leftovers younger than this are left alone: their write may still be running.
LEFTOVER_AGE: Final = timedelta(hours=6)
_GONE: Final = frozenset({"NoSuchUpload", "NoSuchBucket"})


async def abort_abandoned_uploads(
    backend: Backend, older_than: timedelta, limit: int = DEFAULT_LIMIT, page_size: int = PAGE_SIZE
) -> int:
    """Abort the multipart uploads of every bucket initiated more than ``older_than`` ago,
    at most ``limit`` of them; how many were aborted."""
    cutoff = datetime.now(UTC) - older_than
    aborted = 0
    for bucket in await backend.list_buckets(_CTX):
        query = UploadsQuery(max_uploads=page_size)
        while aborted < limit:
            try:
                page = await backend.list_multipart_uploads(_CTX, bucket.name, query)
            except S3Error as error:
                if error.code != "NoSuchBucket":
                    raise
                break
            for upload in page.uploads:
                if aborted >= limit or upload.initiated >= cutoff:
                    continue
                try:
                    await backend.abort_multipart_upload(
                        _CTX, bucket.name, upload.key, upload.upload_id
                    )
                except S3Error as error:
                    if error.code not in _GONE:
                        raise
                    continue
                aborted += 1
                log.info(
                    "aborted an abandoned multipart upload",
                    extra={"site": bucket.name, "key": upload.key, "upload_id": upload.upload_id},
                )
            if page.next_key_marker is None:
                break
            query = replace(
                query,
                key_marker=page.next_key_marker,
                upload_id_marker=page.next_upload_id_marker or "",
            )
    return aborted


async def sweep_leftovers(
    translator: Backend,
    older_than: timedelta = LEFTOVER_AGE,
    limit: int = DEFAULT_LIMIT,
    page_size: int = PAGE_SIZE,
) -> int:
    """Delete staging objects last modified more than ``older_than`` ago in every bucket of
    the bare ``translator``, then sweep its own leftovers as old (if it can); at most
    ``limit`` removals in all. How many were removed."""
    cutoff = datetime.now(UTC) - older_than
    removed = 0
    for bucket in await translator.list_buckets(_CTX):
        query = ListQuery(prefix=STAGING_PREFIX, max_keys=page_size)
        while removed < limit:
            try:
                page = await translator.list_objects(_CTX, bucket.name, query)
            except S3Error as error:
                if error.code != "NoSuchBucket":
                    raise
                break
            for info in page.objects:
                if removed < limit and info.last_modified < cutoff:
                    await translator.delete_object(_CTX, bucket.name, info.key)
                    removed += 1
            if page.next_start_after is None:
                break
            query = replace(query, start_after=page.next_start_after)
    if removed < limit and isinstance(translator, Sweeper):
        removed += await translator.sweep(cutoff, limit - removed)
    if removed:
        log.info("swept %d leftovers of interrupted writes", removed)
    return removed


@dataclass(frozen=True)
class JobSettings:
    """How often each standard job runs, in seconds (0: off), and the age at which a
    multipart upload counts as abandoned."""

    retention_s: float = 3600.0
    scrub_s: float = 0.0
    reclaim_reservations_s: float = 30.0
    sweep_staging_s: float = 3600.0
    abort_abandoned_uploads_s: float = 3600.0
    abandoned_upload_s: float = 7 * 86400.0
    lifecycle_s: float = 3600.0


def standard_jobs(
    settings: JobSettings,
    *,
    backend: Backend,
    translator: Backend,
    retention: RetentionService,
    scrubber: Scrubber,
    leases: LeaseKeeper,
    lifecycle: LifecycleJob | None = None,
) -> list[Job]:
    """The gateway's jobs: ``retention``, ``scrub``, ``reclaim-reservations``,
    ``sweep-staging``, ``abort-abandoned-uploads`` and (given ``lifecycle``) ``lifecycle``,
    which applies sites' lifecycle rules (policy.lifecycle_job). ``backend`` is the wrapped
    stack, ``translator`` the bare translator under it."""
    abandoned = timedelta(seconds=settings.abandoned_upload_s)

    async def abort_uploads() -> int:
        return await abort_abandoned_uploads(backend, abandoned)

    async def sweep() -> int:
        return await sweep_leftovers(translator)

    jobs = [
        Job("retention", settings.retention_s, retention.apply_all),
        Job("scrub", settings.scrub_s, scrubber.scrub_all),
        Job("reclaim-reservations", settings.reclaim_reservations_s, leases.reclaim_all),
        Job("sweep-staging", settings.sweep_staging_s, sweep),
        Job("abort-abandoned-uploads", settings.abort_abandoned_uploads_s, abort_uploads),
    ]
    if lifecycle is not None:
        jobs.append(Job("lifecycle", settings.lifecycle_s, lifecycle.run))
    return jobs
