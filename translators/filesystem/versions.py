"""Versioning for the filesystem translator (:class:`translators.versioning.Versioning`).

A bucket's state is a row of ``versioning`` (no row: never enabled). The latest object of a
key stays the row of ``objects`` (its ``version_id`` column set once the bucket was ever
versioned), so reads and listings of latest objects cost what they cost unversioned; every
other entry of the key's history (older versions, delete markers, a delete marker that is
the latest) is a row of ``versions``, newest with the highest ``seq``; a delete marker has
no blob. Every write or delete on a versioned bucket rewrites the key's rows from
:mod:`translators.versioning`'s rules in the one transaction that commits it, and returns
the blobs of the entries dropped, freed after the commit. On a never-versioned bucket writes
and deletes take the unversioned path of :mod:`translators.filesystem.db` unchanged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any, Final, cast

from core.errors import S3Error
from translators import listing, versioning
from translators.base import ObjectInfo, WriteConditions, WriteMetadata
from translators.filesystem import db as fs_db
from translators.versioning import (
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS versioning (
    bucket TEXT PRIMARY KEY,
    status TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    version_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    meta TEXT NOT NULL,
    parts TEXT,
    blob TEXT,
    PRIMARY KEY (bucket, key, seq)
) WITHOUT ROWID;
"""

_ROW: Final = "key, size, etag, modified, meta, parts, blob, version_id"


def migrate(conn: sqlite3.Connection) -> None:
    """Create the versioning tables and the ``objects.version_id`` column if missing."""
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
    if "version_id" not in columns:
        conn.execute("ALTER TABLE objects ADD COLUMN version_id TEXT")


def status(conn: sqlite3.Connection, bucket: str) -> VersioningStatus | None:
    row = conn.execute("SELECT status FROM versioning WHERE bucket = ?", (bucket,)).fetchone()
    return None if row is None else cast("VersioningStatus", row[0])


def set_status(conn: sqlite3.Connection, bucket: str, new: VersioningStatus) -> None:
    """Inside a write transaction: enable or suspend; objects written before versioning was
    first enabled become ``null`` versions."""
    fs_db.require_bucket(conn, bucket)
    if status(conn, bucket) is None:
        conn.execute(
            "UPDATE objects SET version_id = ? WHERE bucket = ? AND version_id IS NULL",
            (versioning.NULL_VERSION, bucket),
        )
    conn.execute("INSERT OR REPLACE INTO versioning VALUES (?, ?)", (bucket, new))


def _entry(row: tuple[Any, ...], position: int) -> tuple[Version, str | None]:
    key, size, etag, modified, meta, parts, blob, version_id = row
    if blob is None:
        return Version(key, version_id, fs_db.timestamp(modified), None, position), None
    info = replace(
        fs_db.object_info((key, size, etag, modified, meta), parts), version_id=version_id
    )
    return Version(key, version_id, info.last_modified, info, position), blob


def history(conn: sqlite3.Connection, bucket: str, key: str) -> list[tuple[Version, str | None]]:
    """``key``'s entries newest first, each with its blob (None for a delete marker)."""
    current = conn.execute(
        f"SELECT {_ROW} FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
    ).fetchall()
    older = conn.execute(
        f"SELECT {_ROW} FROM versions WHERE bucket = ? AND key = ? ORDER BY seq DESC",
        (bucket, key),
    ).fetchall()
    rows = [(*row[:7], row[7] or versioning.NULL_VERSION) for row in current + older]
    return [_entry(row, position) for position, row in enumerate(rows)]


def latest_marker(conn: sqlite3.Connection, bucket: str, key: str) -> Version | None:
    """The delete marker that is ``key``'s latest entry, if it has no latest object."""
    row = conn.execute(
        f"SELECT {_ROW} FROM versions WHERE bucket = ? AND key = ? ORDER BY seq DESC LIMIT 1",
        (bucket, key),
    ).fetchone()
    if row is None or row[6] is not None:
        return None
    return _entry(row, 0)[0]


