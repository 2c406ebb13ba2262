"""The object lock tables (migration 0010_object_lock): sites' lock configuration and the
locks of versions. Plain SQL over one connection; :class:`policy.object_lock.ObjectLocks`
runs it in the catalog's database."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, delete, insert, select, update

from core.object_lock import BucketLock, DefaultRetention, LockMode, ObjectLock
from policy.catalog_schema import bucket_object_lock, object_locks, upload_locks


def bucket_lock(conn: Connection, site: str) -> BucketLock | None:
    row = conn.execute(select(bucket_object_lock).where(bucket_object_lock.c.site == site)).first()
    if row is None:
        return None
    mode, days, years = row.mode, row.days, row.years
    if mode is None:
        return BucketLock()
    return BucketLock(DefaultRetention(cast("LockMode", mode), days, years))


def set_bucket_lock(conn: Connection, site: str, lock: BucketLock) -> None:
    rule = lock.default
    values = {
        "mode": None if rule is None else rule.mode,
        "days": None if rule is None else rule.days,
        "years": None if rule is None else rule.years,
    }
    found = conn.execute(
        update(bucket_object_lock).where(bucket_object_lock.c.site == site).values(**values)
    )
    if found.rowcount == 0:
        conn.execute(insert(bucket_object_lock).values(site=site, **values))


def version_lock(conn: Connection, site: str, key: str, version_id: str) -> ObjectLock:
    """The lock stored for a version (an empty one when none is)."""
    row = conn.execute(
        select(object_locks).where(
            object_locks.c.site == site,
            object_locks.c.key == key,
            object_locks.c.version_id == version_id,
        )
    ).first()
    if row is None:
        return ObjectLock()
    return ObjectLock(cast("LockMode | None", row.mode), row.retain_until, bool(row.legal_hold))


def set_version_lock(
    conn: Connection, site: str, key: str, version_id: str, lock: ObjectLock
) -> None:
    """Store ``lock`` for the version (an empty one removes the row)."""
    where = (
        object_locks.c.site == site,
        object_locks.c.key == key,
        object_locks.c.version_id == version_id,
    )
    if lock.mode is None and lock.retain_until is None and not lock.legal_hold:
        conn.execute(delete(object_locks).where(*where))
        return
    values = {
        "mode": lock.mode,
        "retain_until": lock.retain_until,
        "legal_hold": bool(lock.legal_hold),
    }
    found = conn.execute(update(object_locks).where(*where).values(**values))
    if found.rowcount == 0:
        conn.execute(
            insert(object_locks).values(site=site, key=key, version_id=version_id, **values)
        )


def remove_site(conn: Connection, site: str) -> None:
    conn.execute(delete(upload_locks).where(upload_locks.c.site == site))
    conn.execute(delete(object_locks).where(object_locks.c.site == site))
    conn.execute(delete(bucket_object_lock).where(bucket_object_lock.c.site == site))


def all_bucket_locks(conn: Connection) -> dict[str, BucketLock]:
    """Every site with object lock enabled, and its configuration (for backups)."""
    rows = conn.execute(select(bucket_object_lock.c.site)).scalars().all()
    found = {site: bucket_lock(conn, site) for site in rows}
    return {site: lock for site, lock in found.items() if lock is not None}


def all_version_locks(conn: Connection) -> list[tuple[str, str, str, ObjectLock]]:
    """Every stored version lock as (site, key, version id, lock) (for backups)."""
    rows = conn.execute(
        select(object_locks).order_by(
            object_locks.c.site, object_locks.c.key, object_locks.c.version_id
        )
    )
    return [
        (
            row.site,
            row.key,
            row.version_id,
            ObjectLock(cast("LockMode | None", row.mode), row.retain_until, bool(row.legal_hold)),
        )
        for row in rows
    ]


def upload_lock(conn: Connection, site: str, upload_id: str) -> ObjectLock | None:
    """The lock multipart upload ``upload_id`` asked for; None: none."""
    row = conn.execute(
        select(upload_locks).where(
            upload_locks.c.site == site, upload_locks.c.upload_id == upload_id
        )
    ).first()
    if row is None:
        return None
    return ObjectLock(cast("LockMode | None", row.mode), row.retain_until, bool(row.legal_hold))


def set_upload_lock(conn: Connection, site: str, upload_id: str, lock: ObjectLock | None) -> None:
    """Keep ``lock`` for the upload (None: forget it)."""
    conn.execute(
        delete(upload_locks).where(
            upload_locks.c.site == site, upload_locks.c.upload_id == upload_id
        )
    )
    if lock is not None:
        conn.execute(
            insert(upload_locks).values(
                site=site,
                upload_id=upload_id,
                mode=lock.mode,
                retain_until=lock.retain_until,
                legal_hold=bool(lock.legal_hold),
            )
        )
