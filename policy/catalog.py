"""The SQL catalog: :class:`policy.model.Catalog` on SQLite (one host) or PostgreSQL (many).

One schema, brought up to date by the Alembic migrations in ``policy/migrations`` when the
catalog starts. Every public method is one transaction, run in a worker thread (at most
``max_connections`` at once) so the event loop never waits on the database.

Concurrency contracts:

* SQLite runs in WAL mode with a busy timeout; every writing transaction starts with
  ``BEGIN IMMEDIATE``, so writers queue instead of failing on a lock upgrade.
* :meth:`SqlCatalog.reserve` serialises per site: ``pg_advisory_xact_lock`` on the site
  (PostgreSQL), the database write lock (SQLite). Committed usage, every reservation and
  the new one are summed inside that lock, so concurrent reservations never overshoot.
* Migrations run under a transaction-scoped advisory lock on PostgreSQL (the write lock on
  SQLite), so replicas starting together upgrade once.
* Reservations have owners: a single write's belongs to the lease of the process that took
  it (:attr:`SqlCatalog.lease_id`), a multipart upload's to the upload. Reclaiming the
  reservations of dead owners is safe while others work (see policy.catalog_leases).

The backend stays the source of truth; ``policy.reindex`` rebuilds these rows from it.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from core.errors import S3Error
from policy import catalog_leases
from policy.catalog_schema import api_keys, objects, reservations, site_policies
from policy.model import (
    ArtifactFilter,
    Compression,
    Lease,
    ObjectRecord,
    Page,
    QuotaExceeded,
    SitePolicy,
    SortField,
    UploadReservation,
    Usage,
)

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Advisory lock namespaces (first key of the two-key form) on PostgreSQL.
_LOCK_SITE = 0x50574701
_LOCK_MIGRATE = 0x50574702
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
#: How long the readiness check waits for SQLite's write lock before calling it locked.
READY_BUSY_TIMEOUT_MS = 2_000
_MAX_LIMIT = 1000
_SORTS: tuple[SortField, ...] = ("created_at", "size", "build_id", "key")
_API_KEY_PREFIX = "pwg"


#: Told the site whose catalog-only state changed (see SqlCatalog.add_state_listener).
StateListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: its id, owner, the SHA-256 of its secret and its times (what
    a catalog backup carries; the secret itself is never stored anywhere)."""

    id: str
    principal: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None


#: The longest cursor :meth:`SqlCatalog.list` reads (it writes a few hundred characters).
MAX_CURSOR_LENGTH = 4096
_MAX_CURSOR_TEXT = 2048
_INT64_MAX = 2**63 - 1
#: Text no catalog column can hold: a NUL (PostgreSQL) or a lone surrogate (UTF-8).
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


class CursorError(ValueError):
    """A list cursor that is malformed or was issued for another sort order."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key without its secret (the catalog keeps only its SHA-256)."""

    id: str
    principal: str
    created_at: datetime
    last_used_at: datetime | None


