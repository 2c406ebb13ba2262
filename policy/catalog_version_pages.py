"""A key's versions as the catalog knows them, newest first, keyset-paged with cursors.

The first entry is the key's latest: its ``objects`` row (the current version; ``null``
when the row names no version id: a site never versioned) or, when the key reads as
deleted, its latest delete marker. The noncurrent versions and the other delete markers
follow (table ``object_versions``, policy.catalog_versions) by last-modified time, newest
first, then by version id. The cursor is opaque (base64 of JSON: the last entry's time and
version id, or ``null`` after the latest entry) and checked when read back, as the
artifact listing's (policy.catalog_records).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from policy.catalog_records import (
    CursorError,
    current_row,
    cursor_payload,
    cursor_text,
    cursor_time,
    encode_cursor,
)
from policy.catalog_schema import object_versions
from policy.model import VersionPage, VersionRecord
from translators.versioning import NULL_VERSION

#: ``after``: None (first page), or ``()`` (after the latest entry), or (time, version id).
After = tuple[Any, ...] | None


def page(conn: Connection, site: str, key: str, after: After, limit: int) -> VersionPage:
    """Up to ``limit`` of ``key``'s versions after ``after`` (from :func:`decode_cursor`)."""
    items: list[VersionRecord] = []
    if after is None:
        latest = _latest(conn, site, key)
        if latest is not None:
            items.append(latest)
    where = [
        object_versions.c.site == site,
        object_versions.c.key == key,
        object_versions.c.is_latest.is_(False),
    ]
    if after:
        moment, version_id = after
        where.append(
            or_(
                object_versions.c.last_modified < moment,
                and_(
                    object_versions.c.last_modified == moment,
                    object_versions.c.version_id < version_id,
                ),
            )
        )
    rows = conn.execute(
        select(object_versions)
        .where(*where)
        .order_by(object_versions.c.last_modified.desc(), object_versions.c.version_id.desc())
        .limit(limit + 1 - len(items))
    ).all()
    items.extend(_version(row._mapping) for row in rows)
    if len(items) <= limit:
        return VersionPage(items, None)
    items = items[:limit]
    last = items[-1]
    value = None if last.is_latest else [last.created_at.isoformat(), last.version_id]
    return VersionPage(items, encode_cursor({"v": value}))


def decode_cursor(cursor: str) -> After:
    """What :func:`page` resumes after; :class:`CursorError` for a malformed cursor."""
    value = cursor_payload(cursor, {"v"})["v"]
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(cursor_text(part) for part in value)
    ):
        raise CursorError("malformed cursor")
    return (cursor_time(value[0]), value[1])


def _latest(conn: Connection, site: str, key: str) -> VersionRecord | None:
    m = current_row(conn, site, key)
    if m is not None:
        return _record(m, m["version_id"] or NULL_VERSION, True, False, m["created_at"])
    marker = conn.execute(
        select(object_versions).where(
            object_versions.c.site == site,
            object_versions.c.key == key,
            object_versions.c.is_latest.is_(True),
        )
    ).first()
    return None if marker is None else _version(marker._mapping)


def _version(m: Any) -> VersionRecord:
    """An ``object_versions`` row's record."""
    latest, marker = bool(m["is_latest"]), bool(m["is_delete_marker"])
    return _record(m, m["version_id"], latest, marker, m["last_modified"])


def _record(
    m: Any, version_id: str, is_latest: bool, is_delete_marker: bool, created_at: datetime
) -> VersionRecord:
    """The record of a version row or of the current ``objects`` row ``m`` (their columns
    shared by name), with what the two tables say differently."""
    return VersionRecord(
        key=m["key"],
        version_id=version_id,
        is_latest=is_latest,
        is_delete_marker=is_delete_marker,
        size=int(m["size"]),
        etag=m["etag"],
        created_at=created_at,
        sha256=m["sha256"],
        build_id=m["build_id"],
        status=m["status"],
        creator=m["creator"],
    )
