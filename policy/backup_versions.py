"""Versioned sites in a catalog backup (:mod:`policy.backup_format`): the rows of
``site_versioning``, ``object_versions`` and ``noncurrent_versions`` (the pre-0012 totals),
one line each, column for column.

Written in primary-key order a batch at a time (memory is bounded by one batch), read back
with every column checked against the table (type, nullability, no negative size) and
restored in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Final

from sqlalchemy import Boolean, Connection, Integer, Table, insert, select, tuple_
from sqlalchemy.types import BigInteger

from core.times import parse_aware
from policy.backup_format import VersionRowEntry, time_text
from policy.catalog import SqlCatalog
from policy.catalog_schema import (
    UtcDateTime,
    noncurrent_versions,
    object_versions,
    site_versioning,
)

#: A line's ``type`` -> the table its row belongs to.
TABLES: Final[dict[str, Table]] = {
    "site_versioning": site_versioning,
    "object_version": object_versions,
    "noncurrent_total": noncurrent_versions,
}
_BATCH: Final = 500


async def write_version_lines(
    catalog: SqlCatalog, line: Callable[[dict[str, Any]], None]
) -> dict[str, int]:
    """Write every row of the versioning tables with ``line``; how many of each kind."""
    counts: dict[str, int] = {}
    for kind, table in TABLES.items():
        counts[kind] = 0
        after: tuple[Any, ...] | None = None
        while True:
            work = partial(_page, table=table, after=after)
            rows: list[dict[str, Any]] = await catalog.database.run(False, work)
            for row in rows:
                line({"type": kind, **_to_json(table, row)})
            counts[kind] += len(rows)
            if len(rows) < _BATCH:
                break
            after = tuple(rows[-1][c.name] for c in table.primary_key.columns)
    return counts


def version_row(kind: str, document: dict[str, Any]) -> VersionRowEntry:
    """The entry of a versioning line; ``TypeError``/``ValueError``/``KeyError`` naming a
    column that the table could not hold."""
    table = TABLES[kind]
    values: dict[str, Any] = {}
    for column in table.columns:
        value = document[column.name]
        if value is None:
            if not column.nullable or column.primary_key:
                raise TypeError(f"{column.name} cannot be null")
        elif isinstance(column.type, Boolean):
            if not isinstance(value, bool):
                raise TypeError(f"{column.name} must be a boolean")
        elif isinstance(column.type, (Integer, BigInteger)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TypeError(f"{column.name} must be a non-negative integer")
        elif isinstance(column.type, UtcDateTime):
            value = parse_aware(value)
        elif not isinstance(value, str):
            raise TypeError(f"{column.name} must be a string")
        values[column.name] = value
    return VersionRowEntry(kind, values)


async def restore_version_rows(catalog: SqlCatalog, entries: Sequence[VersionRowEntry]) -> None:
    """Insert the rows of ``entries`` in one transaction (into an emptied catalog)."""

    def work(conn: Connection) -> None:
        for kind, table in TABLES.items():
            rows = [entry.values for entry in entries if entry.kind == kind]
            if rows:
                conn.execute(insert(table), rows)

    if entries:
        await catalog.database.run(True, work)


def _page(conn: Connection, table: Table, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
    key = list(table.primary_key.columns)
    query = select(table).order_by(*key).limit(_BATCH)
    if after is not None:
        query = query.where(tuple_(*key) > tuple_(*after))
    return [dict(row._mapping) for row in conn.execute(query)]


def _to_json(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: time_text(value) if isinstance(value, datetime) else value
        for name, value in row.items()
        if name in table.columns
    }
