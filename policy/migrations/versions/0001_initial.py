"""The initial catalog: objects, reservations, site policies, API keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("key", _byte_text(), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("creator", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("build_id", _byte_text(), nullable=True),
        sa.Column("compression", sa.String(8), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("corrupt", sa.Boolean(), nullable=False),
        sa.Column("user_metadata", _json(), nullable=False),
    )
    op.create_index("ix_objects_site_created", "objects", ["site", "created_at", "key"])
    op.create_index("ix_objects_site_build", "objects", ["site", "build_id", "key"])
    op.create_index("ix_objects_site_size", "objects", ["site", "size", "key"])
    op.create_index("ix_objects_site_status", "objects", ["site", "status"])
    op.create_index("ix_objects_site_action", "objects", ["site", "action"])
    op.create_index("ix_objects_site_creator", "objects", ["site", "creator"])
    op.create_index("ix_objects_created", "objects", ["created_at"])

    op.create_table(
        "reservations",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("site", _byte_text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("artifacts", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
    )
    op.create_index("ix_reservations_site", "reservations", ["site"])

    op.create_table(
        "site_policies",
        sa.Column("site", _byte_text(), primary_key=True),
        sa.Column("overrides", _json(), nullable=False),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_used_at", _timestamp(), nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_principal", "api_keys", ["principal"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("site_policies")
    op.drop_table("reservations")
    op.drop_table("objects")
