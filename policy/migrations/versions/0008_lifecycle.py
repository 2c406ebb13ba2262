"""Sites' lifecycle configurations (PutBucketLifecycleConfiguration): one row of ordered
rules per site (the artifact retention rule stays the site's ``retention_days`` override).

Revision ID: 0008_lifecycle
Revises: 0007_tagging
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_lifecycle"
down_revision: str | None = "0007_tagging"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bucket_lifecycle",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("rules", _json(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bucket_lifecycle")
