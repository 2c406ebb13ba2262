"""The catalog's object rows: records to rows and back, and keyset-paged listing with cursors.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. A list cursor is opaque to clients (base64 of JSON: the sort, its direction and
the last row's sort values) and is checked when read back: a tampered cursor never reaches
the database as a value it cannot hold.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    RowMapping,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)

from policy.catalog_database import dialect_insert
from policy.catalog_schema import objects
from policy.model import ArtifactFilter, Compression, ObjectRecord, Page, SortField

#: The longest cursor :func:`list_page` reads (it writes a few hundred characters).
MAX_CURSOR_LENGTH = 4096
MAX_LIMIT = 1000
SORTS: tuple[SortField, ...] = ("created_at", "size", "build_id", "key")
_MAX_CURSOR_TEXT = 2048
_INT64_MAX = 2**63 - 1
#: Text no catalog column can hold: a NUL (PostgreSQL) or a lone surrogate (UTF-8).
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


class CursorError(ValueError):
    """A list cursor that is malformed or was issued for another sort order."""


def upsert(conn: Connection, record: ObjectRecord) -> None:
    """Insert or replace the row of (site, key) with ``record``, every field included (its
    tags too: a new object never keeps the tags of the one it replaces)."""
    values = asdict(record)
    values["tags"] = record.tags or None
    conn.execute(_upsert_statement(conn), values)


def current_row(conn: Connection, site: str, key: str) -> RowMapping | None:
    """The ``objects`` row of (site, key) as it is, or None."""
    row = conn.execute(_CURRENT_ROW, {"site": site, "key": key}).first()
    return None if row is None else row._mapping


_CURRENT_ROW = select(objects).where(
    objects.c.site == bindparam("site"), objects.c.key == bindparam("key")
)
_UPSERTS: dict[str, Any] = {}


def _upsert_statement(conn: Connection) -> Any:
    """The dialect's INSERT ... ON CONFLICT (site, key) DO UPDATE of every other column,
    built once: the values go as parameters, so the compiled statement is reused (building
    it with the values inside cost more than running it)."""
    statement = _UPSERTS.get(conn.dialect.name)
    if statement is None:
        insert = dialect_insert(conn)(objects)
        changed = {c.name: insert.excluded[c.name] for c in objects.c if not c.primary_key}
        statement = insert.on_conflict_do_update(index_elements=["site", "key"], set_=changed)
        _UPSERTS[conn.dialect.name] = statement
    return statement


def read(conn: Connection, site: str, key: str) -> ObjectRecord | None:
    """The record of (site, key), or None."""
    row = conn.execute(select(objects).where(objects.c.site == site, objects.c.key == key)).first()
    return None if row is None else record(row)


def sites(conn: Connection) -> list[str]:
    """Every site that has at least one object row, sorted."""
    query = select(objects.c.site).distinct().order_by(objects.c.site)
    return [row[0] for row in conn.execute(query)]


def update_flags(conn: Connection, site: str, key: str, changes: dict[str, Any]) -> ObjectRecord:
    """Set the columns in ``changes`` of (site, key)'s row; the record as it now is.
    KeyError if there is no such row."""
    where = (objects.c.site == site, objects.c.key == key)
    if changes:
        conn.execute(update(objects).where(*where).values(changes))
    row = conn.execute(select(objects).where(*where)).first()
    if row is None:
        raise KeyError((site, key))
    return record(row)


def record(row: Row[Any]) -> ObjectRecord:
    """The :class:`ObjectRecord` of an ``objects`` row."""
    m = row._mapping
    return ObjectRecord(
        site=m["site"],
        key=m["key"],
        size=int(m["size"]),
        etag=m["etag"],
        created_at=m["created_at"],
        creator=m["creator"],
        content_type=m["content_type"],
        build_id=m["build_id"],
        compression=cast("Compression | None", m["compression"]),
        sha256=m["sha256"],
        status=m["status"],
        action=m["action"],
        pinned=bool(m["pinned"]),
        corrupt=bool(m["corrupt"]),
        user_metadata=dict(m["user_metadata"] or {}),
        tags=dict(m["tags"] or {}),
        version_id=m["version_id"],
    )


def list_page(
    conn: Connection,
    query: ArtifactFilter,
    *,
    artifacts_only: bool,
    sort: SortField,
    descending: bool,
    after: list[Any] | None,
    limit: int,
) -> Page:
    """Up to ``limit`` records matching ``query`` strictly after the sort values ``after``
    (from :func:`decode_cursor`), and the cursor of the next page if there is one."""
    columns = _order_columns(sort, artifacts_only)
    conditions = _filter_conditions(query, conn.dialect.name)
    if artifacts_only:
        conditions.append(objects.c.build_id.is_not(None))
    if after is not None:
        conditions.append(_after(columns, after, descending))
    statement = (
        select(objects)
        .where(*conditions)
        .order_by(*(c.desc() if descending else c.asc() for c in columns))
        .limit(limit + 1)
    )
    rows = conn.execute(statement).all()
    items = [record(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = _encode_cursor(sort, descending, items[-1])
    return Page(items, next_cursor)


def decode_cursor(cursor: str, sort: SortField, descending: bool) -> list[Any]:
    """The sort values a cursor of :func:`list_page` carries, each checked to be what that
    sort stores: ``CursorError`` for anything else (a tampered cursor never reaches the
    database as a value it cannot hold: a huge number, a lone surrogate, a NUL)."""
    payload = cursor_payload(cursor, {"s", "d", "v"})
    if payload["s"] != sort or payload["d"] is not descending:
        raise CursorError("the cursor belongs to another sort order")
    values = payload["v"]
    if not isinstance(values, list) or len(values) != len(_order_columns(sort)):
        raise CursorError("malformed cursor")
    if not all(cursor_text(value) for value in values[1:]):
        raise CursorError("malformed cursor")
    first = values[0]
    if sort == "size":
        if type(first) is not int or not 0 <= first <= _INT64_MAX:
            raise CursorError("malformed cursor")
    elif not cursor_text(first):
        raise CursorError("malformed cursor")
    elif sort == "created_at":
        values[0] = cursor_time(first)
    return values


def _filter_conditions(query: ArtifactFilter, dialect: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.site is not None:
        conditions.append(objects.c.site == query.site)
    if query.created_from is not None:
        conditions.append(objects.c.created_at >= query.created_from)
    if query.created_to is not None:
        conditions.append(objects.c.created_at < query.created_to)
    for column, value in (
        (objects.c.status, query.status),
        (objects.c.action, query.action),
        (objects.c.creator, query.creator),
        (objects.c.pinned, query.pinned),
        (objects.c.corrupt, query.corrupt),
    ):
        if value is not None:
            conditions.append(column == value)
    for name, value in sorted(query.metadata.items()):
        conditions.append(objects.c.user_metadata[name].as_string() == value)
    for key, value in sorted(set(query.tags)):
        conditions.append(_has_tag(key, value, dialect))
    return conditions


def _has_tag(key: str, value: str, dialect: str) -> ColumnElement[bool]:
    """The row's tags hold ``key`` with ``value``. SQLite matches a JSON path against keys
    as stored, escapes and all (``json.dumps`` escapes non-ASCII), so there the pairs are
    read with ``json_each``, which decodes them; PostgreSQL's ``->>`` compares decoded keys."""
    if dialect != "sqlite":
        matches: ColumnElement[bool] = objects.c.tags[key].as_string() == value
        return matches
    pairs = func.json_each(objects.c.tags).table_valued("key", "value")
    return exists(select(1).select_from(pairs).where(pairs.c.key == key, pairs.c.value == value))


