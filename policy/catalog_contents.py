"""The catalog's contents taken whole: is it empty, clear it, read every row of a kind,
write object rows in bulk. What ``policy.backup`` needs beyond the per-row
:class:`policy.catalog.SqlCatalog`.

:class:`CatalogContents` works in the catalog's database, each method one transaction in
the catalog's worker threads (as :class:`policy.identities.IdentityStore`). Its writes tell
no state listener (see :meth:`policy.catalog.SqlCatalog.add_state_listener`): a restore
writes the catalog wholesale before a gateway serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from policy import (
    catalog_bucket_access,
    catalog_cors,
    catalog_overrides,
    catalog_records,
    catalog_tags,
)
from policy.bucket_access import BucketAccess, Grant
from policy.catalog import SqlCatalog
from policy.catalog_schema import (
    access_keys,
    api_keys,
    bucket_access,
    bucket_cors,
    bucket_lifecycle,
    bucket_object_lock,
    bucket_tags,
    noncurrent_versions,
    object_acls,
    object_locks,
    object_versions,
    objects,
    reservations,
    site_grants,
    site_policies,
    site_versioning,
    upload_locks,
    upload_tags,
    user_policies,
    users,
)
from policy.cors import CorsRules
from policy.model import ObjectRecord
from policy.tags import TagSet


class CatalogContents:
    """The whole contents of ``catalog``'s database (started by whoever owns the catalog)."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self._database = catalog.database

    async def is_empty(self) -> bool:
        """Whether the catalog holds no object row, policy override, API key, identity,
        site access setting, CORS configuration, bucket tag set, lifecycle configuration,
        object lock state or versioning state (policy.catalog_versions)."""

        def work(conn: Connection) -> bool:
            return all(
                conn.execute(select(table).limit(1)).first() is None
                for table in (
                    objects,
                    site_policies,
                    api_keys,
                    users,
                    bucket_access,
                    bucket_cors,
                    bucket_tags,
                    bucket_lifecycle,
                    bucket_object_lock,
                    object_locks,
                    site_versioning,
                    object_versions,
                    noncurrent_versions,
                )
            )

        return await self._database.run(False, work)

    async def clear(self) -> None:
        """Delete every row: objects, reservations, policy overrides, API keys,
        identities (users, their keys, policies and site grants), sites' access settings
        (bucket policies, ACLs, public access blocks, ownership; object ACLs; CORS), bucket
        and upload tags, lifecycle rules, object lock and versioning state."""

        def work(conn: Connection) -> None:
            for table in (objects, reservations, site_policies, api_keys):
                conn.execute(delete(table))
            for table in (site_grants, user_policies, access_keys, users):
                conn.execute(delete(table))
            for table in (bucket_access, object_acls, bucket_cors, bucket_tags, upload_tags):
                conn.execute(delete(table))
            conn.execute(delete(bucket_lifecycle))
            for table in (site_versioning, noncurrent_versions, object_versions):
                conn.execute(delete(table))
            for table in (bucket_object_lock, object_locks):
                conn.execute(delete(table))
            conn.execute(delete(upload_locks))

        await self._database.run(True, work)

    async def upsert_many(self, records: Sequence[ObjectRecord]) -> None:
        """:meth:`policy.catalog.SqlCatalog.upsert` of every record, in one transaction."""

        def work(conn: Connection) -> None:
            for record in records:
                catalog_records.upsert(conn, record)

        await self._database.run(True, work)

    async def all_site_overrides(self) -> dict[str, dict[str, Any]]:
        """Every site's stored overrides, by site."""
        return await self._database.run(False, catalog_overrides.read_all)

    async def all_bucket_access(self) -> dict[str, tuple[BucketAccess, str | None]]:
        """Every site's stored access configuration and bucket policy, by site."""
        return await self._database.run(False, catalog_bucket_access.read_all)

    async def all_object_acls(self) -> list[tuple[str, str, tuple[Grant, ...]]]:
        """Every stored object ACL as (site, key, grants)."""
        return await self._database.run(False, catalog_bucket_access.read_all_objects)

    async def all_bucket_cors(self) -> dict[str, CorsRules]:
        """Every site's CORS rules, by site."""
        return await self._database.run(False, catalog_cors.read_all)

    async def all_bucket_tags(self) -> dict[str, TagSet]:
        """Every bucket tag set, by site."""
        return await self._database.run(False, catalog_tags.read_all_buckets)
