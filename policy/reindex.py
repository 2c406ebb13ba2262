"""Rebuild the catalog from a backend, the source of truth.

For each bucket (one, or every bucket the backend lists) :func:`reindex` pages through the
objects with ``list_objects``, reads each one's metadata with ``head_object`` and upserts
its row; rows of objects that no longer exist are deleted, and so are the rows of sites
whose bucket is gone (when reindexing everything).

It is safe while gateways keep serving: a row created after the reindex started is never
deleted (its object may have been written after the listing passed its key), and when an
existing row still describes the same object (same ETag) its catalog-only state (pinned,
corrupt, status, action, tags) is kept. Memory grows with the rows of the largest site.

Catalog-only state the catalog lacks (after a lost catalog, or on a ``migrate`` target) is
restored from each site's state record (:mod:`policy.site_state`): the site's policy
overrides, bucket tags, CORS and lifecycle rules when the catalog has none, the pin, status
and action of every artifact the record lists, and the tags of every object it lists, with
the ETag the backend holds. Keys in the reserved areas (the record, the staging area) are
never indexed. A record that cannot be read is reported and skipped. Object lock (the
site's configuration, from its state record, and each locked version's retention and legal
hold, from its lock record) is :mod:`policy.reindex_locks`'s part.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import anyio

from core.context import RequestContext
from core.errors import S3Error
from core.reserved import is_reserved_key
from policy.catalog import SqlCatalog
from policy.catalog_backend import object_record, stored_creator
from policy.model import ArtifactFilter, Catalog, ObjectRecord, every_record
from policy.policies import PolicyError, validate_overrides
from policy.reindex_locks import LocksRestored, restore_locks
from policy.site_state import SiteState, SiteStateError, load_site_state
from translators.base import Backend, ListQuery, ObjectInfo
from translators.versioning import key_histories

REINDEX_CONTEXT = RequestContext(request_id="reindex", principal="reindex")
_PAGE = 1000
_HEAD_CONCURRENCY = 16


@dataclass
class ReindexReport:
    """What a reindex did. ``vanished`` counts objects deleted while it ran."""

    sites: int = 0
    objects: int = 0
    artifacts: int = 0
    bytes: int = 0
    removed: int = 0
    removed_sites: int = 0
    vanished: int = 0
    restored_artifacts: int = 0
    restored_policies: int = 0
    restored_tags: int = 0
    restored_bucket_tags: int = 0
    unreadable_records: list[str] = field(default_factory=list)
    locks: LocksRestored = field(default_factory=LocksRestored)

    def summary(self) -> str:
        text = (
            f"reindexed {self.sites} site(s): {self.objects} object(s), "
            f"{self.artifacts} artifact(s), {self.bytes} byte(s); removed {self.removed} "
            f"stale row(s) and {self.removed_sites} deleted site(s); "
            f"{self.vanished} object(s) vanished while reading; restored the state of "
            f"{self.restored_artifacts} artifact(s) and the policy of "
            f"{self.restored_policies} site(s) from site records"
        )
        if self.restored_tags or self.restored_bucket_tags:
            text += (
                f"; restored the tags of {self.restored_tags} object(s) and of "
                f"{self.restored_bucket_tags} bucket(s)"
            )
        locks = self.locks
        if locks.configurations or locks.versions or locks.stale_records:
            text += (
                f"; restored object lock on {locks.configurations} site(s) and the lock of "
                f"{locks.versions} version(s), removed {locks.stale_records} stale lock record(s)"
            )
        for problem in self.unreadable_records:
            text += f"\nunreadable site record: {problem}"
        for problem in locks.problems:
            text += f"\nobject lock: {problem}"
        return text


class ReindexProgress(Protocol):
    """Where a reindex reports as it goes (a terminal progress bar, or nothing)."""

    def sites(self, total: int) -> None:
        """``total`` sites are about to be reindexed."""

    def site(self, name: str) -> None:
        """Reindexing of site ``name`` starts (the previous one, if any, is done)."""

    def indexed(self, objects: int, size: int) -> None:
        """``objects`` more objects of ``size`` bytes in all are in the catalog."""


class NoReindexProgress:
    def sites(self, total: int) -> None:
        pass

    def site(self, name: str) -> None:
        pass

    def indexed(self, objects: int, size: int) -> None:
        pass


@runtime_checkable
class _ListsSites(Protocol):
    """A catalog that can name its sites (``SqlCatalog`` can)."""

    async def sites(self) -> list[str]: ...


async def reindex(
    backend: Backend,
    catalog: Catalog,
    *,
    bucket: str | None = None,
    progress: ReindexProgress | None = None,
) -> ReindexReport:
    """Make ``catalog`` describe what ``backend`` holds (in ``bucket``, or everywhere).

    Both must be started. Backend errors (``NoSuchBucket`` for ``bucket`` included)
    propagate; an object deleted between its listing and its HEAD is skipped. ``progress``
    hears of each site and each page of objects as they are done.
    """
    progress = progress or NoReindexProgress()
    started = datetime.now(UTC)
    report = ReindexReport()
    if bucket is not None:
        await backend.head_bucket(REINDEX_CONTEXT, bucket)
        buckets = [bucket]
    else:
        buckets = [b.name for b in await backend.list_buckets(REINDEX_CONTEXT)]
    progress.sites(len(buckets))
    for name in buckets:
        progress.site(name)
        await _reindex_site(backend, catalog, name, started, report, progress)
    report.sites = len(buckets)
    if bucket is None:
        for site in await _catalog_sites(catalog):
            if site not in buckets:
                await catalog.delete_site(site)
                report.removed_sites += 1
    return report


async def _reindex_site(
    backend: Backend,
    catalog: Catalog,
    site: str,
    started: datetime,
    report: ReindexReport,
    progress: ReindexProgress,
) -> None:
    existing = {
        record.key: record
        async for record in every_record(catalog, ArtifactFilter(site=site), artifacts_only=False)
    }
    saved = await _site_record(backend, site, report)
    start_after = ""
    while True:
        page = await backend.list_objects(
            REINDEX_CONTEXT, site, ListQuery(start_after=start_after, max_keys=_PAGE)
        )
        keys = [o.key for o in page.objects if not is_reserved_key(o.key)]
        infos = await _head_all(backend, site, keys)
        objects, size = report.objects, report.bytes
        for key in keys:
            info = infos.get(key)
            if info is None:
                report.vanished += 1
                continue
            found = object_record(site, info, REINDEX_CONTEXT.principal)
            record = _merged(found, existing)
            if record is found:
                record = _restored(found, saved, report)
            existing.pop(key, None)
            await catalog.upsert(record)
            report.objects += 1
            report.bytes += record.size
            report.artifacts += record.is_artifact
        progress.indexed(report.objects - objects, report.bytes - size)
        if page.next_start_after is None:
            break
        start_after = page.next_start_after
    for key, record in existing.items():
        if record.created_at < started:
            await catalog.delete(site, key)
            report.removed += 1
    if saved is not None and saved.bucket_tags and await catalog.bucket_tags(site) is None:
        await catalog.set_bucket_tags(site, saved.bucket_tags)
        report.restored_bucket_tags += 1
    if saved is not None and saved.overrides and not await catalog.site_overrides(site):
        try:
            await catalog.set_site_overrides(site, validate_overrides(saved.overrides))
        except (PolicyError, ValueError) as error:
            report.unreadable_records.append(f"{site}: policy overrides: {error}")
        else:
            report.restored_policies += 1
    if saved is not None and saved.cors is not None and await catalog.bucket_cors(site) is None:
        await catalog.set_bucket_cors(site, saved.cors)
    await _reindex_versions(backend, catalog, site)
    if saved is not None and saved.lifecycle and await catalog.bucket_lifecycle(site) is None:
        await catalog.set_bucket_lifecycle(site, saved.lifecycle)
    if isinstance(catalog, SqlCatalog):  # object lock's tables are SqlCatalog's
        await restore_locks(backend, catalog, site, saved, report.locks)


async def _reindex_versions(backend: Backend, catalog: Catalog, site: str) -> None:
    """A versioned site's state and each key's version rows, from the backend's listing
    (rows kept for versions the catalog knows keep their artifact fields; the others have
    none but the build id their key names); rows of keys with no versions left go."""
    status = await backend.get_bucket_versioning(REINDEX_CONTEXT, site)
    seen: set[str] = set()
    if status is not None:
        await catalog.set_versioning_status(site, status)
        histories = key_histories(backend, REINDEX_CONTEXT, site, page_size=_PAGE)
        async with aclosing(histories) as found:
            async for history in found:
                key = history[0].key
                if not is_reserved_key(key):
                    await catalog.set_versions(site, key, history)
                    seen.add(key)
    await catalog.prune_versions(site, seen)


async def _site_record(backend: Backend, site: str, report: ReindexReport) -> SiteState | None:
    """The site's state record, or None (absent, or unreadable: noted in ``report``)."""
    try:
        return await load_site_state(backend, site)
    except SiteStateError as error:
        report.unreadable_records.append(f"{site}: {error}")
        return None


