"""The catalog's SQL for site policy overrides (configuration kept per site).

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Overrides are validated by the caller; here they are only stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from policy.catalog_database import dialect_insert
from policy.catalog_schema import site_policies


def read(conn: Connection, site: str) -> dict[str, Any]:
    """The stored overrides of ``site`` ({} when none)."""
    row = conn.execute(
        select(site_policies.c.overrides).where(site_policies.c.site == site)
    ).first()
    return {} if row is None else dict(row[0])


def read_all(conn: Connection) -> dict[str, dict[str, Any]]:
    """Every site's stored overrides, by site."""
    query = select(site_policies).order_by(site_policies.c.site)
    return {row.site: dict(row.overrides) for row in conn.execute(query)}


def write(conn: Connection, site: str, overrides: dict[str, Any]) -> None:
    """Replace the overrides of ``site``; {} removes them."""
    if not overrides:
        conn.execute(delete(site_policies).where(site_policies.c.site == site))
        return
    statement = dialect_insert(conn)(site_policies).values(site=site, overrides=dict(overrides))
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site"], set_={"overrides": statement.excluded.overrides}
        )
    )
