"""Reservation owners: a lease per gateway process, and the multipart upload a reservation
belongs to, so that reservations nobody owns any more can be reclaimed.

Existing reservations: ``upload:<site>:<key>:<upload id>`` rows get their key and upload id
(split at the last colon); every other row belonged to a single write of a process that no
longer holds a lease, and is left ownerless, which reclaiming treats as dead.

Revision ID: 0002_leases
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_leases"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_UPLOAD_PREFIX = "upload:"


def _byte_text() -> Any:
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("node", sa.Text(), nullable=True),
        sa.Column("process", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("lease_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("upload_key", _byte_text(), nullable=True))
        batch.add_column(sa.Column("upload_id", sa.Text(), nullable=True))
        batch.create_index("ix_reservations_lease", ["lease_id"])

    reservations = sa.table(
        "reservations",
        sa.column("id", sa.Text()),
        sa.column("site", sa.Text()),
        sa.column("upload_key", sa.Text()),
        sa.column("upload_id", sa.Text()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(reservations.c.id, reservations.c.site).where(
            reservations.c.id.startswith(_UPLOAD_PREFIX, autoescape=True)
        )
    ).all()
    for reservation_id, site in rows:
        head = f"{_UPLOAD_PREFIX}{site}:"
        key, sep, upload_id = reservation_id[len(head) :].rpartition(":")
        if reservation_id.startswith(head) and sep:
            bind.execute(
                sa.update(reservations)
                .where(reservations.c.id == reservation_id)
                .values(upload_key=key, upload_id=upload_id)
            )


def downgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.drop_index("ix_reservations_lease")
        batch.drop_column("upload_id")
        batch.drop_column("upload_key")
        batch.drop_column("lease_id")
    op.drop_table("leases")
