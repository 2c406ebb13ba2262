"""The catalog's API keys: secrets, their ids, and the SQL that stores only their hashes.

Functions on one open connection, run inside :class:`policy.catalog.SqlCatalog`'s
transactions. A secret reads ``pwg_<id>_<random>``; the catalog keeps its SHA-256, never
the secret. A key with an ``expires_at`` in the past authenticates no one (it stays listed
until revoked).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, delete, insert, or_, select, update

from policy.catalog_database import dialect_insert
from policy.catalog_schema import api_keys

_API_KEY_PREFIX = "pwg"


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: its id, owner, the SHA-256 of its secret and its times (what
    a catalog backup carries; the secret itself is never stored anywhere)."""

    id: str
    principal: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key without its secret (the catalog keeps only its SHA-256)."""

    id: str
    principal: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = None


def api_key_id(secret: str) -> str | None:
    """The id embedded in an API key secret (``pwg_<id>_<random>``), or None if malformed."""
    prefix, sep, rest = secret.partition("_")
    key_id, sep2, _ = rest.partition("_")
    if prefix != _API_KEY_PREFIX or not sep or not sep2 or not key_id:
        return None
    return key_id


def new_key(principal: str, expires_at: datetime | None = None) -> tuple[str, ApiKeyRecord]:
    """A fresh secret for ``principal`` and the record that stores it (by its hash)."""
    key_id = secrets.token_hex(8)
    secret = f"{_API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(
        key_id, principal, hash_secret(secret), datetime.now(UTC), None, expires_at
    )
    return secret, record


def _live(key_hash: str) -> tuple[ColumnElement[bool], ...]:
    """The key with ``key_hash``, unless it has expired."""
    now = datetime.now(UTC)
    return (
        api_keys.c.key_hash == key_hash,
        or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
    )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def insert_key(conn: Connection, record: ApiKeyRecord) -> None:
    conn.execute(insert(api_keys).values(asdict(record)))


def record_use(conn: Connection, key_hash: str) -> str | None:
    """The principal of the live key with ``key_hash`` (its use recorded now), or None."""
    row = conn.execute(
        update(api_keys)
        .where(*_live(key_hash))
        .values(last_used_at=datetime.now(UTC))
        .returning(api_keys.c.principal)
    ).first()
    return None if row is None else str(row[0])


def principal(conn: Connection, key_hash: str) -> str | None:
    """The principal of the live key with ``key_hash``, or None; reads only."""
    row = conn.execute(select(api_keys.c.principal).where(*_live(key_hash))).first()
    return None if row is None else str(row[0])


def revoke(conn: Connection, key_id: str) -> bool:
    """Delete the key ``key_id``; False if there was none."""
    return conn.execute(delete(api_keys).where(api_keys.c.id == key_id)).rowcount > 0


def infos(conn: Connection, principal: str | None) -> list[ApiKeyInfo]:
    """Keys (without secrets), of one principal or all, oldest first."""
    statement = select(
        api_keys.c.id,
        api_keys.c.principal,
        api_keys.c.created_at,
        api_keys.c.last_used_at,
        api_keys.c.expires_at,
    ).order_by(api_keys.c.created_at, api_keys.c.id)
    if principal is not None:
        statement = statement.where(api_keys.c.principal == principal)
    return [ApiKeyInfo(*row) for row in conn.execute(statement)]


def records(conn: Connection) -> list[ApiKeyRecord]:
    """Every key as stored (hashes, never secrets), oldest first."""
    query = select(
        api_keys.c.id,
        api_keys.c.principal,
        api_keys.c.key_hash,
        api_keys.c.created_at,
        api_keys.c.last_used_at,
        api_keys.c.expires_at,
    ).order_by(api_keys.c.created_at, api_keys.c.id)
    return [ApiKeyRecord(*row) for row in conn.execute(query)]


def restore(conn: Connection, keys: Sequence[ApiKeyRecord]) -> None:
    """Insert (or replace, by id) keys as stored."""
    for key in keys:
        row = asdict(key)
        statement = dialect_insert(conn)(api_keys).values(row)
        changed = {k: statement.excluded[k] for k in row if k != "id"}
        conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changed))
