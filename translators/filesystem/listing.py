"""Listings over the filesystem translator's catalogue, by indexed range queries.

Keys under a prefix are the range ``[prefix, prefix_upper_bound(prefix))``; the listing
engine (:mod:`translators.listing`) restarts the scan past each common prefix instead of
reading its keys, so a listing costs one query per common prefix plus one per batch of keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any, Final

from translators import listing
from translators.base import ListPage, ListQuery, ObjectInfo, UploadInfo, UploadsPage, UploadsQuery
from translators.filesystem import db as fs_db
from translators.listing import Seek

_BATCH: Final = 1000


def _rows(
    conn: sqlite3.Connection,
    select: str,
    order: tuple[str, ...],
    bucket: str,
    prefix: str,
    seek: Seek,
    wanted: int,
) -> Iterator[Any]:
    """Rows of ``select`` (whose first columns are ``order``, ``key`` first) in ``bucket``
    under ``prefix`` from ``seek`` on, read in batches."""
    upper = listing.prefix_upper_bound(prefix)
    where = ["bucket = ?", "key >= ?" if seek.inclusive else "key > ?"]
    params: list[Any] = [bucket, seek.key]
    if upper is not None:
        where.append("key < ?")
        params.append(upper)
    resume: list[Any] = []
    limit = min(_BATCH, wanted)
    columns = ", ".join(order)
    while True:
        clause = " AND ".join(where)
        if resume:
            clause += f" AND ({columns}) > ({', '.join('?' * len(order))})"
        rows = conn.execute(
            f"{select} WHERE {clause} ORDER BY {columns} LIMIT ?", [*params, *resume, limit]
        ).fetchall()
        yield from rows
        if len(rows) < limit:
            return
        resume, limit = list(rows[-1][: len(order)]), _BATCH


def list_objects(conn: sqlite3.Connection, bucket: str, query: ListQuery) -> ListPage:
    """One page of ``bucket`` exactly as :class:`ListQuery` describes it."""
    fs_db.require_bucket(conn, bucket)
    sql = f"SELECT {fs_db.LISTED_COLUMNS} FROM objects"

    def scan(seek: Seek, wanted: int) -> Iterator[tuple[str, ObjectInfo | None]]:
        for row in _rows(conn, sql, ("key",), bucket, query.prefix, seek, wanted):
            yield row[0], fs_db.listed_info(row)

    page = listing.collect_sync(listing.objects_page(query), scan, seek_past_prefixes=True)
    return listing.list_page(page)


def list_uploads(conn: sqlite3.Connection, bucket: str, query: UploadsQuery) -> UploadsPage:
    """Pending uploads sorted by key, then by initiation (upload ids sort by initiation);
    see :func:`translators.listing.uploads_page` for the markers."""
    fs_db.require_bucket(conn, bucket)
    sql = f"SELECT {fs_db.UPLOAD_COLUMNS} FROM uploads"

    def scan(seek: Seek, wanted: int) -> Iterator[tuple[str, UploadInfo | None]]:
        for row in _rows(conn, sql, ("key", "upload_id"), bucket, query.prefix, seek, wanted):
            yield row[0], fs_db.upload_info(row)

    page = listing.collect_sync(listing.uploads_page(query), scan, seek_past_prefixes=True)
    return listing.to_uploads_page(page)
