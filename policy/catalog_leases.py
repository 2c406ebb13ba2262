"""The catalog's SQL for reservation owners: process leases and multipart reservations.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. The contract that makes reclaiming safe while other replicas keep working:
a process renews its lease before it takes any reservation, and one ``DELETE`` statement
decides which reservations have no live owner, reading leases and reservations in the
same snapshot. A reservation it can see therefore has its lease visible too, unless that
lease is gone, expired or known dead.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, and_, delete, exists, insert, or_, select, update

from policy.catalog_schema import leases, reservations
from policy.model import Lease, UploadReservation


def renew(
    conn: Connection, lease_id: str, node: str | None, process: str | None, expires: datetime
) -> None:
    """Create the lease ``lease_id`` or extend it until ``expires``."""
    changed = conn.execute(update(leases).where(leases.c.id == lease_id).values(expires_at=expires))
    if changed.rowcount == 0:
        conn.execute(
            insert(leases).values(id=lease_id, node=node, process=process, expires_at=expires)
        )


def drop(conn: Connection, lease_id: str) -> None:
    conn.execute(delete(leases).where(leases.c.id == lease_id))


def read_all(conn: Connection) -> list[Lease]:
    rows = conn.execute(
        select(leases.c.id, leases.c.node, leases.c.process, leases.c.expires_at)
    ).all()
    return [Lease(*row) for row in rows]


def reclaim(conn: Connection, now: datetime, dead: Collection[str]) -> int:
    """Delete single-write reservations without a live lease, then stale leases."""
    live_owner = exists(
        select(leases.c.id).where(
            leases.c.id == reservations.c.lease_id,
            leases.c.expires_at >= now,
            leases.c.id.not_in(list(dead)),
        )
    )
    single_write = reservations.c.upload_id.is_(None)
    dropped = conn.execute(delete(reservations).where(and_(single_write, ~live_owner)))
    conn.execute(delete(leases).where(or_(leases.c.expires_at < now, leases.c.id.in_(list(dead)))))
    return int(dropped.rowcount)


def uploads(conn: Connection) -> list[UploadReservation]:
    rows = conn.execute(
        select(
            reservations.c.id,
            reservations.c.site,
            reservations.c.upload_key,
            reservations.c.upload_id,
        ).where(reservations.c.upload_id.is_not(None), reservations.c.upload_key.is_not(None))
    ).all()
    return [UploadReservation(*row) for row in rows]