def _store(
    conn: sqlite3.Connection,
    bucket: str,
    key: str,
    change: versioning.Change,
    blobs: dict[str, str],
) -> list[str]:
    """Rewrite ``key``'s rows as ``change.history``; the blobs of the dropped entries."""
    conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
    conn.execute("DELETE FROM versions WHERE bucket = ? AND key = ?", (bucket, key))
    entries = change.history
    for index, entry in enumerate(entries):
        info, blob = entry.info, blobs.get(entry.version_id)
        values = (
            info.size if info else 0,
            info.etag if info else "",
            entry.last_modified.timestamp(),
            fs_db.encode_meta(
                WriteMetadata(info.headers, info.user_metadata) if info else WriteMetadata(),
                info.checksums if info else {},
                info.checksum_type if info else None,
            ),
            fs_db.encode_parts(info.parts) if info else None,
            blob if info else None,
        )
        if index == 0 and info is not None:
            conn.execute(
                "INSERT INTO objects (bucket, key, size, etag, modified, meta, parts, blob,"
                " version_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bucket, key, *values, entry.version_id),
            )
        else:
            conn.execute(
                "INSERT INTO versions (bucket, key, seq, version_id, size, etag, modified,"
                " meta, parts, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bucket, key, len(entries) - index, entry.version_id, *values),
            )
    return [b for e in change.dropped if e.info and (b := blobs.get(e.version_id))]


def replace_object(
    conn: sqlite3.Connection,
    bucket: str,
    info: ObjectInfo,
    blob: str,
    conditions: WriteConditions,
) -> tuple[ObjectInfo, list[str]]:
    """Inside a write transaction: :func:`translators.filesystem.db.replace_object` on a
    never-versioned bucket, else a new entry of the key's history per its versioning.
    The object as stored (with its version id) and the blobs to free after commit."""
    bucket_status = versioning.status_for(info.key, status(conn, bucket))
    if bucket_status is None:
        old = fs_db.replace_object(conn, bucket, info, blob, conditions)
        return info, [] if old is None else [old]
    fs_db.require_bucket(conn, bucket)
    current = fs_db.find_object(conn, bucket, info.key)
    try:
        conditions.check(current[0] if current else None)
    except S3Error as error:
        if error.code == "NoSuchKey":
            error.fields["Key"] = info.key
        raise
    found = history(conn, bucket, info.key)
    stored = replace(info, version_id=versioning.version_id_for_write(bucket_status))
    assert stored.version_id is not None
    blobs = {v.version_id: b for v, b in found if b is not None} | {stored.version_id: blob}
    new = Version(info.key, stored.version_id, info.last_modified, stored)
    change = versioning.after_write([v for v, _ in found], bucket_status, new)
    return stored, _store(conn, bucket, info.key, change, blobs)


def delete(
    conn: sqlite3.Connection, bucket: str, key: str, version_id: str | None
) -> tuple[DeleteOutcome, list[str]]:
    """Inside a write transaction: delete per the bucket's versioning (see
    :mod:`translators.versioning`); the outcome and the blobs to free after commit."""
    fs_db.require_bucket(conn, bucket)
    bucket_status = versioning.status_for(key, status(conn, bucket))
    if bucket_status is None and version_id is None:
        row = conn.execute(
            "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING blob", (bucket, key)
        ).fetchone()
        return DeleteOutcome(None, False), [row[0]] if row else []
    found = history(conn, bucket, key)
    blobs = {v.version_id: b for v, b in found if b is not None}
    change = versioning.after_delete([v for v, _ in found], bucket_status, key, version_id)
    return change.outcome, _store(conn, bucket, key, change, blobs)


def list_versions(conn: sqlite3.Connection, bucket: str, query: VersionsQuery) -> VersionsPage:
    """A page of every key's history under ``query.prefix`` (see
    :class:`translators.versioning.VersionsQuery`), read in key order from both tables."""
    fs_db.require_bucket(conn, bucket)
    position = versioning.marker_position(
        [v for v, _ in history(conn, bucket, query.key_marker)] if query.key_marker else [],
        query,
    )
    upper = listing.prefix_upper_bound(query.prefix)

    def scan(seek: listing.Seek, wanted: int) -> Any:
        bounds = "key >= ?" + ("" if upper is None else " AND key < ?")
        args: tuple[str, ...] = (max(seek.key, query.prefix),)
        args += () if upper is None else (upper,)
        keys = conn.execute(
            f"SELECT key FROM objects WHERE bucket = ? AND {bounds}"
            f" UNION SELECT key FROM versions WHERE bucket = ? AND {bounds} ORDER BY key",
            (bucket, *args, bucket, *args),
        )
        for (key,) in keys:
            for entry, _ in history(conn, bucket, key):
                info = None if entry.info is None else replace(entry.info, parts=())
                yield key, replace(entry, info=info)

    page = listing.collect_sync(
        versioning.versions_page(query, position), scan, seek_past_prefixes=False
    )
    return versioning.to_versions_page(page)
