"""Object lock: the sites with object lock enabled and their default retention, and each
locked version's retention and legal hold (the latest version's legal hold is its row's
``pinned``: policy.object_lock).

Revision ID: 0010_object_lock
Revises: 0009_versions
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_object_lock"
down_revision: str | None = "0009_versions"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bucket_object_lock",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("years", sa.Integer(), nullable=True),
    )
    op.create_table(
        "object_locks",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("key", _byte_text(), primary_key=True),
        sa.Column("version_id", _byte_text(), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("object_locks")
    op.drop_table("bucket_object_lock")
