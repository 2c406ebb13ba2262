"""The SQL catalog: :class:`policy.model.Catalog` on SQLite (one host) or PostgreSQL (many).

One schema, brought up to date by the Alembic migrations in ``policy/migrations`` when the
catalog starts. Every public method is one transaction, run in a worker thread (at most
``max_connections`` at once) so the event loop never waits on the database.

:class:`SqlCatalog` is the facade; each part of the schema has a module of its own:
``policy.catalog_database`` (engines, migrations, SQLite set-up, readiness, faults),
``policy.catalog_records`` (object rows; keyset-paged listing and its cursors),
``policy.catalog_reservations`` (usage and quota reservations), ``policy.catalog_leases``
(reservation owners), ``policy.catalog_jobs`` (background jobs' leases and last runs, used
by ``policy.jobs`` through :attr:`SqlCatalog.database`), ``policy.catalog_overrides`` (site
policy overrides), ``policy.catalog_cors``, ``policy.catalog_lifecycle`` and
``policy.catalog_tags``, ``policy.catalog_versions`` (versioned sites' versions) and
``policy.catalog_version_pages``. Stores of their own
work in the same database (:attr:`SqlCatalog.database`): ``policy.identities`` (IAM users
and their keys), ``policy.access_store`` (sites' access settings and object ACLs),
``policy.api_keys`` (API keys, stored as hashes) and ``policy.catalog_contents`` (the whole
contents at once, for ``policy.backup``).

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

import builtins
import secrets
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Final

import anyio
from sqlalchemy import Connection, delete

from core.errors import S3Error
from policy import (
    catalog_cors,
    catalog_leases,
    catalog_lifecycle,
    catalog_overrides,
    catalog_records,
    catalog_reservations,
    catalog_tags,
    catalog_version_pages,
    catalog_versions,
)
from policy.catalog_database import CatalogDatabase
from policy.catalog_records import MAX_LIMIT, SORTS, decode_cursor
from policy.catalog_schema import objects, reservations
from policy.cors import CorsRules
from policy.lifecycle import LifecycleRules
from policy.model import (
    ArtifactFilter,
    Lease,
    ObjectRecord,
    Page,
    SitePolicy,
    SortField,
    UploadReservation,
    Usage,
    VersionPage,
)
from policy.tags import TagSet
from translators.versioning import Version

#: Told the site whose catalog-only state changed (see SqlCatalog.add_state_listener).
StateListener = Callable[[str], Awaitable[None]]


#: Reservations remembered for :meth:`SqlCatalog.release_pending`, at most (beyond, the
#: lease reclaims them when this process ends).
MAX_UNRELEASED: Final = 100_000


class SqlCatalog:
    """The catalog on the database at ``url`` (``sqlite:///path`` or a PostgreSQL URL).

    ``start()`` creates the SQLite file's directory, connects and migrates; it and
    ``close()`` are idempotent, so several wrappers may share one catalog.
    """

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._database = CatalogDatabase(url, max_connections=max_connections)
        self.url = self._database.url
        self._state_listeners: builtins.list[StateListener] = []
        self._lease_id = secrets.token_hex(12)
        self._unreleased: dict[str, None] = {}  # reservations to drop (release_pending)

    def add_state_listener(self, listener: StateListener) -> None:
        """Await ``listener(site)`` after every committed change of ``site``'s catalog-only
        state: its policy overrides, an artifact's pin, status or action, its CORS
        configuration, an object's tags or the bucket's, its object lock configuration
        (``policy.site_state`` keeps a copy of that state with the data). Shielded from
        cancellation; a listener must not raise."""
        self._state_listeners.append(listener)

    async def state_changed(self, site: str) -> None:
        """Tell the state listeners that ``site``'s catalog-only state kept in tables of
        other stores changed (``policy.object_lock``'s configuration)."""
        await self._state_changed(site)

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
        return self._database.dialect

    @property
    def database(self) -> CatalogDatabase:
        """The database under this catalog, for stores that keep other tables in it
        (``policy.identities``): their work runs in the same worker threads and limits."""
        return self._database

    # Lifecycle

    async def start(self) -> None:
        """Connect and bring the schema to the latest migration (idempotent)."""
        await self._database.start()

    async def close(self) -> None:
        """Release every connection (idempotent)."""
        await self._database.close()

    async def check_ready(self) -> None:
        """``ServiceUnavailable`` naming the fault unless the database answers now and could
        take a write (see :meth:`policy.catalog_database.CatalogDatabase.check_ready`)."""
        await self._database.check_ready()

    # Objects

    async def upsert(self, record: ObjectRecord, *, upload_id: str | None = None) -> None:
        """Insert or replace the row of (site, key) with ``record``, every field included
        (``pinned``/``corrupt`` too: a new upload is a new artifact; its ``tags`` replace the
        previous object's). With ``upload_id`` the record is the object that multipart
        upload completed: it takes the tags the upload asked for (:meth:`set_upload_tags`),
        in the same transaction."""
        work = partial(catalog_tags.upsert_object, record=record, upload_id=upload_id)
        if await self._database.run(True, work):
            await self._state_changed(record.site)

    async def delete(self, site: str, key: str) -> None:
        """Remove the row of (site, key), and with it the object's tags; absent rows are
        fine."""
        work = partial(catalog_tags.delete_object, site=site, key=key)
        if await self._database.run(True, work):
            await self._state_changed(site)

    async def delete_site(self, site: str) -> None:
        """Remove every object row (with its tags) and reservation of ``site``, its bucket
        tags and the tags of its uploads in progress; its policy overrides stay (they are
        configuration, and apply again if the site is recreated)."""

        def work(conn: Connection) -> None:
            conn.execute(delete(objects).where(objects.c.site == site))
            conn.execute(delete(reservations).where(reservations.c.site == site))
            catalog_tags.remove_site(conn, site)
            catalog_versions.remove_site(conn, site)

        await self._database.run(True, work)

    async def get(self, site: str, key: str) -> ObjectRecord | None:
        return await self._database.run(False, partial(catalog_records.read, site=site, key=key))

    async def sites(self) -> builtins.list[str]:
        """Every site that has at least one object row, sorted."""
        return await self._database.run(False, catalog_records.sites)

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
        direction raises :class:`policy.catalog_records.CursorError`. ``created_from`` is
        inclusive, ``created_to`` exclusive; build-id order puts ordinary objects (no build
        id) first.
        """
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}")
        limit = max(1, min(limit, MAX_LIMIT))
        after = None if cursor is None else decode_cursor(cursor, sort, descending)
        page = partial(
            catalog_records.list_page,
            query=query,
            artifacts_only=artifacts_only,
            sort=sort,
            descending=descending,
            after=after,
            limit=limit,
        )
        return await self._database.run(False, page)

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
        work = partial(catalog_records.update_flags, site=site, key=key, changes=changes)
        record = await self._database.run(True, work)
        if changes.keys() - {"corrupt"}:
            await self._state_changed(site)
        return record

    # Usage and reservations

    async def usage(self, site: str) -> Usage:
        """Committed objects and bytes of ``site`` plus its reservations, read in one
        statement (one snapshot)."""
        return await self._database.run(False, partial(catalog_reservations.usage, site=site))

    async def usage_by_site(self) -> dict[str, Usage]:
        """:meth:`usage` of every site with objects or reservations, in one transaction (the
        per-site gauges of :mod:`policy.metrics_sites`)."""
        return await self._database.run(False, catalog_reservations.usage_by_site)

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
        work = partial(
            catalog_reservations.reserve,
            site=site,
            reservation_id=reservation_id,
            size=size,
            artifacts=artifacts,
            policy=policy,
            lease_id=self._lease_id,
            upload=upload,
        )
        await self._database.run(True, work)

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation; unknown ids are ignored. One that cannot be dropped for want
        of the database (a 5xx ``S3Error``, raised) is remembered, and dropped by
        :meth:`release_pending` once the database answers again, so an outage does not
        leave quota held until this process ends."""
        try:
            await self._database.run(
                True, partial(catalog_reservations.release, reservation_id=reservation_id)
            )
        except S3Error as error:
            if error.status >= 500 and len(self._unreleased) < MAX_UNRELEASED:
                self._unreleased[reservation_id] = None
            raise

    async def release_pending(self) -> int:
        """Drop the reservations :meth:`release` could not (oldest first, until one fails
        again); how many were dropped."""
        released = 0
        for reservation_id in list(self._unreleased):
            try:
                await self._database.run(
                    True, partial(catalog_reservations.release, reservation_id=reservation_id)
                )
            except S3Error as error:
                if error.status >= 500:
                    break
                raise
            del self._unreleased[reservation_id]
            released += 1
        return released

    # Reservation owners (policy.leases keeps them)

    async def renew_lease(self, node: str | None, process: str | None, expires: datetime) -> None:
        """Create or extend this process's lease until ``expires``."""
        await self._database.run(
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
        await self._database.run(True, partial(catalog_leases.drop, lease_id=self._lease_id))

    async def leases(self) -> builtins.list[Lease]:
        return await self._database.run(False, catalog_leases.read_all)

    async def reclaim_reservations(self, now: datetime, dead: Collection[str]) -> int:
        """Drop single-write reservations that no live lease owns (live: not expired at
        ``now`` and not in ``dead``), then expired and dead leases; returns how many
        reservations were dropped. Multipart upload reservations are left alone."""
        if self._lease_id in dead:
            raise ValueError("a process cannot declare its own lease dead")
        return await self._database.run(True, partial(catalog_leases.reclaim, now=now, dead=dead))

    async def upload_reservations(self) -> builtins.list[UploadReservation]:
        """Every multipart upload's reservation."""
        return await self._database.run(False, catalog_leases.uploads)

    # Site policy overrides

    async def site_overrides(self, site: str) -> dict[str, Any]:
        """The stored overrides of ``site`` ({} when none)."""
        return await self._database.run(False, partial(catalog_overrides.read, site=site))

    async def set_site_overrides(self, site: str, overrides: dict[str, Any]) -> None:
        """Replace the overrides of ``site`` (validated against SitePolicy's fields, so a
        typo fails here rather than at the next upload); {} removes them."""
        SitePolicy().merged(overrides)
        write = partial(catalog_overrides.write, site=site, overrides=overrides)
        await self._database.run(True, write)
        await self._state_changed(site)

    # CORS configurations (policy.cors)

    async def bucket_cors(self, site: str) -> CorsRules | None:
        """``site``'s CORS rules; None: it has no CORS configuration."""
        return await self._database.run(False, partial(catalog_cors.read, site=site))

    async def set_bucket_cors(self, site: str, rules: CorsRules | None) -> None:
        """Replace ``site``'s CORS rules (checked by the caller; None: remove them)."""
        await self._database.run(True, partial(catalog_cors.write, site=site, rules=rules))
        await self._state_changed(site)

    # Lifecycle rules (policy.lifecycle; the retention rule is the retention_days override)

    async def bucket_lifecycle(self, site: str) -> LifecycleRules | None:
        """``site``'s stored lifecycle rules (not the retention rule); None: none."""
        return await self._database.run(False, partial(catalog_lifecycle.read, site=site))

    async def set_bucket_lifecycle(self, site: str, rules: LifecycleRules | None) -> None:
        """Replace ``site``'s stored lifecycle rules only (restores; None: remove them)."""
        await self._database.run(True, partial(catalog_lifecycle.write, site=site, rules=rules))
        await self._state_changed(site)

    async def replace_lifecycle(
        self, site: str, rules: LifecycleRules | None, retention_days: int | None
    ) -> None:
        """Replace ``site``'s whole lifecycle configuration in one transaction: its stored
        rules and its ``retention_days`` override (None: cleared)."""
        work = partial(
            catalog_lifecycle.replace, site=site, rules=rules, retention_days=retention_days
        )
        await self._database.run(True, work)
        await self._state_changed(site)

    async def all_bucket_lifecycle(self) -> dict[str, LifecycleRules]:
        """Every site's stored lifecycle rules, by site."""
        return await self._database.run(False, catalog_lifecycle.read_all)

    # Versioned sites (policy.catalog_versions)

    async def versioning_status(self, site: str) -> str | None:
        """``Enabled`` / ``Suspended`` as last set through the gateway; None: never."""
        return await self._database.run(False, partial(catalog_versions.status, site=site))

    async def set_versioning_status(self, site: str, status: str) -> None:
        await self._database.run(
            True, partial(catalog_versions.set_status, site=site, value=status)
        )

    async def set_versions(self, site: str, key: str, history: Sequence[Version]) -> None:
        """Make ``key``'s version rows what the backend's listing ``history`` says
        (:func:`policy.catalog_versions.set_versions`)."""
        work = partial(catalog_versions.set_versions, site=site, key=key, history=history)
        await self._database.run(True, work)

    async def prune_versions(self, site: str, keep: Collection[str]) -> None:
        """Drop the version rows of ``site``'s keys not in ``keep``."""
        await self._database.run(True, partial(catalog_versions.prune, site=site, keep=keep))

    async def key_versions(
        self, site: str, key: str, *, cursor: str | None = None, limit: int = 100
    ) -> VersionPage:
        """``key``'s versions, newest first, at most ``limit`` (1..1000) per page
        (:mod:`policy.catalog_version_pages`); a malformed cursor raises
        :class:`policy.catalog_records.CursorError`."""
        limit = max(1, min(limit, MAX_LIMIT))
        after = None if cursor is None else catalog_version_pages.decode_cursor(cursor)
        if not self._holds(key):
            return VersionPage([], None)
        work = partial(catalog_version_pages.page, site=site, key=key, after=after, limit=limit)
        return await self._database.run(False, work)

    # S3 tags (policy.tags validates them; policy.catalog_tags stores them)

    def _holds(self, key: str) -> bool:
        """Whether a row of ``key`` can exist: PostgreSQL text cannot hold a NUL, so an S3
        key with one has no row there (asking for it would be a database error)."""
        return "\x00" not in key or self.dialect == "sqlite"

    async def object_tags(self, site: str, key: str) -> tuple[str, TagSet] | None:
        """(ETag, tags) of the object's row; None: no such row."""
        if not self._holds(key):
            return None
        read = partial(catalog_tags.read_object, site=site, key=key)
        return await self._database.run(False, read)

    async def set_object_tags(self, site: str, key: str, tags: TagSet) -> bool:
        """Replace the object's tags ({}: none); False when the catalog has no row of it."""
        if not self._holds(key):
            return False
        write = partial(catalog_tags.write_object, site=site, key=key, tags=tags)
        before = await self._database.run(True, write)
        if before is None:
            return False
        if before != tags:
            await self._state_changed(site)
        return True

    async def any_object_tags(self, site: str) -> bool:
        """Whether any object of ``site`` has tags."""
        return await self._database.run(False, partial(catalog_tags.any_tagged, site=site))

    async def tagged_objects(self, site: str) -> builtins.list[tuple[str, str, TagSet]]:
        """(key, ETag, tags) of every object of ``site`` that has tags, by key."""
        return await self._database.run(False, partial(catalog_tags.tagged_objects, site=site))

    async def bucket_tags(self, site: str) -> TagSet | None:
        """``site``'s bucket tag set; None: it has none."""
        return await self._database.run(False, partial(catalog_tags.read_bucket, site=site))

    async def set_bucket_tags(self, site: str, tags: TagSet | None) -> None:
        """Replace ``site``'s bucket tag set; None removes it."""
        await self._database.run(True, partial(catalog_tags.write_bucket, site=site, tags=tags))
        await self._state_changed(site)

    async def set_upload_tags(self, site: str, upload_id: str, key: str, tags: TagSet) -> None:
        """Keep the tags multipart upload ``upload_id`` (of ``key``) asked for, until
        :meth:`upsert` with that ``upload_id`` gives them to its object or
        :meth:`drop_upload_tags` forgets them."""
        write = partial(
            catalog_tags.write_upload, site=site, upload_id=upload_id, key=key, tags=tags
        )
        await self._database.run(True, write)

    async def drop_upload_tags(self, site: str, upload_id: str) -> None:
        """Forget the tags of an upload that ended without an object (aborted)."""
        remove = partial(catalog_tags.remove_upload, site=site, upload_id=upload_id)
        await self._database.run(True, remove)
