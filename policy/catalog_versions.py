"""The catalog's view of versioned sites (tables ``site_versioning``, ``object_versions``,
and the pre-0012 fallback ``noncurrent_versions``; migrations 0009_versions and
0012_object_versions).

The backend is the truth about which versions exist and their sizes; the catalog keeps:

* whether a site was ever versioned (an overwrite there frees nothing, so a write gets no
  credit for the object it replaces: policy.quota);
* one ``object_versions`` row per noncurrent version and per delete marker of each key (the
  current version is the key's ``objects`` row, which carries its ``version_id``). A row
  holds what the backend lists (marker or not, size, ETag, last modified) and what the
  catalog knew of the version while it was current (sha256, build id, compression, status,
  action, creator, content type; NULL when unknown).

How the rows follow the backend (policy.catalog_backend, one listing per versioned change):

1. when a key's ``objects`` row is replaced by another version or deleted, the row it had
   (when it names a version id) moves into ``object_versions`` in the same transaction
   (:func:`keep_replaced`): its artifact fields are not lost when it becomes noncurrent;
2. when a noncurrent version becomes current again (the newer one was deleted by id), its
   row's status, action and creator go back to the ``objects`` row (:func:`promoted`);
3. after the write or delete, :func:`set_versions` makes the key's rows exactly the
   backend's listing of the key: a listed entry whose row exists with the same kind and
   ETag keeps that row's artifact fields (matched by version id); others get a fresh row
   (artifact fields NULL but the build id and compression its key names); rows of entries
   no longer listed go. It also drops the key's ``noncurrent_versions`` total.

``noncurrent_versions`` (before 0012, per key: bytes and count, no version ids) is kept as
a fallback: a key's old total counts in usage until :func:`set_versions` first records the
key (its next versioned write or delete, or ``reindex``), which drops it. So usage stays
right across the upgrade without a reindex.

Usage counts every version row's bytes (delete markers hold none) with the fallback totals.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update

from policy.catalog_schema import noncurrent_versions, object_versions, site_versioning
from policy.model import ObjectRecord, parse_artifact_key
from translators.versioning import Version

_ARTIFACT_FIELDS = (
    "creator",
    "content_type",
    "build_id",
    "compression",
    "sha256",
    "status",
    "action",
)


def status(conn: Connection, site: str) -> str | None:
    """``Enabled`` / ``Suspended``, or None for a site never versioned."""
    return conn.execute(
        select(site_versioning.c.status).where(site_versioning.c.site == site)
    ).scalar()


def set_status(conn: Connection, site: str, value: str) -> None:
    found = conn.execute(
        update(site_versioning).where(site_versioning.c.site == site).values(status=value)
    )
    if found.rowcount == 0:
        conn.execute(insert(site_versioning).values(site=site, status=value))


def keep_replaced(conn: Connection, row: RowMapping | None, new_version_id: str | None) -> None:
    """Before an ``objects`` row (``row``, as read in this transaction; None: there is
    none) is replaced by version ``new_version_id`` (None: the row is deleted), move it into
    ``object_versions`` when it names a version other than the new one: that version is
    about to become noncurrent (or is gone, which the next :func:`set_versions` finds out)."""
    if row is None:
        return
    site, key = row["site"], row["key"]
    version_id = row["version_id"]
    if version_id is None or version_id == new_version_id:
        return
    values: dict[str, Any] = {name: row[name] for name in _ARTIFACT_FIELDS}
    values.update(
        is_delete_marker=False,
        is_latest=False,
        size=row["size"],
        etag=row["etag"],
        last_modified=row["created_at"],
    )
    where = _version_where(site, key, version_id)
    if conn.execute(update(object_versions).where(*where).values(values)).rowcount == 0:
        conn.execute(
            insert(object_versions).values(site=site, key=key, version_id=version_id, **values)
        )


def promoted(conn: Connection, record: ObjectRecord) -> ObjectRecord:
    """``record`` (about to be its key's current row) with the status, action and creator
    its version's row kept, when it is a noncurrent version becoming current again (same
    version id, ETag and time: a newer version was deleted by id): an edit made through the
    artifact API while it was current is not lost. Other records are returned as they are."""
    if record.version_id is None:
        return record
    row = conn.execute(
        select(object_versions.c.status, object_versions.c.action, object_versions.c.creator)
        .where(*_version_where(record.site, record.key, record.version_id))
        .where(
            object_versions.c.is_delete_marker.is_(False),
            object_versions.c.etag == record.etag,
            object_versions.c.last_modified == record.created_at,
        )
    ).first()
    if row is None:
        return record
    status, action, creator = row
    return replace(
        record,
        status=record.status if status is None else status,
        action=record.action if action is None else action,
        creator=creator or record.creator,
    )


def set_versions(conn: Connection, site: str, key: str, history: Sequence[Version]) -> None:
    """Make ``key``'s version rows match ``history`` (the backend's listing of the key,
    newest first), as the module docstring says; drop the key's pre-0012 total."""
    entries = [v for v in history if not (v.is_latest and not v.is_delete_marker)]
    where = (object_versions.c.site == site, object_versions.c.key == key)
    listed_columns = ("is_delete_marker", "is_latest", "size", "etag", "last_modified")
    known = {
        row._mapping["version_id"]: row._mapping
        for row in conn.execute(
            select(
                object_versions.c.version_id,
                *(object_versions.c[name] for name in listed_columns),
            ).where(*where)
        )
    }
    artifact = parse_artifact_key(key)
    for entry in entries:
        listed: dict[str, Any] = {
            "is_delete_marker": entry.is_delete_marker,
            "is_latest": entry.is_latest,
            "size": 0 if entry.info is None else entry.info.size,
            "etag": None if entry.info is None else entry.info.etag,
            "last_modified": entry.last_modified,
        }
        row = known.pop(entry.version_id, None)
        if row is not None and (row["is_delete_marker"], row["etag"]) == (
            listed["is_delete_marker"],
            listed["etag"],
        ):
            if all(row[name] == listed[name] for name in listed_columns):
                continue  # unchanged: a key's older versions usually are
            conn.execute(
                update(object_versions)
                .where(*_version_where(site, key, entry.version_id))
                .values(listed)
            )
            continue
        fresh = dict.fromkeys(_ARTIFACT_FIELDS)
        if artifact is not None and not entry.is_delete_marker:
            fresh.update(build_id=artifact.build_id, compression=artifact.compression)
        if row is not None:  # another entry under that id: what the catalog knew goes
            conn.execute(
                update(object_versions)
                .where(*_version_where(site, key, entry.version_id))
                .values(**listed, **fresh)
            )
            continue
        conn.execute(
            insert(object_versions).values(
                site=site, key=key, version_id=entry.version_id, **listed, **fresh
            )
        )
    if known:
        conn.execute(delete(object_versions).where(*where, object_versions.c.version_id.in_(known)))
    conn.execute(
        delete(noncurrent_versions).where(
            noncurrent_versions.c.site == site, noncurrent_versions.c.key == key
        )
    )


