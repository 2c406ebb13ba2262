"""Sites' access settings and object ACLs, stored in the catalog's database.

:class:`AccessStore` is the :class:`policy.access_control.AccessCatalog` that
:class:`policy.access_control.AccessControl` decides from and writes through (the values are
:mod:`policy.bucket_access`'s; SQL in :mod:`policy.catalog_bucket_access`). Each method is
one transaction in the catalog's worker threads, as :class:`policy.identities.IdentityStore`.
Nothing here is cached and no state listener is told: ``AccessControl`` caches and forgets.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import Connection

from policy import catalog_bucket_access, catalog_cors, catalog_lifecycle
from policy.bucket_access import BucketAccess, Grant
from policy.catalog import SqlCatalog


class AccessStore:
    """Access settings in ``catalog``'s database (started by whoever owns the catalog)."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self._database = catalog.database

    async def bucket_access(self, site: str) -> tuple[BucketAccess, str | None] | None:
        """``site``'s stored access configuration and bucket policy; None: never stored."""
        return await self._database.run(False, partial(catalog_bucket_access.read, site=site))

    async def set_bucket_access(self, site: str, access: BucketAccess, policy: str | None) -> None:
        """Replace ``site``'s access configuration and bucket policy (None: none)."""
        write = partial(catalog_bucket_access.write, site=site, access=access, policy=policy)
        await self._database.run(True, write)

    async def remove_bucket_access(self, site: str) -> None:
        """Forget ``site``'s access configuration, object ACLs, CORS configuration and
        lifecycle rules (the site was deleted)."""

        def work(conn: Connection) -> None:
            catalog_bucket_access.remove_site(conn, site)
            catalog_cors.write(conn, site, None)
            catalog_lifecycle.write(conn, site, None)

        await self._database.run(True, work)

    async def object_acl(self, site: str, key: str) -> tuple[Grant, ...] | None:
        """The object's stored ACL; None: the owner-private default."""
        read = partial(catalog_bucket_access.read_object, site=site, key=key)
        return await self._database.run(False, read)

    async def set_object_acl(self, site: str, key: str, acl: tuple[Grant, ...] | None) -> None:
        """Store the object's ACL; None returns it to the owner-private default."""
        write = partial(catalog_bucket_access.write_object, site=site, key=key, acl=acl)
        await self._database.run(True, write)
