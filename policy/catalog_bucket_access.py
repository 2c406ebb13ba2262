"""The catalog's SQL for site access configuration and object ACLs.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Values are validated by the caller (``policy.bucket_access``); here they are
only stored and read back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from policy.bucket_access import (
    BucketAccess,
    Grant,
    access_from_json,
    access_to_json,
    grants_from_json,
    grants_to_json,
)
from policy.catalog_database import dialect_insert
from policy.catalog_schema import bucket_access, object_acls


def read(conn: Connection, site: str) -> tuple[BucketAccess, str | None] | None:
    """The stored configuration of ``site`` and its bucket policy, or None (the defaults)."""
    row = conn.execute(select(bucket_access).where(bucket_access.c.site == site)).first()
    return None if row is None else _from_row(row)


def read_all(conn: Connection) -> dict[str, tuple[BucketAccess, str | None]]:
    """Every site's stored configuration and bucket policy, by site."""
    rows = conn.execute(select(bucket_access).order_by(bucket_access.c.site))
    return {row.site: _from_row(row) for row in rows}


def read_all_objects(conn: Connection) -> list[tuple[str, str, tuple[Grant, ...]]]:
    """Every stored object ACL as (site, key, grants)."""
    rows = conn.execute(select(object_acls).order_by(object_acls.c.site, object_acls.c.key))
    return [(row.site, row.key, grants_from_json(row.acl)) for row in rows]


def _from_row(row: Any) -> tuple[BucketAccess, str | None]:
    return access_from_json(row._mapping), row.policy


def write(conn: Connection, site: str, access: BucketAccess, policy: str | None) -> None:
    """Store ``access`` and ``policy`` (None: no bucket policy) as ``site``'s."""
    values = {"site": site, "policy": policy, **access_to_json(access)}
    statement = dialect_insert(conn)(bucket_access).values(values)
    changed = {k: statement.excluded[k] for k in values if k != "site"}
    conn.execute(statement.on_conflict_do_update(index_elements=["site"], set_=changed))


def remove_site(conn: Connection, site: str) -> None:
    """Forget ``site``'s configuration and object ACLs (the site was deleted)."""
    conn.execute(delete(bucket_access).where(bucket_access.c.site == site))
    conn.execute(delete(object_acls).where(object_acls.c.site == site))


def read_object(conn: Connection, site: str, key: str) -> tuple[Grant, ...] | None:
    row = conn.execute(
        select(object_acls.c.acl).where(object_acls.c.site == site, object_acls.c.key == key)
    ).first()
    return None if row is None else grants_from_json(row[0])


def write_object(conn: Connection, site: str, key: str, acl: tuple[Grant, ...] | None) -> None:
    """Store ``acl`` as the object's; None removes it (the owner-private default)."""
    if acl is None:
        conn.execute(
            delete(object_acls).where(object_acls.c.site == site, object_acls.c.key == key)
        )
        return
    values = {"site": site, "key": key, "acl": grants_to_json(acl)}
    statement = dialect_insert(conn)(object_acls).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site", "key"], set_={"acl": statement.excluded.acl}
        )
    )
