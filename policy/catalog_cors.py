"""The catalog's SQL for sites' CORS configurations (``policy.cors``).

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Rules are checked by the caller; here they are only stored and read back.
"""

from __future__ import annotations

from sqlalchemy import Connection

from policy import catalog_site_documents as documents
from policy.catalog_schema import bucket_cors
from policy.cors import CorsRules, rules_from_json, rules_to_json


def read(conn: Connection, site: str) -> CorsRules | None:
    """``site``'s rules, or None when it has no CORS configuration."""
    rules = documents.read(conn, bucket_cors.c.rules, site)
    return None if rules is None else rules_from_json(rules)


def read_all(conn: Connection) -> dict[str, CorsRules]:
    """Every site's rules, by site."""
    stored = documents.read_all(conn, bucket_cors.c.rules)
    return {site: rules_from_json(rules) for site, rules in stored.items()}


def write(conn: Connection, site: str, rules: CorsRules | None) -> None:
    """Store ``rules`` as ``site``'s configuration; None removes it."""
    stored = None if rules is None else rules_to_json(rules)
    documents.write(conn, bucket_cors.c.rules, site, stored)
