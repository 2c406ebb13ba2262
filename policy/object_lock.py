"""Object lock: sites' lock configuration, versions' locks, and the wrapper enforcing them.

**State.** A site with object lock enabled has a row of ``bucket_object_lock`` with its
default retention (``policy.catalog_object_locks``); it must be versioned, and stays so
(versioning can no longer be suspended). A version's retention (mode, retain-until date)
and, for versions that are no longer the latest, its legal hold are rows of
``object_locks``. **The latest version's legal hold is its artifact pin**: the catalog
row's ``pinned`` flag, so pinning through the artifact API and ``PutObjectLegalHold`` are
one state, seen by both. When a write or a delete marker makes a pinned latest version
noncurrent, its hold moves to its ``object_locks`` row; when deleting the latest version
makes an older one the latest again, that one's hold moves back to the row's pin.

**Records.** So that a lost catalog and ``reindex`` keep them, every change of a version's
lock is also written to its lock record in the site's bucket (``policy.lock_records``, with
its failure rule: a lock that could not be recorded answers 503), and the site's
configuration goes in its state record (``policy.site_state``; :meth:`ObjectLocks.set_bucket`
tells the catalog's state listeners). Sites without object lock never reach either.

**Enforcement** (:class:`ObjectLockBackend`, on every delete path: S3 requests, DeleteObjects,
lifecycle and retention go through it). On a site with object lock, deleting a version by
id is ``AccessDenied`` while it has a legal hold, or a retention whose date has not come:
``COMPLIANCE`` for everyone, ``GOVERNANCE`` unless the request context says the principal
may bypass it (``RequestContext.bypass_governance``, set by the handler after checking
``s3:BypassGovernanceRetention``). Deletes without a version id add delete markers, and
overwrites add versions, so neither is ever refused; a new version gets the lock its write
asked for (``WriteMetadata.object_lock``) or the site's default retention.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.object_lock import BucketLock, ObjectLock
from core.streams import PayloadStream
from policy import catalog_object_locks as sql
from policy.access_control import STALE_IF_ERROR_S, TtlCache
from policy.catalog import SqlCatalog
from policy.forwarding import LIFECYCLE, READS, ForwardingBackend
from policy.lock_records import LockRecords
from translators.base import (
    Backend,
    CompletedPart,
    ObjectInfo,
    UploadInfo,
    WriteConditions,
    WriteMetadata,
)
from translators.versioning import NULL_VERSION, DeleteOutcome, VersioningStatus


def locked_error(why: str) -> S3Error:
    return S3Error("AccessDenied", f"Access Denied because object protected by object lock: {why}.")


def missing_configuration() -> S3Error:
    return S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")


class ObjectLocks:
    """Sites' object lock configuration (cached briefly, as CORS rules are) and versions'
    locks, in ``catalog``'s database, each version's also in its lock record in ``records``
    (None: none kept, as for tools that only read)."""

    def __init__(
        self,
        catalog: SqlCatalog,
        *,
        records: LockRecords | None = None,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._database = catalog.database
        self.records = records
        self._buckets: TtlCache[BucketLock | None] = TtlCache(
            cache_seconds, clock, STALE_IF_ERROR_S
        )

    async def bucket(self, site: str) -> BucketLock | None:
        """``site``'s lock configuration; None: object lock is not enabled there."""
        return await self._buckets.get(
            site, lambda: self._database.run(False, partial(sql.bucket_lock, site=site))
        )

    async def configuration(self, site: str) -> BucketLock | None:
        """:meth:`bucket` read from the database now, not cached (for the site record)."""
        return await self._database.run(False, partial(sql.bucket_lock, site=site))

    async def set_bucket(self, site: str, lock: BucketLock) -> None:
        """Enable object lock on ``site`` / change its default; the catalog's state listeners
        hear of it (the site record keeps the configuration)."""
        await self._database.run(True, partial(sql.set_bucket_lock, site=site, lock=lock))
        self._buckets.forget(site)
        await self._catalog.state_changed(site)

    async def all_buckets(self) -> dict[str, BucketLock]:
        return await self._database.run(False, sql.all_bucket_locks)

    async def all_versions(self) -> list[tuple[str, str, str, ObjectLock]]:
        return await self._database.run(False, sql.all_version_locks)

    async def forget_site(self, site: str) -> None:
        """The site is deleted: its configuration and locks go."""
        await self._database.run(True, partial(sql.remove_site, site=site))
        self._buckets.forget(site)

    async def upload(self, site: str, upload_id: str) -> ObjectLock | None:
        """The lock multipart upload ``upload_id`` asked for at its creation."""
        return await self._database.run(
            False, partial(sql.upload_lock, site=site, upload_id=upload_id)
        )

    async def keep_upload(self, site: str, upload_id: str, lock: ObjectLock | None) -> None:
        """Keep (None: forget) the lock of an upload until it completes or is aborted."""
        await self._database.run(
            True, partial(sql.set_upload_lock, site=site, upload_id=upload_id, lock=lock)
        )

    async def pinned(self, site: str, key: str) -> bool:
        """Whether ``key``'s latest version has a legal hold (its row's pin)."""
        row = await self._catalog.get(site, key)
        return row is not None and row.pinned

    async def stored(self, site: str, key: str, version_id: str) -> ObjectLock:
        return await self._database.run(
            False, partial(sql.version_lock, site=site, key=key, version_id=version_id)
        )

    async def store(
        self,
        site: str,
        key: str,
        version_id: str,
        lock: ObjectLock,
        *,
        whole: ObjectLock | None = None,
    ) -> None:
        """Store the version's ``object_locks`` row (an empty ``lock`` removes it), then its
        record: ``whole``, its whole lock when the row's legal hold is not it (the latest
        version's hold is its pin), else ``lock``. 503 when the record fails."""
        await self._database.run(
            True,
            partial(sql.set_version_lock, site=site, key=key, version_id=version_id, lock=lock),
        )
        if self.records is not None:
            await self.records.write(site, key, version_id, lock if whole is None else whole)

    async def forget_version(self, site: str, key: str, version_id: str, recorded: bool) -> None:
        """The version is deleted: its row goes, and its record when it may have one
        (``recorded``; a failure to remove it is only logged)."""
        await self._database.run(
            True,
            partial(
                sql.set_version_lock, site=site, key=key, version_id=version_id, lock=ObjectLock()
            ),
        )
        if self.records is not None and recorded:
            await self.records.forget(site, key, version_id)

    async def set_retention(
        self,
        backend: Backend,
        ctx: RequestContext,
        site: str,
        key: str,
        version_id: str,
        retention: ObjectLock,
    ) -> None:
        """Set (an empty ``retention``: clear) a version's retention, checked by the caller,
        keeping its legal hold."""
        stored = await self.stored(site, key, version_id)
        whole = await self.lock_of(backend, ctx, site, key, version_id)
        await self.store(
            site,
            key,
            version_id,
            replace(retention, legal_hold=stored.legal_hold),
            whole=replace(retention, legal_hold=whole.legal_hold),
        )

    async def lock_of(
        self,
        backend: Backend,
        ctx: RequestContext,
        site: str,
        key: str,
        version_id: str,
        *,
        latest: bool | None = None,
    ) -> ObjectLock:
        """Version ``version_id``'s whole lock: its retention, and its legal hold (the row's
        pin when it is the latest version). ``latest``: whether it is, when the caller knows
        (None: asked of ``backend``)."""
        stored = await self.stored(site, key, version_id)
        if latest is None:
            latest = await _latest_id(backend, ctx, site, key) == version_id
        if not latest:
            return replace(stored, legal_hold=bool(stored.legal_hold))
        return replace(stored, legal_hold=await self.pinned(site, key))

    async def set_legal_hold(
        self,
        backend: Backend,
        ctx: RequestContext,
        site: str,
        key: str,
        version_id: str,
        on: bool,
    ) -> None:
        """Put a legal hold on or off: the row's pin for the latest version, else the
        version's ``object_locks`` row."""
        stored = await self.stored(site, key, version_id)
        whole = replace(stored, legal_hold=on)
        if await _latest_id(backend, ctx, site, key) == version_id:
            try:
                await self._catalog.update(site, key, pinned=on)
            except KeyError:
                pass  # no row (a reserved or unindexed object): keep it with the version
            else:
                if stored.legal_hold:
                    row = replace(stored, legal_hold=False)
                    await self.store(site, key, version_id, row, whole=whole)
                elif self.records is not None:
                    await self.records.write(site, key, version_id, whole)
                return
        await self.store(site, key, version_id, whole)

    async def pin_latest(
        self, backend: Backend, ctx: RequestContext, site: str, key: str, on: bool
    ) -> bool:
        """The artifact API's pin on a site with object lock: the legal hold of ``key``'s
        latest version, recorded as PutObjectLegalHold's is. False (nothing done): the site
        has no object lock, or ``key`` no latest version."""
        if await self.bucket(site) is None:
            return False
        latest = await _latest_id(backend, ctx, site, key)
        if latest is None:
            return False
        await self.set_legal_hold(backend, ctx, site, key, latest, on)
        return True


