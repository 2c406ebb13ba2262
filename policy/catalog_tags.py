"""The catalog's SQL for S3 tags: objects' tag sets (on their rows), buckets' tag sets and
those of multipart uploads in progress.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. Tag sets are validated by the caller (``policy.tags``); here they are only
stored and read back. An object's tags live on its ``objects`` row, so they go with the row:
an upsert (a new object under the key) replaces them, a delete removes them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Connection, RowMapping, delete, select, update

from policy import catalog_records, catalog_versions
from policy import catalog_site_documents as documents
from policy.catalog_database import dialect_insert
from policy.catalog_schema import bucket_tags, objects, upload_tags
from policy.model import ObjectRecord
from policy.tags import TagSet


def upsert_object(conn: Connection, record: ObjectRecord, upload_id: str | None) -> bool:
    """Upsert ``record`` (its tags replace the previous object's); with ``upload_id``, the
    record is that multipart upload's object: it takes the tags the upload asked for, which
    are then forgotten. The row it replaces moves to the key's versions when it names
    another version (:func:`policy.catalog_versions.keep_replaced`). Whether the key's tags
    changed."""
    if upload_id is not None:
        record = replace(record, tags=read_upload(conn, record.site, upload_id))
        remove_upload(conn, record.site, upload_id)
    old = catalog_records.current_row(conn, record.site, record.key)
    before = _tags_of(old)
    record = catalog_versions.promoted(conn, record)
    catalog_versions.keep_replaced(conn, old, record.version_id)
    catalog_records.upsert(conn, record)
    return before != record.tags


def delete_object(conn: Connection, site: str, key: str) -> bool:
    """Delete the row of (site, key) with its tags (the row moves to the key's versions
    when it names a version: :func:`policy.catalog_versions.keep_replaced`); whether it had
    tags."""
    old = catalog_records.current_row(conn, site, key)
    catalog_versions.keep_replaced(conn, old, None)
    if old is not None:
        conn.execute(delete(objects).where(objects.c.site == site, objects.c.key == key))
    return bool(_tags_of(old))


def _tags_of(row: RowMapping | None) -> TagSet:
    return {} if row is None or row["tags"] is None else dict(row["tags"])


def read_object(conn: Connection, site: str, key: str) -> tuple[str, TagSet] | None:
    """(ETag, tags) of the object's row, or None when there is no row."""
    row = conn.execute(
        select(objects.c.etag, objects.c.tags).where(objects.c.site == site, objects.c.key == key)
    ).first()
    return None if row is None else (row[0], dict(row[1] or {}))


def write_object(conn: Connection, site: str, key: str, tags: TagSet) -> TagSet | None:
    """Replace the tags of the object's row ({}: none); its previous tags, or None when
    there is no row (nothing written)."""
    where = (objects.c.site == site, objects.c.key == key)
    row = conn.execute(select(objects.c.tags).where(*where)).first()
    if row is None:
        return None
    conn.execute(update(objects).where(*where).values(tags=tags or None))
    return dict(row[0] or {})


def any_tagged(conn: Connection, site: str) -> bool:
    """Whether any object of ``site`` has tags (one probe of ``ix_objects_site_tagged``)."""
    found = conn.execute(
        select(objects.c.key).where(objects.c.site == site, objects.c.tags.is_not(None)).limit(1)
    ).first()
    return found is not None


def tagged_objects(conn: Connection, site: str) -> list[tuple[str, str, TagSet]]:
    """(key, ETag, tags) of every object of ``site`` that has tags, by key."""
    rows = conn.execute(
        select(objects.c.key, objects.c.etag, objects.c.tags)
        .where(objects.c.site == site, objects.c.tags.is_not(None))
        .order_by(objects.c.key)
    )
    return [(row[0], row[1], dict(row[2])) for row in rows if row[2]]


def read_bucket(conn: Connection, site: str) -> TagSet | None:
    """``site``'s bucket tag set, or None when it has none."""
    tags = documents.read(conn, bucket_tags.c.tags, site)
    return None if tags is None else dict(tags)


def read_all_buckets(conn: Connection) -> dict[str, TagSet]:
    """Every bucket tag set, by site."""
    stored = documents.read_all(conn, bucket_tags.c.tags)
    return {site: dict(tags) for site, tags in stored.items()}


def write_bucket(conn: Connection, site: str, tags: TagSet | None) -> None:
    """Store ``tags`` as ``site``'s bucket tag set; None removes it."""
    documents.write(conn, bucket_tags.c.tags, site, tags)


def write_upload(conn: Connection, site: str, upload_id: str, key: str, tags: TagSet) -> None:
    """Keep the tag set multipart upload ``upload_id`` asked for until it ends."""
    statement = dialect_insert(conn)(upload_tags).values(
        site=site, upload_id=upload_id, key=key, tags=tags, created_at=datetime.now(UTC)
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["site", "upload_id"], set_={"tags": statement.excluded.tags}
        )
    )


def read_upload(conn: Connection, site: str, upload_id: str) -> TagSet:
    """The tag set the upload asked for ({}: none)."""
    row = conn.execute(
        select(upload_tags.c.tags).where(
            upload_tags.c.site == site, upload_tags.c.upload_id == upload_id
        )
    ).first()
    return {} if row is None else dict(row[0])


def remove_upload(conn: Connection, site: str, upload_id: str) -> None:
    conn.execute(
        delete(upload_tags).where(upload_tags.c.site == site, upload_tags.c.upload_id == upload_id)
    )


def remove_site(conn: Connection, site: str) -> None:
    """Forget the bucket tags and the pending upload tags of ``site`` (it was deleted)."""
    conn.execute(delete(bucket_tags).where(bucket_tags.c.site == site))
    conn.execute(delete(upload_tags).where(upload_tags.c.site == site))
