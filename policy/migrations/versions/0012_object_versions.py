"""One catalog row per object version: ``object_versions`` holds every noncurrent version
and every delete marker of a versioned site's keys (what the backend lists, and what the
catalog knew of each version while it was current), and ``objects`` gains the current
version's ``version_id``.

The rows of ``noncurrent_versions`` (0009: per key, only the bytes and count of its
noncurrent versions) name no version ids, so no ``object_versions`` row can be made of them.
They stay where they are, as a fallback counted in usage for their key until the catalog
next learns that key's versions: the next versioned write or delete of the key, or a
``reindex`` of its site, writes the key's version rows and drops its old total (see
:mod:`policy.catalog_versions`). Quota bytes stay right throughout; only the artifact fields
of versions that were noncurrent before the upgrade are unknown (NULL), as they were.
Current rows get their ``version_id`` on their next write or reindex; until then the
version such a row describes cannot be matched, so when it is overwritten before a reindex
its row's artifact fields are not kept (its version row is made from the listing, with the
build id only). Running ``reindex`` after the upgrade closes that gap.

The downgrade folds the version rows back into per-key totals of ``noncurrent_versions``
(for keys that have no old total left), then drops the table and the column.

Revision ID: 0012_object_versions
Revises: 0011_upload_locks
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_object_versions"
down_revision: str | None = "0011_upload_locks"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _utc_datetime() -> Any:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("objects", sa.Column("version_id", _byte_text(), nullable=True))
    op.create_table(
        "object_versions",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("key", _byte_text(), primary_key=True),
        sa.Column("version_id", _byte_text(), primary_key=True),
        sa.Column("is_delete_marker", sa.Boolean(), nullable=False),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(80), nullable=True),
        sa.Column("last_modified", _utc_datetime(), nullable=False),
        sa.Column("creator", sa.Text(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("build_id", _byte_text(), nullable=True),
        sa.Column("compression", sa.String(8), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_object_versions_key_modified",
        "object_versions",
        ["site", "key", "last_modified", "version_id"],
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO noncurrent_versions (site, key, bytes, versions) "
        "SELECT site, key, SUM(size), COUNT(*) FROM object_versions v "
        "WHERE NOT is_delete_marker AND NOT EXISTS (SELECT 1 FROM noncurrent_versions n "
        "WHERE n.site = v.site AND n.key = v.key) GROUP BY site, key"
    )
    op.drop_index("ix_object_versions_key_modified", table_name="object_versions")
    op.drop_table("object_versions")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("version_id")