def _order_columns(sort: SortField, artifacts_only: bool = False) -> list[ColumnElement[Any]]:
    """The ORDER BY columns; artifacts always have a build id, so then the bare column (and
    its index) serves, else ordinary objects sort as an empty build id."""
    if sort == "key":
        return [objects.c.key, objects.c.site]
    build_id = objects.c.build_id if artifacts_only else func.coalesce(objects.c.build_id, "")
    first: ColumnElement[Any] = {
        "created_at": objects.c.created_at,
        "size": objects.c.size,
        "build_id": build_id,
    }[sort]
    return [first, objects.c.site, objects.c.key]


def _after(
    columns: Sequence[ColumnElement[Any]], values: Sequence[Any], descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the lexicographic order of ``columns``."""
    condition: ColumnElement[bool] | None = None
    for column, value in reversed(list(zip(columns, values, strict=True))):
        beyond = column < value if descending else column > value
        condition = beyond if condition is None else or_(beyond, and_(column == value, condition))
    assert condition is not None
    return condition


def _sort_values(sort: SortField, record: ObjectRecord) -> list[Any]:
    if sort == "key":
        return [record.key, record.site]
    first: Any = {
        "created_at": record.created_at.astimezone(UTC).isoformat(),
        "size": record.size,
        "build_id": record.build_id or "",
    }[sort]
    return [first, record.site, record.key]


def _encode_cursor(sort: SortField, descending: bool, last: ObjectRecord) -> str:
    return encode_cursor({"s": sort, "d": descending, "v": _sort_values(sort, last)})


def encode_cursor(payload: dict[str, Any]) -> str:
    """An opaque cursor carrying ``payload`` (base64 of its JSON)."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def cursor_payload(cursor: str, fields: set[str]) -> dict[str, Any]:
    """The payload of an :func:`encode_cursor` cursor, which must have exactly ``fields``;
    ``CursorError`` for anything else (too long, not base64, not JSON, NaN, other fields).
    The caller checks each value."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("malformed cursor")
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        payload = json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as error:
        raise CursorError("malformed cursor") from error
    if not isinstance(payload, dict) or set(payload) != fields:
        raise CursorError("malformed cursor")
    return payload


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def cursor_text(value: Any) -> bool:
    """A site, key or build id as the catalog stores one."""
    return (
        isinstance(value, str)
        and len(value) <= _MAX_CURSOR_TEXT
        and _UNSTORABLE_TEXT.search(value) is None
    )


def cursor_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError(text)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise CursorError("malformed cursor") from error
