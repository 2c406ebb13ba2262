"""The catalog's SQL for usage and quota reservations.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. :func:`reserve` serialises per site: ``pg_advisory_xact_lock`` on the site
(PostgreSQL), the database write lock (SQLite). Committed usage, every reservation and the
new one are summed inside that lock, so concurrent reservations never overshoot.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, delete, func, insert, select, true, update

from policy import catalog_versions
from policy.catalog_database import LOCK_SITE, lock_key
from policy.catalog_schema import objects, reservations
from policy.model import QuotaExceeded, SitePolicy, Usage


def usage(conn: Connection, site: str) -> Usage:
    """Committed objects and bytes of ``site`` (its noncurrent versions' bytes included,
    and also given apart with their count: policy.catalog_versions) plus its reservations.
    ``objects`` and ``artifacts`` count current objects only."""
    committed = (
        select(
            func.coalesce(func.sum(objects.c.size), 0).label("bytes"),
            func.count().label("objects"),
            func.count(objects.c.build_id).label("artifacts"),
        )
        .where(objects.c.site == site)
        .subquery()
    )
    reserved = (
        select(
            func.coalesce(func.sum(reservations.c.bytes), 0).label("reserved_bytes"),
            func.coalesce(func.sum(reservations.c.artifacts), 0).label("reserved_artifacts"),
        )
        .where(reservations.c.site == site)
        .subquery()
    )
    both = committed.join(reserved, true())
    row = conn.execute(select(committed, reserved).select_from(both)).one()._mapping
    values = {name: int(value) for name, value in row.items()}
    size, count = catalog_versions.noncurrent(conn, site)
    values.update(bytes=values["bytes"] + size, noncurrent_bytes=size, noncurrent_versions=count)
    return Usage(**values)


def usage_by_site(conn: Connection) -> dict[str, Usage]:
    """Every site's committed objects and bytes plus its reservations (two grouped reads in
    one transaction); a site with neither is absent."""
    found: dict[str, dict[str, int]] = {}
    committed = select(
        objects.c.site,
        func.coalesce(func.sum(objects.c.size), 0),
        func.count(),
        func.count(objects.c.build_id),
    ).group_by(objects.c.site)
    for site, size, count, artifacts in conn.execute(committed):
        found[site] = {"bytes": int(size), "objects": int(count), "artifacts": int(artifacts)}
    reserved = select(
        reservations.c.site,
        func.coalesce(func.sum(reservations.c.bytes), 0),
        func.coalesce(func.sum(reservations.c.artifacts), 0),
    ).group_by(reservations.c.site)
    for site, size, artifacts in conn.execute(reserved):
        entry = found.setdefault(site, {"bytes": 0, "objects": 0, "artifacts": 0})
        entry["reserved_bytes"] = int(size)
        entry["reserved_artifacts"] = int(artifacts)
    for site, (size, count) in catalog_versions.noncurrent_by_site(conn).items():
        entry = found.setdefault(site, {"bytes": 0, "objects": 0, "artifacts": 0})
        entry.update(bytes=entry["bytes"] + size, noncurrent_bytes=size, noncurrent_versions=count)
    return {site: Usage(**values) for site, values in found.items()}


def reserve(
    conn: Connection,
    *,
    site: str,
    reservation_id: str,
    size: int,
    artifacts: int,
    policy: SitePolicy,
    lease_id: str,
    upload: tuple[str, str] | None,
) -> None:
    """Add ``size`` bytes and ``artifacts`` to reservation ``reservation_id`` of ``site``
    unless that passes ``policy``'s quotas (:class:`QuotaExceeded`, nothing reserved; a
    dimension not grown is not checked). A new reservation belongs to the multipart
    ``upload`` (key, upload id) when given, else to the lease ``lease_id``."""
    if conn.dialect.name == "postgresql":
        lock = func.pg_advisory_xact_lock(lock_key(LOCK_SITE), func.hashtext(site))
        conn.execute(select(lock))
    current = usage(conn, site)
    used_bytes = current.bytes + current.reserved_bytes + size
    used_artifacts = current.artifacts + current.reserved_artifacts + artifacts
    if size and policy.quota_bytes is not None and used_bytes > policy.quota_bytes:
        raise QuotaExceeded("bytes", policy.quota_bytes, current)
    quota_artifacts = policy.quota_artifacts
    if artifacts and quota_artifacts is not None and used_artifacts > quota_artifacts:
        raise QuotaExceeded("artifacts", quota_artifacts, current)
    added = conn.execute(
        update(reservations)
        .where(reservations.c.id == reservation_id)
        .values(
            bytes=reservations.c.bytes + size,
            artifacts=reservations.c.artifacts + artifacts,
        )
    )
    if added.rowcount == 0:
        conn.execute(
            insert(reservations).values(
                id=reservation_id,
                site=site,
                bytes=size,
                artifacts=artifacts,
                created_at=datetime.now(UTC),
                lease_id=None if upload else lease_id,
                upload_key=upload[0] if upload else None,
                upload_id=upload[1] if upload else None,
            )
        )


def release(conn: Connection, reservation_id: str) -> None:
    """Drop a reservation; unknown ids are ignored."""
    conn.execute(delete(reservations).where(reservations.c.id == reservation_id))