def prune(conn: Connection, site: str, keep: Collection[str]) -> None:
    """Drop the version rows and pre-0012 totals of ``site``'s keys not in ``keep``."""
    for table in (object_versions, noncurrent_versions):
        keys = conn.execute(select(table.c.key).where(table.c.site == site).distinct())
        gone = [key for (key,) in keys if key not in keep]
        for start in range(0, len(gone), 500):
            chunk = gone[start : start + 500]
            conn.execute(delete(table).where(table.c.site == site, table.c.key.in_(chunk)))


def noncurrent(conn: Connection, site: str) -> tuple[int, int]:
    """The bytes and number of ``site``'s noncurrent versions (pre-0012 totals included)."""
    rows = conn.execute(
        select(
            func.coalesce(func.sum(object_versions.c.size), 0),
            func.count().filter(object_versions.c.is_delete_marker.is_(False)),
        ).where(object_versions.c.site == site)
    ).one()
    old = conn.execute(
        select(
            func.coalesce(func.sum(noncurrent_versions.c.bytes), 0),
            func.coalesce(func.sum(noncurrent_versions.c.versions), 0),
        ).where(noncurrent_versions.c.site == site)
    ).one()
    return int(rows[0]) + int(old[0]), int(rows[1]) + int(old[1])


def noncurrent_by_site(conn: Connection) -> dict[str, tuple[int, int]]:
    """:func:`noncurrent` of every site that has noncurrent versions."""
    found: dict[str, tuple[int, int]] = {}
    grouped = select(
        object_versions.c.site,
        func.sum(object_versions.c.size),
        func.count().filter(object_versions.c.is_delete_marker.is_(False)),
    ).group_by(object_versions.c.site)
    old = select(
        noncurrent_versions.c.site,
        func.sum(noncurrent_versions.c.bytes),
        func.sum(noncurrent_versions.c.versions),
    ).group_by(noncurrent_versions.c.site)
    for query in (grouped, old):
        for site, size, count in conn.execute(query):
            before = found.get(site, (0, 0))
            found[site] = (before[0] + int(size), before[1] + int(count))
    return found


def remove_site(conn: Connection, site: str) -> None:
    """Forget ``site``'s versioning and versions: a deleted bucket's go with it, as in S3."""
    conn.execute(delete(object_versions).where(object_versions.c.site == site))
    conn.execute(delete(noncurrent_versions).where(noncurrent_versions.c.site == site))
    conn.execute(delete(site_versioning).where(site_versioning.c.site == site))


def _version_where(site: str, key: str, version_id: str) -> tuple[Any, ...]:
    return (
        object_versions.c.site == site,
        object_versions.c.key == key,
        object_versions.c.version_id == version_id,
    )
