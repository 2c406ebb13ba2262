"""The catalog's SQL for tables of one JSON document per site: CORS rules
(``bucket_cors.rules``), bucket tag sets (``bucket_tags.tags``), policy overrides
(``site_policies.overrides``) and lifecycle rules (``bucket_lifecycle.rules``).

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions, each given the document column of a table keyed by ``site`` alone. A site
has a document or none (no row); documents are stored as given and read back as stored,
by site. The modules of each table (:mod:`policy.catalog_cors`, :mod:`policy.catalog_tags`,
:mod:`policy.catalog_overrides`, :mod:`policy.catalog_lifecycle`) turn them into their
values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, delete, select

from policy.catalog_database import dialect_insert


def read(conn: Connection, document: Column[Any], site: str) -> Any | None:
    """``site``'s document, or None when it has none."""
    table = document.table
    row = conn.execute(select(document).where(table.c.site == site)).first()
    return None if row is None else row[0]


def read_all(conn: Connection, document: Column[Any]) -> dict[str, Any]:
    """Every site's document, by site (in site order)."""
    table = document.table
    rows = conn.execute(select(table.c.site, document).order_by(table.c.site))
    return {row[0]: row[1] for row in rows}


def write(conn: Connection, document: Column[Any], site: str, value: Any | None) -> None:
    """Store ``value`` as ``site``'s document, replacing any; None removes it."""
    table = document.table
    if value is None:
        conn.execute(delete(table).where(table.c.site == site))
        return
    statement = dialect_insert(conn)(table).values({"site": site, document.name: value})
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site"], set_={document.name: statement.excluded[document.name]}
        )
    )