def normalize_url(url: str) -> str:
    """A SQLAlchemy URL with the psycopg 3 driver for PostgreSQL (``postgresql://``,
    ``postgres://`` and ``postgresql+psycopg://`` all mean the same database)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def api_key_id(secret: str) -> str | None:
    """The id embedded in an API key secret (``pwg_<id>_<random>``), or None if malformed."""
    prefix, sep, rest = secret.partition("_")
    key_id, sep2, _ = rest.partition("_")
    if prefix != _API_KEY_PREFIX or not sep or not sep2 or not key_id:
        return None
    return key_id


class SqlCatalog:
    """The catalog on the database at ``url`` (``sqlite:///path`` or a PostgreSQL URL).

    ``start()`` creates the SQLite file's directory, connects and migrates; it and
    ``close()`` are idempotent, so several wrappers may share one catalog.
    """

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = normalize_url(url)
        self._max_connections = max_connections
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._sqlite_identity: tuple[int, int] | None = None
        self._state_listeners: builtins.list[StateListener] = []
        self._lease_id = secrets.token_hex(12)

    def add_state_listener(self, listener: StateListener) -> None:
        """Await ``listener(site)`` after every committed change of ``site``'s catalog-only
        state: its policy overrides, or an artifact's pin, status or action
        (``policy.site_state`` keeps a copy of that state with the data). Shielded from
        cancellation; a listener must not raise."""
        self._state_listeners.append(listener)

    async def _state_changed(self, site: str) -> None:
        with anyio.CancelScope(shield=True):
            for listener in self._state_listeners:
                await listener(site)

    @property
    def lease_id(self) -> str:
        """This process's lease: the owner of the single-write reservations it takes."""
        return self._lease_id

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return make_url(self.url).get_backend_name()

    # Lifecycle

    async def start(self) -> None:
        """Connect and bring the schema to the latest migration (idempotent)."""
        if self._engine is not None:
            return
        self._limiter = anyio.CapacityLimiter(self._max_connections)
        await anyio.to_thread.run_sync(self._start, limiter=self._limiter)

    def _start(self) -> None:
        url = make_url(self.url)
        options: dict[str, Any] = {
            "pool_size": self._max_connections,
            "max_overflow": 0,
            "pool_pre_ping": True,
        }
        if url.get_backend_name() == "sqlite":
            if url.database in (None, "", ":memory:"):
                raise ValueError("the catalog needs a SQLite file, not an in-memory database")
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, **options)
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        elif url.get_backend_name() == "postgresql":
            engine = create_engine(url, **options)
        else:
            raise ValueError(f"unsupported catalog database {url.get_backend_name()!r}")
        writer = engine.execution_options(pwg_write=True)
        try:
            self._migrate(writer)
        except BaseException:
            engine.dispose()
            raise
        if url.get_backend_name() == "sqlite" and url.database:
            found = os.stat(url.database)
            self._sqlite_identity = (found.st_dev, found.st_ino)
        self._engine, self._writer = engine, writer

    def _migrate(self, writer: Engine) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option("path_separator", "os")
        with writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_lock_key(_LOCK_MIGRATE), 0)))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    async def close(self) -> None:
        """Release every connection (idempotent)."""
        engine, self._engine, self._writer = self._engine, None, None
        if engine is not None:
            await anyio.to_thread.run_sync(engine.dispose)

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` naming the fault unless the database answers now and could
        take a write: PostgreSQL reachable; the SQLite file still the one opened at start
        (not deleted or replaced under the running gateway) and its write lock obtainable
        within :data:`READY_BUSY_TIMEOUT_MS`. The cause is logged, never returned (it may
        name hosts). Runs outside the connection limiter, so busy workers cannot stall it.
        """
        engine = self._engine
        if engine is None:
            raise S3Error("ServiceUnavailable", "The catalog database is not started.")
        await anyio.to_thread.run_sync(partial(self._check_ready, engine), abandon_on_cancel=True)

    def _check_ready(self, engine: Engine) -> None:
        sqlite_file = make_url(self.url).database if self.dialect == "sqlite" else None
        if sqlite_file:
            try:
                found = os.stat(sqlite_file)
            except FileNotFoundError:
                found = None
            if found is None or (found.st_dev, found.st_ino) != self._sqlite_identity:
                _log.error("catalog readiness: %s is missing or was replaced", sqlite_file)
                raise S3Error(
                    "ServiceUnavailable", "The catalog database file is missing or was replaced."
                )
        try:
            if sqlite_file:
                _probe_sqlite_write_lock(engine)
            else:
                with engine.connect() as conn:
                    conn.execute(select(1))
        except (DBAPIError, sqlite3.Error) as error:
            locked = "locked" in str(error) or "busy" in str(error)
            _log.error("catalog readiness: %s", error)
            raise S3Error(
                "ServiceUnavailable",
                "The catalog database is locked."
                if locked
                else "The catalog database cannot be used.",
            ) from error

    async def _run(self, write: bool, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one transaction in a worker thread; commit if it returns."""
        engine = self._writer if write else self._engine
        if engine is None or self._limiter is None:
            raise RuntimeError("the catalog is not started")

        def transaction() -> _T:
            with engine.begin() as conn:
                return work(conn)

        try:
            return await anyio.to_thread.run_sync(transaction, limiter=self._limiter)
        except OperationalError as error:
            raise _database_fault(error) from error

    # Objects

    async def upsert(self, record: ObjectRecord) -> None:
        """Insert or replace the row of (site, key) with ``record``, every field included
        (``pinned``/``corrupt`` too: a new upload is a new artifact)."""
        await self._run(True, partial(self._upsert, record))

    def _upsert(self, record: ObjectRecord, conn: Connection) -> None:
        values = _record_values(record)
        statement = _dialect_insert(conn)(objects).values(values)
        changed = {k: statement.excluded[k] for k in values if k not in ("site", "key")}
        conn.execute(statement.on_conflict_do_update(index_elements=["site", "key"], set_=changed))

    async def delete(self, site: str, key: str) -> None:
        """Remove the row of (site, key); absent rows are fine."""
        await self._run(
            True,
            lambda conn: conn.execute(
                delete(objects).where(objects.c.site == site, objects.c.key == key)
            ),
        )

    async def delete_site(self, site: str) -> None:
        """Remove every object row and reservation of ``site``; its policy overrides stay
        (they are configuration, and apply again if the site is recreated)."""

        def work(conn: Connection) -> None:
            conn.execute(delete(objects).where(objects.c.site == site))
            conn.execute(delete(reservations).where(reservations.c.site == site))

        await self._run(True, work)

    async def get(self, site: str, key: str) -> ObjectRecord | None:
        def work(conn: Connection) -> ObjectRecord | None:
            row = conn.execute(
                select(objects).where(objects.c.site == site, objects.c.key == key)
            ).first()
            return None if row is None else _record(row)

        return await self._run(False, work)

    async def sites(self) -> builtins.list[str]:
        """Every site that has at least one object row, sorted."""

        def work(conn: Connection) -> builtins.list[str]:
            query = select(objects.c.site).distinct().order_by(objects.c.site)
            return [row[0] for row in conn.execute(query)]

        return await self._run(False, work)

    async def list(
        self,
        query: ArtifactFilter,
        *,
        artifacts_only: bool = True,
        sort: SortField = "created_at",
        descending: bool = True,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Records matching ``query``, ordered by ``sort``, then site, then key (all in the
        same direction), at most ``limit`` (1..1000) per page.

        The cursor is opaque (base64 of the last row's sort value, site and key) and is
        keyset-based: rows inserted or deleted between pages never cause a duplicate or an
        omission of rows that existed throughout. A cursor issued for another sort or
        direction raises :class:`CursorError`. ``created_from`` is inclusive,
        ``created_to`` exclusive; build-id order puts ordinary objects (no build id) first.
        """
        if sort not in _SORTS:
            raise ValueError(f"unknown sort {sort!r}")
        limit = max(1, min(limit, _MAX_LIMIT))
        after = None if cursor is None else _decode_cursor(cursor, sort, descending)
        return await self._run(
            False, partial(self._list, query, artifacts_only, sort, descending, after, limit)
        )

    def _list(
        self,
        query: ArtifactFilter,
        artifacts_only: bool,
        sort: SortField,
        descending: bool,
        after: builtins.list[Any] | None,
        limit: int,
        conn: Connection,
    ) -> Page:
        columns = _order_columns(sort, artifacts_only)
        conditions = _filter_conditions(query)
        if artifacts_only:
            conditions.append(objects.c.build_id.is_not(None))
        if after is not None:
            conditions.append(_after(columns, after, descending))
        statement = (
            select(objects)
            .where(*conditions)
            .order_by(*(c.desc() if descending else c.asc() for c in columns))
            .limit(limit + 1)
        )
        rows = conn.execute(statement).all()
        items = [_record(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = _encode_cursor(sort, descending, items[-1])
        return Page(items, next_cursor)

    async def update(
        self,
        site: str,
        key: str,
        *,
        pinned: bool | None = None,
        status: str | None = None,
        action: str | None = None,
        corrupt: bool | None = None,
    ) -> ObjectRecord:
        """Set the given flags (None = leave as is); KeyError if (site, key) is absent."""
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("pinned", pinned),
                ("status", status),
                ("action", action),
                ("corrupt", corrupt),
            )
            if value is not None
        }

        def work(conn: Connection) -> ObjectRecord:
            where = (objects.c.site == site, objects.c.key == key)
            if changes:
                conn.execute(update(objects).where(*where).values(changes))
            row = conn.execute(select(objects).where(*where)).first()
            if row is None:
                raise KeyError((site, key))
            return _record(row)

        record = await self._run(True, work)
        if changes.keys() - {"corrupt"}:
            await self._state_changed(site)
        return record

    # Usage and reservations

    async def usage(self, site: str) -> Usage:
        """Committed objects and bytes of ``site`` plus its reservations, read in one
        statement (one snapshot)."""
        return await self._run(False, lambda conn: _usage(conn, site))

    async def reserve(
        self,
        site: str,
        reservation_id: str,
        size: int,
        artifacts: int,
        policy: SitePolicy,
        *,
        upload: tuple[str, str] | None = None,
    ) -> None:
        """Add ``size`` bytes and ``artifacts`` to reservation ``reservation_id`` of ``site``
        unless committed usage + every reservation + this one would pass
        ``policy.quota_bytes`` / ``policy.quota_artifacts`` (QuotaExceeded, nothing
        reserved). A dimension this reservation does not grow is not checked, so releasing
        stays possible over quota. Atomic across processes (see the module docstring).
        A new reservation belongs to the multipart ``upload`` (key, upload id) when given,
        else to this process's lease.
        """
        if size < 0 or artifacts < 0:
            raise ValueError("a reservation cannot be negative")

        def work(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                lock = func.pg_advisory_xact_lock(_lock_key(_LOCK_SITE), func.hashtext(site))
                conn.execute(select(lock))
            current = _usage(conn, site)
            used_bytes = current.bytes + current.reserved_bytes + size
            used_artifacts = current.artifacts + current.reserved_artifacts + artifacts
            if size and policy.quota_bytes is not None and used_bytes > policy.quota_bytes:
                raise QuotaExceeded("bytes", policy.quota_bytes, current)
            quota_artifacts = policy.quota_artifacts
            if artifacts and quota_artifacts is not None and used_artifacts > quota_artifacts:
                raise QuotaExceeded("artifacts", quota_artifacts, current)
            added = conn.execute(
                update(reservations)
                .where(reservations.c.id == reservation_id)
                .values(
                    bytes=reservations.c.bytes + size,
                    artifacts=reservations.c.artifacts + artifacts,
                )
            )
            if added.rowcount == 0:
                conn.execute(
                    insert(reservations).values(
                        id=reservation_id,
                        site=site,
                        bytes=size,
                        artifacts=artifacts,
                        created_at=datetime.now(UTC),
                        lease_id=None if upload else self._lease_id,
                        upload_key=upload[0] if upload else None,
                        upload_id=upload[1] if upload else None,
                    )
                )

        await self._run(True, work)

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation; unknown ids are ignored."""
        await self._run(
            True,
            lambda conn: conn.execute(
                delete(reservations).where(reservations.c.id == reservation_id)
            ),
        )

    # Reservation owners (policy.leases keeps them)

    async def renew_lease(self, node: str | None, process: str | None, expires: datetime) -> None:
        """Create or extend this process's lease until ``expires``."""
        await self._run(
            True,
            partial(
                catalog_leases.renew,
                lease_id=self._lease_id,
                node=node,
                process=process,
                expires=expires,
            ),
        )

    async def drop_lease(self) -> None:
        """Give up this process's lease: whatever it still holds becomes reclaimable."""
        await self._run(True, partial(catalog_leases.drop, lease_id=self._lease_id))

    async def leases(self) -> builtins.list[Lease]:
        return await self._run(False, catalog_leases.read_all)

    async def reclaim_reservations(self, now: datetime, dead: Collection[str]) -> int:
        """Drop single-write reservations that no live lease owns (live: not expired at
        ``now`` and not in ``dead``), then expired and dead leases; returns how many
        reservations were dropped. Multipart upload reservations are left alone."""
        if self._lease_id in dead:
            raise ValueError("a process cannot declare its own lease dead")
        return await self._run(True, partial(catalog_leases.reclaim, now=now, dead=dead))

    async def upload_reservations(self) -> builtins.list[UploadReservation]:
        """Every multipart upload's reservation."""
        return await self._run(False, catalog_leases.uploads)

    # Site policy overrides

    async def site_overrides(self, site: str) -> dict[str, Any]:
        """The stored overrides of ``site`` ({} when none)."""

        def work(conn: Connection) -> dict[str, Any]:
            row = conn.execute(
                select(site_policies.c.overrides).where(site_policies.c.site == site)
            ).first()
            return {} if row is None else dict(row[0])

        return await self._run(False, work)

    async def set_site_overrides(self, site: str, overrides: dict[str, Any]) -> None:
        """Replace the overrides of ``site`` (validated against SitePolicy's fields, so a
        typo fails here rather than at the next upload); {} removes them."""
        SitePolicy().merged(overrides)

        def work(conn: Connection) -> None:
            if not overrides:
                conn.execute(delete(site_policies).where(site_policies.c.site == site))
                return
            statement = _dialect_insert(conn)(site_policies).values(
                site=site, overrides=dict(overrides)
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["site"], set_={"overrides": statement.excluded.overrides}
                )
            )

        await self._run(True, work)
        await self._state_changed(site)

    # API keys

    async def create_api_key(self, principal: str) -> str:
        """A new API key for ``principal``. The secret (``pwg_<id>_<random>``) is returned
        once; only its SHA-256 is stored. :func:`api_key_id` extracts the id."""
        key_id = secrets.token_hex(8)
        secret = f"{_API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        values = {
            "id": key_id,
            "principal": principal,
            "key_hash": _hash_secret(secret),
            "created_at": datetime.now(UTC),
            "last_used_at": None,
        }
        await self._run(True, lambda conn: conn.execute(insert(api_keys).values(values)))
        return secret

    async def principal_for_api_key(self, secret: str) -> str | None:
        """The principal of a live API key (recording its use), or None. When the use cannot
        be recorded (a full or read-only database) the key still authenticates, so the API
        keeps working on a full disk, e.g. to delete artifacts."""
        digest = _hash_secret(secret)

        def work(conn: Connection) -> str | None:
            row = conn.execute(
                update(api_keys)
                .where(api_keys.c.key_hash == digest)
                .values(last_used_at=datetime.now(UTC))
                .returning(api_keys.c.principal)
            ).first()
            return None if row is None else str(row[0])

        def lookup(conn: Connection) -> str | None:
            row = conn.execute(
                select(api_keys.c.principal).where(api_keys.c.key_hash == digest)
            ).first()
            return None if row is None else str(row[0])

        try:
            return await self._run(True, work)
        except S3Error:
            return await self._run(False, lookup)

    async def revoke_api_key(self, key_id: str) -> bool:
        """Delete the API key ``key_id``; False if there was none."""

        def work(conn: Connection) -> bool:
            result = conn.execute(delete(api_keys).where(api_keys.c.id == key_id))
            return result.rowcount > 0

        return await self._run(True, work)

    async def list_api_keys(self, principal: str | None = None) -> builtins.list[ApiKeyInfo]:
        """API keys (without secrets), of one principal or all, oldest first."""

        def work(conn: Connection) -> builtins.list[ApiKeyInfo]:
            statement = select(
                api_keys.c.id,
                api_keys.c.principal,
                api_keys.c.created_at,
                api_keys.c.last_used_at,
            ).order_by(api_keys.c.created_at, api_keys.c.id)
            if principal is not None:
                statement = statement.where(api_keys.c.principal == principal)
            return [ApiKeyInfo(*row) for row in conn.execute(statement)]

        return await self._run(False, work)

    # Backup and restore (policy.backup)

    async def is_empty(self) -> bool:
        """Whether the catalog holds no object row, policy override or API key."""

        def work(conn: Connection) -> bool:
            return all(
                conn.execute(select(table).limit(1)).first() is None
                for table in (objects, site_policies, api_keys)
            )

        return await self._run(False, work)

    async def clear(self) -> None:
        """Delete every row: objects, reservations, policy overrides and API keys."""

        def work(conn: Connection) -> None:
            for table in (objects, reservations, site_policies, api_keys):
                conn.execute(delete(table))

        await self._run(True, work)

    async def upsert_many(self, records: Sequence[ObjectRecord]) -> None:
        """:meth:`upsert` of every record, in one transaction."""

        def work(conn: Connection) -> None:
            for record in records:
                self._upsert(record, conn)

        await self._run(True, work)

    async def all_site_overrides(self) -> dict[str, dict[str, Any]]:
        """Every site's stored overrides, by site."""

        def work(conn: Connection) -> dict[str, dict[str, Any]]:
            query = select(site_policies).order_by(site_policies.c.site)
            return {row.site: dict(row.overrides) for row in conn.execute(query)}

        return await self._run(False, work)

    async def api_key_records(self) -> builtins.list[ApiKeyRecord]:
        """Every API key as stored (hashes, never secrets), oldest first."""

        def work(conn: Connection) -> builtins.list[ApiKeyRecord]:
            query = select(
                api_keys.c.id,
                api_keys.c.principal,
                api_keys.c.key_hash,
                api_keys.c.created_at,
                api_keys.c.last_used_at,
            ).order_by(api_keys.c.created_at, api_keys.c.id)
            return [ApiKeyRecord(*row) for row in conn.execute(query)]

        return await self._run(False, work)

    async def restore_api_keys(self, records: Sequence[ApiKeyRecord]) -> None:
        """Insert (or replace, by id) API keys as stored, in one transaction."""
        rows = [
            {
                "id": r.id,
                "principal": r.principal,
                "key_hash": r.key_hash,
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
            }
            for r in records
        ]

        def work(conn: Connection) -> None:
            for row in rows:
                statement = _dialect_insert(conn)(api_keys).values(row)
                changed = {k: statement.excluded[k] for k in row if k != "id"}
                conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changed))

        await self._run(True, work)


def _database_fault(error: OperationalError) -> S3Error:
    """What a database failure means to a client: its volume is full (SQLite's SQLITE_FULL,
    PostgreSQL's disk_full) -> 507, anything else operational (unreachable, locked,
    read-only, I/O) -> 503. The cause is logged, never returned (it may name hosts)."""
    cause = error.orig
    _log.error("catalog database fault: %s", cause)
    sqlite_code = getattr(cause, "sqlite_errorcode", None)
    full = (isinstance(sqlite_code, int) and sqlite_code & 0xFF == _SQLITE_FULL) or getattr(
        cause, "sqlstate", None
    ) == _PG_DISK_FULL
    if full:
        return S3Error("InsufficientStorage", "The catalog database's volume is full.")
    return S3Error("ServiceUnavailable", "The catalog database is unavailable.")


# SQLite connection setup


def _probe_sqlite_write_lock(engine: Engine) -> None:
    """Take and release SQLite's write lock (with a short busy timeout), and read a row."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {READY_BUSY_TIMEOUT_MS}")
        try:
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("SELECT 1 FROM objects LIMIT 1").fetchall()
            cursor.execute("ROLLBACK")
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()
    finally:
        raw.close()


def _sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # The driver must not open transactions itself; _sqlite_begin does, in the right mode.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("pwg_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# Rows and records


def _dialect_insert(conn: Connection) -> Callable[[Table], Any]:
    """The dialect's INSERT, which has ``on_conflict_do_update`` on both databases."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _record_values(record: ObjectRecord) -> dict[str, Any]:
    return {
        "site": record.site,
        "key": record.key,
        "size": record.size,
        "etag": record.etag,
        "created_at": record.created_at,
        "creator": record.creator,
        "content_type": record.content_type,
        "build_id": record.build_id,
        "compression": record.compression,
        "sha256": record.sha256,
        "status": record.status,
        "action": record.action,
        "pinned": record.pinned,
        "corrupt": record.corrupt,
        "user_metadata": dict(record.user_metadata),
    }


def _record(row: Row[Any]) -> ObjectRecord:
    m = row._mapping
    return ObjectRecord(
        site=m["site"],
        key=m["key"],
        size=int(m["size"]),
        etag=m["etag"],
        created_at=m["created_at"],
        creator=m["creator"],
        content_type=m["content_type"],
        build_id=m["build_id"],
        compression=cast("Compression | None", m["compression"]),
        sha256=m["sha256"],
        status=m["status"],
        action=m["action"],
        pinned=bool(m["pinned"]),
        corrupt=bool(m["corrupt"]),
        user_metadata=dict(m["user_metadata"] or {}),
    )


def _usage(conn: Connection, site: str) -> Usage:
    committed = (
        select(
            func.coalesce(func.sum(objects.c.size), 0).label("bytes"),
            func.count().label("objects"),
            func.count(objects.c.build_id).label("artifacts"),
        )
        .where(objects.c.site == site)
        .subquery()
    )
    reserved = (
        select(
            func.coalesce(func.sum(reservations.c.bytes), 0).label("reserved_bytes"),
            func.coalesce(func.sum(reservations.c.artifacts), 0).label("reserved_artifacts"),
        )
        .where(reservations.c.site == site)
        .subquery()
    )
    both = committed.join(reserved, true())
    row = conn.execute(select(committed, reserved).select_from(both)).one()._mapping
    return Usage(**{name: int(value) for name, value in row.items()})


def _lock_key(namespace: int) -> ColumnElement[Any]:
    """An int4 literal inline, so the two-key (int, int) advisory lock form is chosen."""
    return literal_column(str(namespace))


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Filters, order and cursors


def _filter_conditions(query: ArtifactFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.site is not None:
        conditions.append(objects.c.site == query.site)
    if query.created_from is not None:
        conditions.append(objects.c.created_at >= query.created_from)
    if query.created_to is not None:
        conditions.append(objects.c.created_at < query.created_to)
    for column, value in (
        (objects.c.status, query.status),
        (objects.c.action, query.action),
        (objects.c.creator, query.creator),
        (objects.c.pinned, query.pinned),
        (objects.c.corrupt, query.corrupt),
    ):
        if value is not None:
            conditions.append(column == value)
    for name, value in sorted(query.metadata.items()):
        conditions.append(objects.c.user_metadata[name].as_string() == value)
    return conditions


def _order_columns(sort: SortField, artifacts_only: bool = False) -> list[ColumnElement[Any]]:
    """The ORDER BY columns; artifacts always have a build id, so then the bare column (and
    its index) serves, else ordinary objects sort as an empty build id."""
    if sort == "key":
        return [objects.c.key, objects.c.site]
    build_id = objects.c.build_id if artifacts_only else func.coalesce(objects.c.build_id, "")
    first: ColumnElement[Any] = {
        "created_at": objects.c.created_at,
        "size": objects.c.size,
        "build_id": build_id,
    }[sort]
    return [first, objects.c.site, objects.c.key]


def _after(
    columns: Sequence[ColumnElement[Any]], values: Sequence[Any], descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the lexicographic order of ``columns``."""
    condition: ColumnElement[bool] | None = None
    for column, value in reversed(list(zip(columns, values, strict=True))):
        beyond = column < value if descending else column > value
        condition = beyond if condition is None else or_(beyond, and_(column == value, condition))
    assert condition is not None
    return condition


def _sort_values(sort: SortField, record: ObjectRecord) -> list[Any]:
    if sort == "key":
        return [record.key, record.site]
    first: Any = {
        "created_at": record.created_at.astimezone(UTC).isoformat(),
        "size": record.size,
        "build_id": record.build_id or "",
    }[sort]
    return [first, record.site, record.key]


def _encode_cursor(sort: SortField, descending: bool, last: ObjectRecord) -> str:
    payload = {"s": sort, "d": descending, "v": _sort_values(sort, last)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _decode_cursor(cursor: str, sort: SortField, descending: bool) -> list[Any]:
    """The sort values a cursor of :func:`_encode_cursor` carries, each checked to be what
    that sort stores: ``CursorError`` for anything else (a tampered cursor never reaches
    the database as a value it cannot hold: a huge number, a lone surrogate, a NUL)."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("malformed cursor")
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        payload = json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as error:
        raise CursorError("malformed cursor") from error
    if not isinstance(payload, dict) or set(payload) != {"s", "d", "v"}:
        raise CursorError("malformed cursor")
    if payload["s"] != sort or payload["d"] is not descending:
        raise CursorError("the cursor belongs to another sort order")
    values = payload["v"]
    if not isinstance(values, list) or len(values) != len(_order_columns(sort)):
        raise CursorError("malformed cursor")
    if not all(_cursor_text(value) for value in values[1:]):
        raise CursorError("malformed cursor")
    first = values[0]
    if sort == "size":
        if type(first) is not int or not 0 <= first <= _INT64_MAX:
            raise CursorError("malformed cursor")
    elif not _cursor_text(first):
        raise CursorError("malformed cursor")
    elif sort == "created_at":
        values[0] = _cursor_time(first)
    return values


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _cursor_text(value: Any) -> bool:
    """A site, key or build id as the catalog stores one."""
    return (
        isinstance(value, str)
        and len(value) <= _MAX_CURSOR_TEXT
        and _UNSTORABLE_TEXT.search(value) is None
    )


def _cursor_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError(text)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise CursorError("malformed cursor") from error
