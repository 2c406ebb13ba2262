"""The object lock a multipart upload asked for at its creation, kept until it completes
(the completed version gets it) or is aborted (policy.object_lock).

Revision ID: 0011_upload_locks
Revises: 0010_object_lock
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_upload_locks"
down_revision: str | None = "0010_object_lock"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "upload_locks",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("upload_id", _byte_text(), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upload_locks")
