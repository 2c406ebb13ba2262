"""The catalog's SQL for sites' CORS configurations (``policy.cors``).

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Rules are checked by the caller; here they are only stored and read back.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from policy.catalog_database import dialect_insert
from policy.catalog_schema import bucket_cors
from policy.cors import CorsRules, rules_from_json, rules_to_json


def read(conn: Connection, site: str) -> CorsRules | None:
    """``site``'s rules, or None when it has no CORS configuration."""
    row = conn.execute(select(bucket_cors.c.rules).where(bucket_cors.c.site == site)).first()
    return None if row is None else rules_from_json(row[0])


def read_all(conn: Connection) -> dict[str, CorsRules]:
    """Every site's rules, by site."""
    rows = conn.execute(select(bucket_cors).order_by(bucket_cors.c.site))
    return {row.site: rules_from_json(row.rules) for row in rows}


def write(conn: Connection, site: str, rules: CorsRules | None) -> None:
    """Store ``rules`` as ``site``'s configuration; None removes it."""
    if rules is None:
        conn.execute(delete(bucket_cors).where(bucket_cors.c.site == site))
        return
    values = {"site": site, "rules": rules_to_json(rules)}
    statement = dialect_insert(conn)(bucket_cors).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site"], set_={"rules": statement.excluded.rules}
        )
    )
