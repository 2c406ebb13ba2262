"""The catalog's SQL for sites' lifecycle rules (``policy.lifecycle``).

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Rules are checked by the caller; here they are only stored and read back.
The rule that is the artifact retention window is not among them: it is the site's
``retention_days`` override (``policy.catalog_overrides``), and :func:`replace` writes both
in the caller's one transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from policy import catalog_overrides
from policy import catalog_site_documents as documents
from policy.catalog_schema import bucket_lifecycle
from policy.lifecycle import LifecycleRules, rules_from_json, rules_to_json
from policy.model import SitePolicy


def read(conn: Connection, site: str) -> LifecycleRules | None:
    """``site``'s stored rules, or None when it has none."""
    rules = documents.read(conn, bucket_lifecycle.c.rules, site)
    return None if rules is None else rules_from_json(rules)


def read_all(conn: Connection) -> dict[str, LifecycleRules]:
    """Every site's stored rules, by site."""
    stored = documents.read_all(conn, bucket_lifecycle.c.rules)
    return {site: rules_from_json(rules) for site, rules in stored.items()}


def write(conn: Connection, site: str, rules: LifecycleRules | None) -> None:
    """Store ``rules`` as ``site``'s rules; None (or none) removes them."""
    documents.write(conn, bucket_lifecycle.c.rules, site, rules_to_json(rules) if rules else None)


def replace(
    conn: Connection, site: str, rules: LifecycleRules | None, retention_days: int | None
) -> dict[str, Any]:
    """Store ``rules`` and set (None: clear) the ``retention_days`` override of ``site``;
    the overrides as they now are."""
    overrides = dict(catalog_overrides.read(conn, site))
    if retention_days is None:
        overrides.pop("retention_days", None)
    else:
        overrides["retention_days"] = retention_days
    SitePolicy().merged(overrides)
    catalog_overrides.write(conn, site, overrides)
    write(conn, site, rules)
    return overrides
