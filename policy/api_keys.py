"""The artifact API's keys: created, looked up, revoked, listed, backed up and restored.

:class:`ApiKeyStore` keeps them in the catalog's database (table ``api_keys``; SQL in
:mod:`policy.catalog_api_keys`), each method one transaction in the catalog's worker
threads, as :class:`policy.identities.IdentityStore` keeps identities. The artifact API's
Bearer authentication (``gateway.api.auth``), the ``api-key`` command and ``policy.backup``
use it.

Contracts:

* A secret (``pwg_<id>_<random>``) is returned once, by :meth:`ApiKeyStore.create_api_key`;
  only its SHA-256 is stored. A key whose expiry has passed authenticates no one.
* A lookup records the key's use; when that cannot be written (a full or read-only
  database) the key still authenticates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from core.errors import S3Error
from policy import catalog_api_keys
from policy.catalog import SqlCatalog
from policy.catalog_api_keys import ApiKeyInfo, ApiKeyRecord


class ApiKeyStore:
    """API keys in ``catalog``'s database (started by whoever owns the catalog)."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self._database = catalog.database

    async def create_api_key(self, principal: str, expires_at: datetime | None = None) -> str:
        """A new API key for ``principal``, live until ``expires_at`` (None: until revoked).
        The secret (``pwg_<id>_<random>``) is returned once; only its SHA-256 is stored.
        :func:`policy.catalog_api_keys.api_key_id` extracts the id."""
        secret, record = catalog_api_keys.new_key(principal, expires_at)
        await self._database.run(True, partial(catalog_api_keys.insert_key, record=record))
        return secret

    async def principal_for_api_key(self, secret: str) -> str | None:
        """The principal of a live (known, unexpired) API key (recording its use), or None.
        When the use cannot
        be recorded (a full or read-only database) the key still authenticates, so the API
        keeps working on a full disk, e.g. to delete artifacts."""
        digest = catalog_api_keys.hash_secret(secret)
        try:
            return await self._database.run(
                True, partial(catalog_api_keys.record_use, key_hash=digest)
            )
        except S3Error:
            return await self._database.run(
                False, partial(catalog_api_keys.principal, key_hash=digest)
            )

    async def revoke_api_key(self, key_id: str) -> bool:
        """Delete the API key ``key_id``; False if there was none."""
        return await self._database.run(True, partial(catalog_api_keys.revoke, key_id=key_id))

    async def list_api_keys(self, principal: str | None = None) -> list[ApiKeyInfo]:
        """API keys (without secrets), of one principal or all, oldest first."""
        return await self._database.run(False, partial(catalog_api_keys.infos, principal=principal))

    async def api_key_records(self) -> list[ApiKeyRecord]:
        """Every API key as stored (hashes, never secrets), oldest first (for
        ``policy.backup``)."""
        return await self._database.run(False, catalog_api_keys.records)

    async def restore_api_keys(self, records: Sequence[ApiKeyRecord]) -> None:
        """Insert (or replace, by id) API keys as stored, in one transaction."""
        await self._database.run(True, partial(catalog_api_keys.restore, keys=list(records)))
