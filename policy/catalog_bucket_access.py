"""The catalog's SQL for site access configuration and object ACLs.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Values are validated by the caller (``policy.bucket_access``); here they are
only stored and read back.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, delete, select

from policy.bucket_access import BucketAccess, Grant, PublicAccessBlock
from policy.catalog_database import dialect_insert
from policy.catalog_schema import bucket_access, object_acls


def _grants(rows: list[dict[str, Any]]) -> tuple[Grant, ...]:
    return tuple(Grant(**row) for row in rows)


def read(conn: Connection, site: str) -> tuple[BucketAccess, str | None] | None:
    """The stored configuration of ``site`` and its bucket policy, or None (the defaults)."""
    row = conn.execute(select(bucket_access).where(bucket_access.c.site == site)).first()
    if row is None:
        return None
    block = row.public_access_block
    access = BucketAccess(
        owner=row.owner,
        acl=_grants(row.acl),
        public_access_block=None if block is None else PublicAccessBlock(**block),
        ownership=row.ownership,
    )
    return access, row.policy


def write(conn: Connection, site: str, access: BucketAccess, policy: str | None) -> None:
    """Store ``access`` and ``policy`` (None: no bucket policy) as ``site``'s."""
    block = access.public_access_block
    values = {
        "site": site,
        "owner": access.owner,
        "policy": policy,
        "acl": [asdict(grant) for grant in access.acl],
        "public_access_block": None if block is None else asdict(block),
        "ownership": access.ownership,
    }
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
    return None if row is None else _grants(row[0])


def write_object(conn: Connection, site: str, key: str, acl: tuple[Grant, ...] | None) -> None:
    """Store ``acl`` as the object's; None removes it (the owner-private default)."""
    if acl is None:
        conn.execute(
            delete(object_acls).where(object_acls.c.site == site, object_acls.c.key == key)
        )
        return
    values = {"site": site, "key": key, "acl": [asdict(grant) for grant in acl]}
    statement = dialect_insert(conn)(object_acls).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site", "key"], set_={"acl": statement.excluded.acl}
        )
    )
