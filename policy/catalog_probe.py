"""Whether a catalog exists, found out without creating one.

``SqlCatalog.start()`` creates and migrates a catalog wherever its URL points, which is
right for the gateway's first start; commands that only read or add to an existing catalog
(``api-key``, ``verify``) ask here first, so a wrong ``--data-dir`` or ``--config`` is an
error instead of a new, empty catalog.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, make_url
from sqlalchemy.exc import SQLAlchemyError

from policy.catalog_database import normalize_url

#: Alembic's bookkeeping table: present once the catalog's migrations have run.
_VERSION_TABLE = "alembic_version"


class CatalogUnreachable(Exception):
    """The catalog database could not be asked; the message says why."""


def catalog_exists(url: str) -> bool:
    """True when the database at ``url`` holds a catalog: the SQLite file exists, or the
    PostgreSQL schema has been migrated. :class:`CatalogUnreachable` when the URL is unusable
    or the server cannot be reached."""
    try:
        parsed = make_url(normalize_url(url))
        if parsed.get_backend_name() == "sqlite":
            return bool(parsed.database) and Path(str(parsed.database)).is_file()
        engine = create_engine(parsed)
        try:
            with engine.connect() as conn:
                return inspect(conn).has_table(_VERSION_TABLE)
        finally:
            engine.dispose()
    except (SQLAlchemyError, ValueError, ImportError) as error:
        raise CatalogUnreachable(str(error)) from error


def describe(url: str) -> str:
    """Where ``url`` points, for messages: a SQLite path, or the URL without its password."""
    try:
        parsed = make_url(normalize_url(url))
    except (SQLAlchemyError, ValueError):
        return "(an invalid URL)"
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return parsed.render_as_string(hide_password=True)
