"""The catalog's database: engines, migrations, SQLite's connection set-up, readiness, faults.

:class:`CatalogDatabase` opens SQLite (one host) or PostgreSQL (many) and runs each unit of
work as one transaction in a worker thread (at most ``max_connections`` at once), so the
event loop never waits on the database.

* SQLite runs in WAL mode with a busy timeout; every writing transaction starts with
  ``BEGIN IMMEDIATE``, so writers queue instead of failing on a lock upgrade.
* Migrations (Alembic, ``policy/migrations``) run when the database opens, under a
  transaction-scoped advisory lock on PostgreSQL (the write lock on SQLite), so replicas
  starting together upgrade once.
* A database failure reaches clients as an :class:`S3Error` (507 on a full volume, else
  503 with ``Retry-After``); its cause is logged, never returned (it may name hosts). So
  does work asked of a database not started (yet: policy.catalog_start) or closed: 503.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from core.errors import S3Error

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Advisory lock namespaces (first key of the two-key form) on PostgreSQL.
LOCK_SITE = 0x50574701
_LOCK_MIGRATE = 0x50574702
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
#: How long the readiness check waits for SQLite's write lock before calling it locked.
READY_BUSY_TIMEOUT_MS = 2_000


def normalize_url(url: str) -> str:
    """A SQLAlchemy URL with the psycopg 3 driver for PostgreSQL (``postgresql://``,
    ``postgres://`` and ``postgresql+psycopg://`` all mean the same database)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: libpq's connection settings unless the catalog URL sets them (see ``_start``).
CONNECT_TIMEOUT_S: Final = 5
_PG_CONNECT: Final[dict[str, int]] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class CatalogDatabase:
    """The database at ``url`` (normalised by :func:`normalize_url`); see the module
    docstring. ``start()`` and ``close()`` are idempotent."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = normalize_url(url)
        self._max_connections = max_connections
        self._engine: Engine | None = None
        self._writer: Engine | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._sqlite_identity: tuple[int, int] | None = None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return make_url(self.url).get_backend_name()

    async def start(self) -> None:
        """Connect and bring the schema to the latest migration (idempotent). The SQLite
        file's directory is created."""
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
            # A database host that drops packets instead of refusing them must not hold a
            # request (or the start) until the kernel's TCP timeout: libpq gives up connecting
            # after CONNECT_TIMEOUT_S, and keepalives notice a silent peer on an open
            # connection within about a minute. The URL's own settings win.
            options["connect_args"] = {
                name: value for name, value in _PG_CONNECT.items() if name not in url.query
            }
            engine = create_engine(url, **options)
        else:
            raise ValueError(f"unsupported catalog database {url.get_backend_name()!r}")
        writer = engine.execution_options(pwg_write=True)
        try:
            _migrate(writer)
        except BaseException:
            engine.dispose()
            raise
        if url.get_backend_name() == "sqlite" and url.database:
            found = os.stat(url.database)
            self._sqlite_identity = (found.st_dev, found.st_ino)
        self._engine, self._writer = engine, writer

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

    async def run(self, write: bool, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one transaction in a worker thread; commit if it returns.
        ``write`` transactions take SQLite's write lock at their start."""
        engine = self._writer if write else self._engine
        if engine is None or self._limiter is None:
            # Not started yet (policy.catalog_start retries it) or closed: the caller waits.
            raise S3Error(
                "ServiceUnavailable",
                "The catalog database is not started.",
                headers={"Retry-After": "1"},
            )

        def transaction() -> _T:
            with engine.begin() as conn:
                return work(conn)

        try:
            return await anyio.to_thread.run_sync(transaction, limiter=self._limiter)
        except (OperationalError, InterfaceError) as error:
            raise _database_fault(error) from error


def dialect_insert(conn: Connection) -> Callable[[Table], Any]:
    """The dialect's INSERT, which has ``on_conflict_do_update`` on both databases."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def lock_key(namespace: int) -> ColumnElement[Any]:
    """An int4 literal inline, so the two-key (int, int) advisory lock form is chosen."""
    return literal_column(str(namespace))


def _migrate(writer: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("path_separator", "os")
    with writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(lock_key(_LOCK_MIGRATE), 0)))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _database_fault(error: DBAPIError) -> S3Error:
    """What a database failure means to a client: its volume is full (SQLite's SQLITE_FULL,
    PostgreSQL's disk_full) -> 507, anything else operational (unreachable, locked,
    read-only, I/O, a connection lost) -> 503 with ``Retry-After``. The cause is logged,
    never returned (it may name hosts)."""
    cause = error.orig
    _log.error("catalog database fault: %s", cause)
    sqlite_code = getattr(cause, "sqlite_errorcode", None)
    full = (isinstance(sqlite_code, int) and sqlite_code & 0xFF == _SQLITE_FULL) or getattr(
        cause, "sqlstate", None
    ) == _PG_DISK_FULL
    if full:
        return S3Error("InsufficientStorage", "The catalog database's volume is full.")
    return S3Error(
        "ServiceUnavailable", "The catalog database is unavailable.", headers={"Retry-After": "1"}
    )


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
    _enter_wal(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _enter_wal(cursor: Any) -> None:
    """Put the database in WAL mode (it stays so, in the file). Switching a new database
    needs its exclusive lock, and SQLite answers "database is locked" at once, without its
    busy handler, while another connection (another process starting on the same new
    file) holds one; so the switch is retried for up to the busy timeout."""
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("pwg_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
