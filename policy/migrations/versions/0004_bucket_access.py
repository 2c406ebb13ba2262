"""Site access configuration: bucket policy, ACL, public access block, object ownership; and
object ACLs.

Revision ID: 0004_bucket_access
Revises: 0003_identities
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_bucket_access"
down_revision: str | None = "0002_leases"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bucket_access",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("acl", _json(), nullable=False),
        sa.Column("public_access_block", _json(), nullable=True),
        sa.Column("ownership", sa.Text(), nullable=True),
    )
    op.create_table(
        "object_acls",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("key", _byte_text(), primary_key=True),
        sa.Column("acl", _json(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("object_acls")
    op.drop_table("bucket_access")