def _restored(found: ObjectRecord, saved: SiteState | None, report: ReindexReport) -> ObjectRecord:
    """``found`` with the pin, status and action, and the tags, the site record keeps for
    that very object (same ETag), if any."""
    if saved is None:
        return found
    tagged = saved.object_tags.get(found.key)
    if tagged is not None and tagged.etag == found.etag:
        found = replace(found, tags=dict(tagged.tags))
        report.restored_tags += 1
    state = saved.artifacts.get(found.key)
    if state is None or state.etag != found.etag or not found.is_artifact:
        return found
    report.restored_artifacts += 1
    return replace(found, pinned=state.pinned, status=state.status, action=state.action)


def _merged(found: ObjectRecord, existing: dict[str, ObjectRecord]) -> ObjectRecord:
    """``found``, keeping catalog-only state of a row that describes the same object.

    The creator is kept too: the backend only knows it for artifacts (the gateway stores it
    with them).
    """
    old = existing.get(found.key)
    if old is None or old.etag != found.etag:
        return found
    known = stored_creator(found.key, found.user_metadata) is not None
    return replace(
        found,
        creator=found.creator if known else old.creator,
        pinned=old.pinned,
        corrupt=old.corrupt,
        status=old.status,
        action=old.action,
        tags=old.tags,
    )


async def _head_all(backend: Backend, site: str, keys: list[str]) -> dict[str, ObjectInfo]:
    """HEAD every key, a few at a time; keys that vanished are left out."""
    found: dict[str, ObjectInfo] = {}
    limiter = anyio.CapacityLimiter(_HEAD_CONCURRENCY)

    async def head(key: str) -> None:
        async with limiter:
            try:
                found[key] = await backend.head_object(REINDEX_CONTEXT, site, key)
            except S3Error as error:
                if error.code != "NoSuchKey":
                    raise

    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(head, key)
    return found


async def _catalog_sites(catalog: Catalog) -> list[str]:
    """Every site with rows: asked directly when the catalog can, else read from all rows."""
    if isinstance(catalog, _ListsSites):
        return await catalog.sites()
    sites = {
        record.site
        async for record in every_record(catalog, ArtifactFilter(), artifacts_only=False)
    }
    return sorted(sites)