async def _latest_id(backend: Backend, ctx: RequestContext, site: str, key: str) -> str | None:
    """The version id of ``key``'s latest object (``null`` unversioned); None: none."""
    try:
        info = await backend.head_object(ctx, site, key)
    except S3Error as error:
        if error.code == "NoSuchKey":
            return None
        raise
    return info.version_id or NULL_VERSION


def check_deletable(lock: ObjectLock, ctx: RequestContext, now: datetime) -> None:
    """``AccessDenied`` unless a version with ``lock`` may be deleted by ``ctx``."""
    if lock.legal_hold:
        raise locked_error("it has a legal hold")
    if lock.retained(now):
        if lock.mode == "COMPLIANCE":
            raise locked_error("COMPLIANCE retention")
        if not ctx.bypass_governance:
            raise locked_error("GOVERNANCE retention")


class ObjectLockBackend(
    ForwardingBackend,
    passes_through=LIFECYCLE | READS | {"list_buckets", "create_bucket", "upload_part"},
):
    """``inner`` with object lock applied (see the module docstring). It sits outside the
    catalog backend, whose row (the pin) it reads and keeps in step."""

    def __init__(self, inner: Backend, locks: ObjectLocks) -> None:
        super().__init__(inner)
        self.locks = locks

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        await self.inner.delete_bucket(ctx, bucket)
        await self.locks.forget_site(bucket)

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        if status != "Enabled" and await self.locks.bucket(bucket) is not None:
            raise S3Error(
                "InvalidBucketState",
                "An Object Lock configuration is present on this bucket, so the versioning "
                "state cannot be changed.",
            )
        await self.inner.put_bucket_versioning(ctx, bucket, status)

    # Writes: a new version gets its lock; a pinned latest version going noncurrent keeps
    # its hold.

    async def _requested(self, bucket: str, metadata: WriteMetadata) -> ObjectLock | None:
        """The lock a write's new version gets (None: none); ``InvalidRequest`` for lock
        headers on a site without object lock."""
        config = await self.locks.bucket(bucket)
        asked = metadata.object_lock
        if config is None:
            if asked is not None:
                raise missing_configuration()
            return None
        if asked is not None and (asked.mode is not None or asked.legal_hold):
            return asked
        if config.default is not None:
            return config.default.lock_from(datetime.now(UTC))
        return asked

    async def _keep_hold(self, ctx: RequestContext, bucket: str, key: str) -> str | None:
        """Before a write on a site with object lock: the version id of a pinned latest
        version (whose hold must outlive it being the latest), else None."""
        if await self.locks.bucket(bucket) is None:
            return None
        if not await self.locks.pinned(bucket, key):
            return None
        return await _latest_id(self.inner, ctx, bucket, key)

    async def _written(
        self,
        ctx: RequestContext,
        bucket: str,
        info: ObjectInfo,
        lock: ObjectLock | None,
        held: str | None,
    ) -> None:
        if held is not None and held != info.version_id:
            stored = await self.locks.stored(bucket, info.key, held)
            await self.locks.store(bucket, info.key, held, replace(stored, legal_hold=True))
        if lock is None or info.version_id is None:
            return
        retention = replace(lock, legal_hold=None)
        if retention.mode is not None:
            await self.locks.store(bucket, info.key, info.version_id, retention)
        if lock.legal_hold:
            await self.locks.set_legal_hold(
                self.inner, ctx, bucket, info.key, info.version_id, True
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
        lock = await self._requested(bucket, metadata)
        held = await self._keep_hold(ctx, bucket, key)
        plain = replace(metadata, object_lock=None)
        info = await self.inner.put_object(ctx, bucket, key, body, plain, conditions)
        await self._written(ctx, bucket, info, lock, held)
        return info

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Start an upload; the lock it asks for (``InvalidRequest`` on a site without object
        lock) is kept until it completes, when the new version gets it."""
        asked = metadata.object_lock
        if asked is not None and await self.locks.bucket(bucket) is None:
            raise missing_configuration()
        upload = await self.inner.create_multipart_upload(
            ctx, bucket, key, replace(metadata, object_lock=None), checksum_algorithm, checksum_type
        )
        if asked is not None:
            try:
                await self.locks.keep_upload(bucket, upload.upload_id, asked)
            except BaseException:
                await self.inner.abort_multipart_upload(ctx, bucket, key, upload.upload_id)
                raise
        return upload

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Complete; the new version gets the lock its upload asked for, else the site's
        default retention."""
        asked = (
            await self.locks.upload(bucket, upload_id) if await self.locks.bucket(bucket) else None
        )
        lock = await self._requested(bucket, WriteMetadata(object_lock=asked))
        held = await self._keep_hold(ctx, bucket, key)
        info = await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
        await self._written(ctx, bucket, info, lock, held)
        if asked is not None:
            await self.locks.keep_upload(bucket, upload_id, None)
        return info

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        if await self.locks.bucket(bucket) is not None:
            await self.locks.keep_upload(bucket, upload_id, None)

    # Deletes

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        await self.delete_version(ctx, bucket, key, None)

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        """Refuse deleting a locked version by id; keep holds where they belong."""
        if await self.locks.bucket(bucket) is None:
            return await self.inner.delete_version(ctx, bucket, key, version_id)
        if version_id is None:
            held = await self._keep_hold(ctx, bucket, key)
            outcome = await self.inner.delete_version(ctx, bucket, key, None)
            if held is not None:
                stored = await self.locks.stored(bucket, key, held)
                await self.locks.store(bucket, key, held, replace(stored, legal_hold=True))
            return outcome
        latest = await _latest_id(self.inner, ctx, bucket, key)
        lock = await self.locks.lock_of(
            self.inner, ctx, bucket, key, version_id, latest=latest == version_id
        )
        check_deletable(lock, ctx, datetime.now(UTC))
        outcome = await self.inner.delete_version(ctx, bucket, key, version_id)
        recorded = lock.mode is not None or bool(lock.legal_hold)
        await self.locks.forget_version(bucket, key, version_id, recorded)
        if latest == version_id:
            promoted = await _latest_id(self.inner, ctx, bucket, key)
            if promoted is not None:
                stored = await self.locks.stored(bucket, key, promoted)
                if stored.legal_hold:
                    await self.locks.set_legal_hold(self.inner, ctx, bucket, key, promoted, True)
        return outcome
