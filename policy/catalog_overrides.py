"""The catalog's SQL for site policy overrides (configuration kept per site).

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Overrides are validated by the caller; here they are only stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from policy import catalog_site_documents as documents
from policy.catalog_schema import site_policies


def read(conn: Connection, site: str) -> dict[str, Any]:
    """The stored overrides of ``site`` ({} when none)."""
    overrides = documents.read(conn, site_policies.c.overrides, site)
    return {} if overrides is None else dict(overrides)


def read_all(conn: Connection) -> dict[str, dict[str, Any]]:
    """Every site's stored overrides, by site."""
    stored = documents.read_all(conn, site_policies.c.overrides)
    return {site: dict(overrides) for site, overrides in stored.items()}


def write(conn: Connection, site: str, overrides: dict[str, Any]) -> None:
    """Replace the overrides of ``site``; {} removes them."""
    documents.write(conn, site_policies.c.overrides, site, dict(overrides) or None)
