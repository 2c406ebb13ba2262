"""Versioned sites: each site's versioning state as the catalog knows it (for quotas: an
overwrite on a versioned site frees nothing), and the bytes and count of each key's
noncurrent versions (counted in the site's usage).

Revision ID: 0009_versions
Revises: 0008_lifecycle
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_versions"
down_revision: str | None = "0008_lifecycle"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "site_versioning",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "noncurrent_versions",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("key", _byte_text(), primary_key=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("noncurrent_versions")
    op.drop_table("site_versioning")
