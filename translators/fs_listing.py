"""Listings over the filesystem translator's catalogue, by indexed range queries.

Keys under a prefix are the range ``[prefix, prefix_upper_bound(prefix))``; when a key rolls
up into a common prefix the scan seeks past that prefix's range instead of reading its keys,
so a listing costs one query per common prefix plus one per page of keys.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from translators import fs_db
from translators.base import ListPage, ListQuery, ObjectInfo, UploadInfo, UploadsPage, UploadsQuery

_BATCH: Final = 1000


class _Cursor:
    """A position in a key range: keys after ``after`` (or from ``at``), below ``upper``."""

    def __init__(self, prefix: str, start_after: str, delimiter: str) -> None:
        self.upper = fs_db.prefix_upper_bound(prefix)
        self.bound = start_after
        self.inclusive = False
        if delimiter and start_after.startswith(prefix):
            rest = start_after[len(prefix) :]
            cut = rest.find(delimiter)
            if cut >= 0 and cut + len(delimiter) == len(rest):
                self.skip_prefix(start_after)
        if prefix > self.bound:
            self.bound, self.inclusive = prefix, True
        self.done = False

    def skip_prefix(self, prefix: str) -> None:
        upper = fs_db.prefix_upper_bound(prefix)
        if upper is None:
            self.done = True
        else:
            self.bound, self.inclusive = upper, True

    def after(self, key: str) -> None:
        self.bound, self.inclusive = key, False

    def where(self) -> tuple[str, list[Any]]:
        clause = "key >= ?" if self.inclusive else "key > ?"
        params: list[Any] = [self.bound]
        if self.upper is not None:
            clause += " AND key < ?"
            params.append(self.upper)
        return clause, params


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


def list_objects(conn: sqlite3.Connection, bucket: str, query: ListQuery) -> ListPage:
    """One page of ``bucket`` exactly as :class:`ListQuery` describes it."""
    fs_db.require_bucket(conn, bucket)
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    if query.max_keys <= 0:
        return ListPage(objects, prefixes, None)
    cursor = _Cursor(query.prefix, query.start_after, query.delimiter)
    last = ""
    while not cursor.done and len(objects) + len(prefixes) < query.max_keys:
        clause, params = cursor.where()
        limit = min(_BATCH, query.max_keys - len(objects) - len(prefixes))
        rows = conn.execute(
            f"SELECT {fs_db.LISTED_COLUMNS} FROM objects WHERE bucket = ? AND {clause}"
            " ORDER BY key LIMIT ?",
            [bucket, *params, limit],
        ).fetchall()
        if not rows:
            cursor.done = True
            break
        for row in rows:
            key: str = row[0]
            common = _common_prefix(key, query.prefix, query.delimiter)
            if common is None:
                objects.append(fs_db.listed_info(row))
                cursor.after(key)
                last = key
            else:
                prefixes.append(common)
                cursor.skip_prefix(common)
                last = common
                break
        else:
            if len(rows) < limit:
                cursor.done = True
    if cursor.done:
        return ListPage(objects, prefixes, None)
    clause, params = cursor.where()
    more = conn.execute(
        f"SELECT 1 FROM objects WHERE bucket = ? AND {clause} LIMIT 1", [bucket, *params]
    ).fetchone()
    return ListPage(objects, prefixes, last if more else None)


def list_uploads(conn: sqlite3.Connection, bucket: str, query: UploadsQuery) -> UploadsPage:
    """Pending uploads sorted by key, then by initiation (upload ids sort by initiation).

    ``key_marker`` alone resumes after every upload of that key; with ``upload_id_marker``
    it resumes after that upload of that key. Common prefixes count toward ``max_uploads``.
    """
    fs_db.require_bucket(conn, bucket)
    uploads: list[UploadInfo] = []
    prefixes: list[str] = []
    if query.max_uploads <= 0:
        return UploadsPage(uploads, prefixes, None, None)
    cursor = _Cursor(query.prefix, query.key_marker, query.delimiter)
    # Resuming inside one key's uploads: that key again (later ids only), then later keys.
    same_key = query.key_marker
    id_after = query.upload_id_marker if same_key and not cursor.inclusive else ""
    if id_after:
        cursor.inclusive = True
    last: tuple[str, str | None] = ("", None)
    wanted = query.max_uploads

    def fetch(limit: int) -> list[Any]:
        clause, params = cursor.where()
        sql = f"SELECT {fs_db.UPLOAD_COLUMNS} FROM uploads WHERE bucket = ? AND {clause}"
        args: list[Any] = [bucket, *params]
        if id_after:
            sql += " AND (key > ? OR upload_id > ?)"
            args += [same_key, id_after]
        return conn.execute(sql + " ORDER BY key, upload_id LIMIT ?", [*args, limit]).fetchall()

    while not cursor.done and len(uploads) + len(prefixes) < wanted:
        limit = min(_BATCH, wanted - len(uploads) - len(prefixes))
        rows = fetch(limit)
        if not rows:
            cursor.done = True
            break
        for row in rows:
            key: str = row[0]
            common = _common_prefix(key, query.prefix, query.delimiter)
            if common is None:
                uploads.append(fs_db.upload_info(row))
                cursor.bound, cursor.inclusive = key, True
                same_key, id_after, last = key, row[1], (key, row[1])
            else:
                prefixes.append(common)
                cursor.skip_prefix(common)
                id_after, last = "", (common, None)
                break
        else:
            if len(rows) < limit:
                cursor.done = True
    if cursor.done or not fetch(1):
        return UploadsPage(uploads, prefixes, None, None)
    return UploadsPage(uploads, prefixes, last[0], last[1])
