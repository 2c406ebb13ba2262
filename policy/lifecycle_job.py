"""The ``lifecycle`` background job: sites' lifecycle rules (``policy.lifecycle``) applied.

One pass (:meth:`LifecycleJob.run`) visits every site with stored rules and, for each
Enabled rule:

* ``Expiration`` ``Days`` / ``Date``: deletes every current object whose row in the catalog
  matches the rule's filter (prefix, S3 tags from the catalog, size bounds) and whose
  expiry has come (``Days``: creation plus the days, rounded up to the next midnight UTC,
  as S3 computes it; ``Date``: from that midnight on);
* ``AbortIncompleteMultipartUpload``: aborts the multipart uploads under the rule's prefix
  initiated at least ``DaysAfterInitiation`` days ago (rounded the same way).

Deletes and aborts go through the wrapped Backend stack, so the catalog, quotas and metrics
follow, exactly as for a client's request. Each doomed object is re-read from the catalog
right before its delete and skipped if it changed meanwhile (replaced, pinned).

**Artifacts stay protected by retention.** An artifact (``builds/<id>.tar.gz``) that
retention keeps whatever its age (pinned, one of the ``retention_keep_last`` newest, the
newest successful: :func:`policy.retention.protected_artifacts`) is never deleted by a
lifecycle rule, whatever the rule says. The rule ``pagewright-retention`` (the site's
``retention_days``) is not stored among the rules, so this job never applies it: the
retention job does.

Work is bounded: a pass stops after ``limit`` deletions and aborts in all, leaving the rest
to the next run (they are found again: nothing needs a cursor). ``NoncurrentVersionExpiration``
and ``ExpiredObjectDeleteMarker`` act on versioned buckets' histories
(:meth:`LifecycleJob.apply_version_rules`); on a bucket never versioned there is nothing
for them to do.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from core.context import RequestContext
from core.errors import S3Error
from policy.lifecycle import LifecycleRule, expiry_of, is_expired
from policy.model import ArtifactFilter, Catalog, ObjectRecord, every_record
from policy.policies import PolicyResolver
from policy.retention import protected_artifacts
from translators.base import Backend, UploadsQuery
from translators.versioning import Version, key_histories

log = logging.getLogger("pagewright.lifecycle")

LIFECYCLE_PRINCIPAL: Final = "pagewright-lifecycle"
#: Deletions and aborts per run.
DEFAULT_LIMIT: Final = 1000
_PAGE: Final = 500
_GONE: Final = frozenset({"NoSuchKey", "NoSuchUpload", "NoSuchBucket"})


@dataclass
class LifecyclePass:
    """What one pass did."""

    expired: int = 0
    aborted: int = 0
    protected: int = 0
    versions: int = 0  # noncurrent versions and delete markers removed

    @property
    def actions(self) -> int:
        return self.expired + self.aborted + self.versions


class LifecycleJob:
    """Applies lifecycle rules through ``backend`` (the wrapped stack), reading rules, rows
    and tags from ``catalog`` and retention rules from ``policies``."""

    def __init__(
        self,
        backend: Backend,
        catalog: Catalog,
        policies: PolicyResolver,
        *,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._backend = backend
        self._catalog = catalog
        self._policies = policies
        self._limit = limit
        self._clock = clock

    async def run(self) -> LifecyclePass:
        """One pass over every site with rules (see the module docstring). A failing site is
        logged and skipped."""
        ctx = RequestContext(
            request_id=f"lifecycle-{uuid.uuid4().hex[:16]}", principal=LIFECYCLE_PRINCIPAL
        )
        done = LifecyclePass()
        for site, rules in (await self._catalog.all_bucket_lifecycle()).items():
            enabled = [rule for rule in rules if rule.enabled]
            if not enabled or done.actions >= self._limit:
                continue
            try:
                await self._expire(ctx, site, enabled, done)
                await self._abort_uploads(ctx, site, enabled, done)
                await self.apply_version_rules(ctx, site, enabled, done)
            except S3Error as error:
                if error.code == "NoSuchBucket":
                    continue
                log.exception("lifecycle: pass over site %s failed", site, extra={"site": site})
            except Exception:
                log.exception("lifecycle: pass over site %s failed", site, extra={"site": site})
        if done.actions:
            log.info(
                "lifecycle: %d object(s) expired, %d upload(s) aborted, %d version(s) removed",
                done.expired,
                done.aborted,
                done.versions,
                extra={"request_id": ctx.request_id},
            )
        return done

    async def _expire(
        self, ctx: RequestContext, site: str, rules: Sequence[LifecycleRule], done: LifecyclePass
    ) -> None:
        expiring = [rule for rule in rules if rule.expires_current]
        if not expiring:
            return
        now = self._clock()
        policy = await self._policies.for_site(site)
        artifacts = [
            record
            async for record in every_record(
                self._catalog, ArtifactFilter(site=site), artifacts_only=True
            )
        ]
        protected = protected_artifacts(artifacts, policy)
        async for record in every_record(
            self._catalog, ArtifactFilter(site=site), artifacts_only=False
        ):
            if done.actions >= self._limit:
                return
            if not _due(expiring, record, now):
                continue
            if record.key in protected:
                done.protected += 1
                continue
            if await self._delete(ctx, record):
                done.expired += 1

    async def _delete(self, ctx: RequestContext, record: ObjectRecord) -> bool:
        current = await self._catalog.get(record.site, record.key)
        if (
            current is None
            or current.pinned
            or (current.etag, current.created_at) != (record.etag, record.created_at)
        ):
            return False
        where = {"request_id": ctx.request_id, "site": record.site, "key": record.key}
        try:
            await self._backend.delete_object(ctx, record.site, record.key)
        except S3Error as error:
            if error.code in _GONE:
                return False
            raise
        log.info("lifecycle: expired %s/%s", record.site, record.key, extra=where)
        return True

    async def _abort_uploads(
        self, ctx: RequestContext, site: str, rules: Sequence[LifecycleRule], done: LifecyclePass
    ) -> None:
        now = self._clock()
        for rule in rules:
            days = rule.abort_after_days
            if days is None:
                continue
            query = UploadsQuery(prefix=rule.filter.prefix, max_uploads=_PAGE)
            while done.actions < self._limit:
                page = await self._backend.list_multipart_uploads(ctx, site, query)
                for upload in page.uploads:
                    due = expiry_of(upload.initiated, days)
                    if done.actions >= self._limit or due is None or now < due:
                        continue
                    try:
                        await self._backend.abort_multipart_upload(
                            ctx, site, upload.key, upload.upload_id
                        )
                    except S3Error as error:
                        if error.code not in _GONE:
                            raise
                        continue
                    done.aborted += 1
                    log.info(
                        "lifecycle: aborted an incomplete multipart upload",
                        extra={
                            "request_id": ctx.request_id,
                            "site": site,
                            "key": upload.key,
                            "upload_id": upload.upload_id,
                        },
                    )
                if page.next_key_marker is None:
                    break
                query = replace(
                    query,
                    key_marker=page.next_key_marker,
                    upload_id_marker=page.next_upload_id_marker or "",
                )

    async def apply_version_rules(
        self,
        ctx: RequestContext,
        site: str,
        rules: Sequence[LifecycleRule],
        done: LifecyclePass | None = None,
    ) -> int:
        """The rules on versions, within the pass's ``limit``; how many entries went.

        * ``NoncurrentVersionExpiration``: a noncurrent entry (an older version, or a delete
          marker no longer the latest) goes ``NoncurrentDays`` after it became noncurrent
          (when its successor was written, rounded up to midnight UTC as S3 does), except the
          ``NewerNoncurrentVersions`` newest noncurrent ones of its key, which stay;
        * ``ExpiredObjectDeleteMarker``: a delete marker that is all its key has left goes.

        Versions carry no tags here (tags are the latest object's), so a rule filtering on
        tags never matches one; prefix and size filters apply as to current objects.
        Histories are read with :func:`translators.versioning.key_histories` and entries
        deleted by id through the stack."""
        done = done if done is not None else LifecyclePass()
        before = done.versions
        for rule in rules:
            if rule.noncurrent_expiration is None and not _removes_markers(rule):
                continue
            histories = key_histories(
                self._backend, ctx, site, prefix=rule.filter.prefix, page_size=_PAGE
            )
            async with aclosing(histories):
                async for history in histories:
                    if done.actions >= self._limit:
                        break
                    await self._expire_versions(ctx, site, rule, history, done)
        return done.versions - before

    async def _expire_versions(
        self,
        ctx: RequestContext,
        site: str,
        rule: LifecycleRule,
        history: list[Version],
        done: LifecyclePass,
    ) -> None:
        """Apply ``rule``'s version actions to one key's whole ``history`` (newest first,
        gathered across listing pages)."""
        now = self._clock()
        doomed: list[Version] = []
        noncurrent = rule.noncurrent_expiration
        if noncurrent is not None:
            kept = noncurrent.newer_noncurrent_versions or 0
            older = list(itertools.pairwise(history))
            for index, (newer, entry) in enumerate(e for e in older if not e[1].is_latest):
                size = entry.info.size if entry.info is not None else 0
                if index < kept or not rule.filter.matches(entry.key, size, {}):
                    continue
                due = expiry_of(newer.last_modified, noncurrent.noncurrent_days)
                if due is not None and now >= due:
                    doomed.append(entry)
        if (
            _removes_markers(rule)
            and len(history) == 1
            and history[0].is_latest
            and history[0].is_delete_marker
            and rule.filter.matches(history[0].key, 0, {})
        ):
            doomed.append(history[0])
        for entry in doomed:
            if done.actions >= self._limit:
                return
            try:
                await self._backend.delete_version(ctx, site, entry.key, entry.version_id)
            except S3Error as error:
                if error.code in _GONE or error.code == "AccessDenied":
                    continue  # gone meanwhile, or kept by object lock (policy.object_lock)
                raise
            done.versions += 1
            log.info(
                "lifecycle: expired a %s",
                "delete marker" if entry.is_delete_marker else "noncurrent version",
                extra={
                    "request_id": ctx.request_id,
                    "site": site,
                    "key": entry.key,
                    "version_id": entry.version_id,
                },
            )


def _removes_markers(rule: LifecycleRule) -> bool:
    return bool(rule.expiration and rule.expiration.expired_object_delete_marker)


def _due(rules: Sequence[LifecycleRule], record: ObjectRecord, now: datetime) -> bool:
    return any(
        rule.filter.matches(record.key, record.size, record.tags)
        and is_expired(rule, record.created_at, now)
        for rule in rules
    )
