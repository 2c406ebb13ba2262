"""The catalog's view of versioned sites (tables ``site_versioning`` and
``noncurrent_versions``, migration 0009_versions).

The backend is the truth about versions; the catalog keeps what quotas need of it: whether
a site was ever versioned (an overwrite there frees nothing, so a write gets no credit for
the object it replaces: policy.quota) and, per key, the bytes and count of its noncurrent
versions, which count in the site's usage beside its latest objects' rows. The catalog
backend (policy.catalog_backend) sets both after every versioned change of a key, from the
backend's listing of that key's versions.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select, update

from policy.catalog_schema import noncurrent_versions, site_versioning


def status(conn: Connection, site: str) -> str | None:
    """``Enabled`` / ``Suspended``, or None for a site never versioned."""
    return conn.execute(
        select(site_versioning.c.status).where(site_versioning.c.site == site)
    ).scalar()


def set_status(conn: Connection, site: str, value: str) -> None:
    found = conn.execute(
        update(site_versioning).where(site_versioning.c.site == site).values(status=value)
    )
    if found.rowcount == 0:
        conn.execute(insert(site_versioning).values(site=site, status=value))


def set_noncurrent(conn: Connection, site: str, key: str, size: int, count: int) -> None:
    """Record ``count`` noncurrent versions of ``key`` holding ``size`` bytes (none: no row)."""
    where = (noncurrent_versions.c.site == site, noncurrent_versions.c.key == key)
    if count == 0:
        conn.execute(delete(noncurrent_versions).where(*where))
        return
    found = conn.execute(
        update(noncurrent_versions).where(*where).values(bytes=size, versions=count)
    )
    if found.rowcount == 0:
        conn.execute(
            insert(noncurrent_versions).values(site=site, key=key, bytes=size, versions=count)
        )


def noncurrent_bytes(conn: Connection, site: str) -> int:
    """What ``site``'s noncurrent versions hold."""
    total = conn.execute(
        select(func.coalesce(func.sum(noncurrent_versions.c.bytes), 0)).where(
            noncurrent_versions.c.site == site
        )
    ).scalar()
    return int(total or 0)


def noncurrent_bytes_by_site(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(noncurrent_versions.c.site, func.sum(noncurrent_versions.c.bytes)).group_by(
            noncurrent_versions.c.site
        )
    )
    return {site: int(total) for site, total in rows}


def remove_site(conn: Connection, site: str) -> None:
    """Forget ``site``'s versioning and versions: a deleted bucket's go with it, as in S3."""
    conn.execute(delete(noncurrent_versions).where(noncurrent_versions.c.site == site))
    conn.execute(delete(site_versioning).where(site_versioning.c.site == site))
