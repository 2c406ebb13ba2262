"""The filesystem translator's SQLite catalogue: schema, connections and row codecs.

One database file holds buckets, objects, multipart uploads and parts; object bytes live in
blob files named by random ids (see :mod:`translators.filesystem.blobs`). Keys are TEXT
compared with SQLite's BINARY collation, i.e. by their UTF-8 bytes, which is S3's listing
order (and, for valid Unicode, Python's ``str`` order too).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.errors import S3Error
from translators.base import ObjectInfo, PartInfo, UploadInfo, WriteConditions, WriteMetadata

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    meta TEXT NOT NULL,
    parts TEXT,
    blob TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated REAL NOT NULL,
    meta TEXT NOT NULL,
    checksum_algorithm TEXT,
    checksum_type TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified REAL NOT NULL,
    checksums TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
"""

OBJECT_COLUMNS: Final = "key, size, etag, modified, meta"


def connect(path: Path, *, writer: bool, synchronous: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) on a WAL database.

    The writer syncs every commit (synchronous=FULL) unless ``synchronous`` is False.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if writer:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous else 'OFF'}")
        conn.executescript(_SCHEMA)
    else:
        conn.execute("PRAGMA query_only = ON")
    return conn


def timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


# Objects


def encode_meta(
    metadata: WriteMetadata, checksums: dict[str, str], checksum_type: ChecksumType | None
) -> str:
    return json.dumps(
        {
            "headers": metadata.headers,
            "user_metadata": metadata.user_metadata,
            "checksums": checksums,
            "checksum_type": checksum_type,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def encode_parts(parts: tuple[PartInfo, ...]) -> str | None:
    if not parts:
        return None
    return json.dumps(
        [[p.part_number, p.size, p.etag, p.checksums] for p in parts], separators=(",", ":")
    )


def object_info(row: tuple[Any, ...], parts_json: str | None = None) -> ObjectInfo:
    """An ObjectInfo from a row of :data:`OBJECT_COLUMNS` (and the ``parts`` column)."""
    key, size, etag, modified, meta_json = row
    meta = json.loads(meta_json)
    parts: tuple[PartInfo, ...] = ()
    if parts_json:
        parts = tuple(
            PartInfo(part_number=n, size=s, etag=e, checksums=c)
            for n, s, e, c in json.loads(parts_json)
        )
    return ObjectInfo(
        key=key,
        size=size,
        etag=etag,
        last_modified=timestamp(modified),
        headers=meta["headers"],
        user_metadata=meta["user_metadata"],
        checksums=meta["checksums"],
        checksum_type=meta["checksum_type"],
        parts=parts,
    )


#: A listing needs no headers or user metadata (S3 listings carry none): only these.
LISTED_COLUMNS: Final = (
    "key, size, etag, modified, json_extract(meta, '$.checksums'), "
    "json_extract(meta, '$.checksum_type')"
)


def listed_info(row: tuple[Any, ...]) -> ObjectInfo:
    """A listing's ObjectInfo from a row of :data:`LISTED_COLUMNS` (no headers/metadata)."""
    key, size, etag, modified, checksums_json, checksum_type = row
    return ObjectInfo(
        key=key,
        size=size,
        etag=etag,
        last_modified=timestamp(modified),
        checksums=json.loads(checksums_json) if checksums_json and checksums_json != "{}" else {},
        checksum_type=checksum_type,
    )


def require_bucket(conn: sqlite3.Connection, bucket: str) -> None:
    """``NoSuchBucket`` unless ``bucket`` exists."""
    if conn.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
        raise S3Error("NoSuchBucket", BucketName=bucket)


def find_object(conn: sqlite3.Connection, bucket: str, key: str) -> tuple[ObjectInfo, str] | None:
    """The current object (with its version id once the bucket was ever versioned, see
    :mod:`translators.filesystem.versions`) and its blob name, or None."""
    row = conn.execute(
        f"SELECT {OBJECT_COLUMNS}, parts, blob, version_id FROM objects"
        " WHERE bucket = ? AND key = ?",
        (bucket, key),
    ).fetchone()
    if row is None:
        return None
    info = object_info(row[:5], row[5])
    return (info if row[7] is None else replace(info, version_id=row[7])), row[6]


def replace_object(
    conn: sqlite3.Connection,
    bucket: str,
    info: ObjectInfo,
    blob: str,
    conditions: WriteConditions,
) -> str | None:
    """Inside a write transaction: check ``conditions`` against the current row, store
    ``info`` with ``blob``, and return the blob the old row referenced (to free after commit)."""
    require_bucket(conn, bucket)
    current = find_object(conn, bucket, info.key)
    try:
        conditions.check(current[0] if current else None)
    except S3Error as error:
        if error.code == "NoSuchKey":
            error.fields["Key"] = info.key
        raise
    conn.execute(
        "INSERT OR REPLACE INTO objects (bucket, key, size, etag, modified, meta, parts, blob)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            bucket,
            info.key,
            info.size,
            info.etag,
            info.last_modified.timestamp(),
            encode_meta(
                WriteMetadata(info.headers, info.user_metadata),
                info.checksums,
                info.checksum_type,
            ),
            encode_parts(info.parts),
            blob,
        ),
    )
    return current[1] if current else None


# Multipart uploads

UPLOAD_COLUMNS: Final = "key, upload_id, initiated, meta, checksum_algorithm, checksum_type"


def upload_info(row: tuple[Any, ...]) -> UploadInfo:
    key, upload_id, initiated, meta_json, algorithm, kind = row
    meta = json.loads(meta_json)
    return UploadInfo(
        key=key,
        upload_id=upload_id,
        initiated=timestamp(initiated),
        metadata=WriteMetadata(meta["headers"], meta["user_metadata"]),
        checksum_algorithm=cast("ChecksumAlgorithm | None", algorithm),
        checksum_type=cast("ChecksumType | None", kind),
    )


def find_upload(conn: sqlite3.Connection, bucket: str, key: str, upload_id: str) -> UploadInfo:
    """The upload ``upload_id`` of ``bucket``/``key``; NoSuchBucket / NoSuchUpload if absent."""
    row = conn.execute(
        f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ? AND bucket = ? AND key = ?",
        (upload_id, bucket, key),
    ).fetchone()
    if row is None:
        require_bucket(conn, bucket)
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    return upload_info(row)


PART_COLUMNS: Final = "part_number, size, etag, modified, checksums"


def part_info(row: tuple[Any, ...]) -> PartInfo:
    number, size, etag, modified, checksums_json = row
    return PartInfo(
        part_number=number,
        size=size,
        etag=etag,
        last_modified=timestamp(modified),
        checksums=json.loads(checksums_json),
    )


def stored_parts(conn: sqlite3.Connection, upload_id: str) -> dict[int, tuple[PartInfo, str]]:
    """Every part of an upload with its blob name, by part number."""
    rows = conn.execute(
        f"SELECT {PART_COLUMNS}, blob FROM parts WHERE upload_id = ? ORDER BY part_number",
        (upload_id,),
    )
    return {row[0]: (part_info(row[:5]), row[5]) for row in rows}


def drop_upload(conn: sqlite3.Connection, upload_id: str) -> list[str]:
    """Inside a write transaction: delete an upload and its parts; return the parts' blobs."""
    blobs = [
        row[0] for row in conn.execute("SELECT blob FROM parts WHERE upload_id = ?", (upload_id,))
    ]
    conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
    conn.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
    return blobs
