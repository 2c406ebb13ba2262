"""Identities: IAM users, their access keys (secrets sealed) and inline policies, site role
grants; API keys may expire.

Revision ID: 0003_identities
Revises: 0002_leases
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_identities"
down_revision: str | None = "0002_leases"
branch_labels: str | None = None
depends_on: str | None = None


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def _user_name(constraint: str, *, primary_key: bool = False) -> sa.Column[Any]:
    return sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("users.name", ondelete="CASCADE", name=constraint),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", name="uq_users_user_id"),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        _user_name("fk_access_keys_user"),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_access_keys_user", "access_keys", ["user_name"])
    op.create_table(
        "user_policies",
        _user_name("fk_user_policies_user", primary_key=True),
        sa.Column("policy_name", sa.String(128), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_table(
        "site_grants",
        sa.Column("site", _byte_text(), primary_key=True),
        _user_name("fk_site_grants_user", primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_site_grants_user", "site_grants", ["user_name"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
    op.drop_index("ix_site_grants_user", "site_grants")
    op.drop_table("site_grants")
    op.drop_table("user_policies")
    op.drop_index("ix_access_keys_user", "access_keys")
    op.drop_table("access_keys")
    op.drop_table("users")
