"""S3 tagging: an object's tag set on its row, bucket tag sets, and the tag sets of
multipart uploads in progress.

Revision ID: 0007_tagging
Revises: 0006_cors
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_tagging"
down_revision: str | None = "0006_cors"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("objects", sa.Column("tags", _json(), nullable=True))
    op.create_index(
        "ix_objects_site_tagged",
        "objects",
        ["site"],
        sqlite_where=sa.text("tags IS NOT NULL"),
        postgresql_where=sa.text("tags IS NOT NULL"),
    )
    op.create_table(
        "bucket_tags",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("tags", _json(), nullable=False),
    )
    op.create_table(
        "upload_tags",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("upload_id", sa.Text(), primary_key=True),
        sa.Column("key", _byte_text(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_objects_site_tagged", table_name="objects")
    op.drop_table("upload_tags")
    op.drop_table("bucket_tags")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("tags")
