"""``reindex``'s part for object lock: a site's lock configuration and its versions' locks,
restored from what the backend holds.

The configuration comes from the site's state record (``policy.site_state``), the versions'
locks from their lock records (``policy.lock_records``), both read through the translator.
Only what the catalog lacks is restored (the catalog is the live state when it has it): a
version's retention and noncurrent legal hold when it has no ``object_locks`` row, and the
latest version's legal hold as its row's pin (never taken off). A record whose version is
gone is deleted; one that cannot be read is reported and kept. When records exist but the
site record holds no configuration (it was lost or unreadable), object lock is enabled
without a default retention, so the recorded versions are protected. The configuration is
restored only on a bucket that keeps versions (object lock needs them): ``migrate`` copies
the records like any object, but only the latest objects, under new version ids, so on a
migrated store the records name versions that are gone and ``reindex`` reports that object
lock was not restored.

It is safe while gateways serve: records are listed before versions, so a version written
meanwhile has a record this pass never saw; a record whose version the listing did not show
is deleted only once asking for that version says it is gone.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field, replace

from core.context import RequestContext
from core.errors import S3Error
from core.object_lock import BucketLock
from policy.catalog import SqlCatalog
from policy.lock_records import LockRecord, LockRecords
from policy.object_lock import ObjectLocks
from policy.site_state import SiteState
from translators.base import Backend
from translators.versioning import key_histories

_CONTEXT = RequestContext(request_id="reindex", principal="reindex")
_BATCH = 1000


@dataclass
class LocksRestored:
    """What restoring one or more sites' locks did."""

    configurations: int = 0
    versions: int = 0
    stale_records: int = 0
    problems: list[str] = field(default_factory=list)  # unreadable records, and the like


async def restore_locks(
    backend: Backend,
    catalog: SqlCatalog,
    site: str,
    saved: SiteState | None,
    done: LocksRestored,
) -> None:
    """Restore ``site``'s object lock configuration (from ``saved``, its state record) and
    its versions' locks (from their records in ``backend``) into ``catalog``."""
    locks = ObjectLocks(catalog)  # rows only: the records they come from are in place
    records = LockRecords(backend)
    wanted: dict[str, dict[str, tuple[str, LockRecord]]] = {}
    batch: list[str] = []
    async for name in records.names(site):
        batch.append(name)
        if len(batch) >= _BATCH:
            await _read(records, site, batch, wanted, done)
            batch = []
    await _read(records, site, batch, wanted, done)
    status = await backend.get_bucket_versioning(_CONTEXT, site)
    configured = saved.object_lock if saved is not None else None
    if (configured is not None or wanted) and await locks.configuration(site) is None:
        if status != "Enabled":  # object lock needs versions (migrate copies latest objects)
            done.problems.append(
                f"{site}: object lock not restored: the bucket does not keep versions"
            )
        elif configured is not None:
            await locks.set_bucket(site, configured)
            done.configurations += 1
        else:  # records without a configuration (no site record): lock, with no default
            await locks.set_bucket(site, BucketLock())
            done.configurations += 1
            done.problems.append(
                f"{site}: object lock enabled from its versions' lock records; its default "
                "retention was not in the site record"
            )
    if status is None:  # never versioned: no version a record names can be here
        for stale in wanted.values():
            for name, _ in stale.values():
                await _drop(records, site, name, done)
        return
    if not wanted:
        return
    async with aclosing(key_histories(backend, _CONTEXT, site, page_size=_BATCH)) as found:
        async for history in found:
            versions = wanted.get(history[0].key)
            if versions is None:
                continue
            for version in history:
                entry = versions.pop(version.version_id, None)
                if entry is not None and version.info is not None:
                    await _restore(
                        catalog, locks, site, entry[1], latest=version.position == 0, done=done
                    )
            if not versions:
                del wanted[history[0].key]
    for versions in wanted.values():
        for name, record in versions.values():
            await _settle_unlisted(backend, catalog, locks, records, site, name, record, done)


async def _read(
    records: LockRecords,
    site: str,
    names: list[str],
    wanted: dict[str, dict[str, tuple[str, LockRecord]]],
    done: LocksRestored,
) -> None:
    for name, found in sorted((await records.read_many(site, names)).items()):
        if isinstance(found, LockRecord):
            wanted.setdefault(found.key, {})[found.version_id] = (name, found)
        else:
            done.problems.append(f"{site}: lock record {name}: {found}")


async def _settle_unlisted(
    backend: Backend,
    catalog: SqlCatalog,
    locks: ObjectLocks,
    records: LockRecords,
    site: str,
    name: str,
    record: LockRecord,
    done: LocksRestored,
) -> None:
    """A record whose version the listing did not show: restore it if the version exists
    after all (written meanwhile), else delete the record."""
    try:
        version = await backend.head_version(_CONTEXT, site, record.key, record.version_id)
    except S3Error as error:
        if error.code not in ("NoSuchVersion", "NoSuchKey"):
            raise
        await _drop(records, site, name, done)
        return
    if version.info is None:  # a delete marker holds no lock
        await _drop(records, site, name, done)
        return
    try:
        latest = await backend.head_object(_CONTEXT, site, record.key)
    except S3Error as error:
        if error.code != "NoSuchKey":
            raise
        is_latest = False
    else:
        is_latest = latest.version_id == record.version_id
    await _restore(catalog, locks, site, record, latest=is_latest, done=done)


async def _drop(records: LockRecords, site: str, name: str, done: LocksRestored) -> None:
    """Delete the record stored at ``name``: the version it names is gone."""
    await records.remove_stored(site, name)
    done.stale_records += 1


async def _restore(
    catalog: SqlCatalog,
    locks: ObjectLocks,
    site: str,
    record: LockRecord,
    *,
    latest: bool,
    done: LocksRestored,
) -> None:
    """Give the version its recorded lock where the catalog has none of it."""
    lock = record.lock
    hold_in_row = bool(lock.legal_hold) and not latest
    changed = False
    if lock.legal_hold and latest:
        row = await catalog.get(site, record.key)
        if row is None:
            hold_in_row = True  # no catalog row to pin: the hold stays with the version
        elif not row.pinned:
            await catalog.update(site, record.key, pinned=True)
            changed = True
    stored = await locks.stored(site, record.key, record.version_id)
    unlocked = stored.mode is None and not stored.legal_hold
    if unlocked and (lock.mode is not None or hold_in_row):
        await locks.store(
            site, record.key, record.version_id, replace(lock, legal_hold=hold_in_row)
        )
        changed = True
    done.versions += changed
