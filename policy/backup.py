"""Catalog backups: the catalog's own state written to, and restored from, a JSON Lines file.

``reindex`` rebuilds object rows from the backend, and each site's state record
(:mod:`policy.site_state`) brings back its overrides, pins and edits, but API keys live only
in the catalog. A backup carries all of it, so a catalog can be restored, or moved between
databases (SQLite to PostgreSQL). What it holds and its format are
:mod:`policy.backup_format`'s; :mod:`policy.backup_read` reads and checks a file.

:func:`backup_to_file` writes atomically, with mode 0600. :func:`restore_backup` first reads
the whole file to check it (format, version, every line, the counts) and writes nothing
unless it is sound; it refuses a catalog that is not empty unless asked to replace its
contents. Both directions stream: memory is bounded by one batch of rows. After a restore,
:func:`record_locks` writes the restored versions' lock records into the store
(``policy.lock_records``), so that a later ``reindex`` keeps those locks too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from dataclasses import replace as with_fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from core.context import RequestContext
from core.errors import S3Error
from core.object_lock import ObjectLock
from policy.access_store import AccessStore
from policy.api_keys import ApiKeyStore
from policy.backup_format import (
    FORMAT,
    VERSION,
    BackupCounts,
    BackupError,
    BucketTagsEntry,
    ObjectAclEntry,
    SiteAccessEntry,
    SiteCorsEntry,
    SiteLifecycleEntry,
    SiteObjectLockEntry,
    VersionLockEntry,
    VersionRowEntry,
    optional_time_text,
    time_text,
)
from policy.backup_read import check_backup, read_backup
from policy.backup_versions import restore_version_rows, write_version_lines
from policy.bucket_access import access_to_json, grants_to_json
from policy.catalog import SqlCatalog
from policy.catalog_api_keys import ApiKeyRecord
from policy.catalog_contents import CatalogContents
from policy.cors import rules_to_json
from policy.identities import Identities, export_identities, restore_identities
from policy.identity_model import AccessKeyRecord, SiteGrant, User, UserPolicy
from policy.lifecycle import rules_to_json as lifecycle_to_json
from policy.lock_records import LockRecords
from policy.model import ArtifactFilter, ObjectRecord, every_record
from policy.object_lock import ObjectLocks
from translators.base import Backend

_BATCH: Final = 500


# Writing


async def write_backup(catalog: SqlCatalog, out: TextIO) -> BackupCounts:
    """Write every row of ``catalog`` to ``out`` in the format of :mod:`policy.backup_format`."""

    def line(document: dict[str, Any]) -> None:
        out.write(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")

    contents = CatalogContents(catalog)
    line({"format": FORMAT, "version": VERSION, "created_at": time_text(datetime.now(UTC))})
    objects = 0
    async for record in every_record(catalog, ArtifactFilter(), artifacts_only=False):
        line(_object_line(record))
        objects += 1
    policies = await contents.all_site_overrides()
    for site, overrides in policies.items():
        line({"type": "site_policy", "site": site, "overrides": overrides})
    keys = await ApiKeyStore(catalog).api_key_records()
    for key in keys:
        line(_api_key_line(key))
    users, access_keys, user_policies, grants = await export_identities(catalog)
    for user in users:
        line({**asdict(user), "type": "user", "created_at": time_text(user.created_at)})
    for access_key in access_keys:
        line(_access_key_line(access_key))
    for policy in user_policies:
        line({**asdict(policy), "type": "user_policy"})
    for grant in grants:
        line({**asdict(grant), "type": "site_grant", "role": grant.role.value})
    sites = await contents.all_bucket_access()
    for site, (access, bucket_policy) in sites.items():
        line(
            {"type": "site_access", "site": site, "policy": bucket_policy, **access_to_json(access)}
        )
    object_acls = await contents.all_object_acls()
    for site, object_key, acl in object_acls:
        line({"type": "object_acl", "site": site, "key": object_key, "acl": grants_to_json(acl)})
    cors = await contents.all_bucket_cors()
    for site, rules in cors.items():
        line({"type": "site_cors", "site": site, "rules": rules_to_json(rules)})
    bucket_tags = await contents.all_bucket_tags()
    for site, tags in bucket_tags.items():
        line({"type": "bucket_tags", "site": site, "tags": tags})
    lifecycles = await catalog.all_bucket_lifecycle()
    for site, lifecycle in lifecycles.items():
        line({"type": "site_lifecycle", "site": site, "rules": lifecycle_to_json(lifecycle)})
    locks = ObjectLocks(catalog)
    bucket_locks = await locks.all_buckets()
    for site, bucket_lock in bucket_locks.items():
        rule = bucket_lock.default
        line(
            {
                "type": "site_object_lock",
                "site": site,
                "mode": None if rule is None else rule.mode,
                "days": None if rule is None else rule.days,
                "years": None if rule is None else rule.years,
            }
        )
    version_locks = await locks.all_versions()
    for site, object_key, version_id, lock in version_locks:
        line(
            {
                "type": "version_lock",
                "site": site,
                "key": object_key,
                "version_id": version_id,
                "mode": lock.mode,
                "retain_until": optional_time_text(lock.retain_until),
                "legal_hold": bool(lock.legal_hold),
            }
        )
    versions = await write_version_lines(catalog, line)
    counts = BackupCounts(
        objects,
        len(policies),
        len(keys),
        len(users),
        len(access_keys),
        len(user_policies),
        len(grants),
        len(sites),
        len(object_acls),
        len(cors),
        len(bucket_tags),
        len(lifecycles),
        len(bucket_locks),
        len(version_locks),
        versions["site_versioning"],
        versions["object_version"],
        versions["noncurrent_total"],
    )
    line({"type": "end", **asdict(counts)})
    return counts


async def backup_to_file(catalog: SqlCatalog, path: Path) -> BackupCounts:
    """Write a backup to ``path`` atomically (``<path>.part``, fsynced, renamed), mode 0600."""
    partial = path.with_name(path.name + ".part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            counts = await write_backup(catalog, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts


def _object_line(record: ObjectRecord) -> dict[str, Any]:
    return {**asdict(record), "type": "object", "created_at": time_text(record.created_at)}


def _api_key_line(key: ApiKeyRecord) -> dict[str, Any]:
    return {
        **asdict(key),
        "type": "api_key",
        "created_at": time_text(key.created_at),
        "last_used_at": optional_time_text(key.last_used_at),
        "expires_at": optional_time_text(key.expires_at),
    }


def _access_key_line(key: AccessKeyRecord) -> dict[str, Any]:
    info = key.info
    return {
        "type": "access_key",
        "access_key_id": info.access_key_id,
        "user_name": info.user_name,
        "secret_sealed": key.secret_sealed,
        "status": info.status,
        "created_at": time_text(info.created_at),
        "expires_at": optional_time_text(info.expires_at),
        "last_used_at": optional_time_text(info.last_used_at),
    }


# Restoring


async def restore_backup(catalog: SqlCatalog, path: Path, *, replace: bool) -> BackupCounts:
    """Load the backup at ``path`` into ``catalog`` (started).

    The file is checked first (:class:`BackupError`, nothing written). A catalog that
    holds rows is refused (:class:`BackupError`) unless ``replace``, which deletes them
    first. Object rows are upserted in batches; a failure part way leaves a partly
    restored catalog, which a rerun with ``replace`` repairs.
    """
    counts = check_backup(path)
    contents = CatalogContents(catalog)
    api_keys = ApiKeyStore(catalog)
    access = AccessStore(catalog)
    locks = ObjectLocks(catalog)
    if not await contents.is_empty():
        if not replace:
            raise BackupError("the catalog is not empty; restore replaces it only when asked to")
        await contents.clear()
    batch: list[ObjectRecord] = []
    version_rows: list[VersionRowEntry] = []
    keys: list[ApiKeyRecord] = []
    identities: Identities = ([], [], [], [])  # few: restored together, users first
    for entry in read_backup(path):
        if isinstance(entry, ObjectRecord):
            batch.append(entry)
            if len(batch) >= _BATCH:
                await contents.upsert_many(batch)
                batch = []
        elif isinstance(entry, ApiKeyRecord):
            keys.append(entry)
            if len(keys) >= _BATCH:
                await api_keys.restore_api_keys(keys)
                keys = []
        elif isinstance(entry, User):
            identities[0].append(entry)
        elif isinstance(entry, AccessKeyRecord):
            identities[1].append(entry)
        elif isinstance(entry, UserPolicy):
            identities[2].append(entry)
        elif isinstance(entry, SiteGrant):
            identities[3].append(entry)
        elif isinstance(entry, SiteAccessEntry):
            await access.set_bucket_access(entry.site, entry.access, entry.policy)
        elif isinstance(entry, ObjectAclEntry):
            await access.set_object_acl(entry.site, entry.key, entry.acl)
        elif isinstance(entry, SiteCorsEntry):
            await catalog.set_bucket_cors(entry.site, entry.rules)
        elif isinstance(entry, BucketTagsEntry):
            await catalog.set_bucket_tags(entry.site, entry.tags)
        elif isinstance(entry, SiteLifecycleEntry):
            await catalog.set_bucket_lifecycle(entry.site, entry.rules)
        elif isinstance(entry, SiteObjectLockEntry):
            await locks.set_bucket(entry.site, entry.lock)
        elif isinstance(entry, VersionLockEntry):
            await locks.store(entry.site, entry.key, entry.version_id, entry.lock)
        elif isinstance(entry, VersionRowEntry):
            version_rows.append(entry)
            if len(version_rows) >= _BATCH:
                await restore_version_rows(catalog, version_rows)
                version_rows = []
        else:
            await catalog.set_site_overrides(*entry)
    await contents.upsert_many(batch)
    await restore_version_rows(catalog, version_rows)
    await api_keys.restore_api_keys(keys)
    await restore_identities(catalog, identities)
    return counts


async def record_locks(catalog: SqlCatalog, backend: Backend) -> int:
    """Write the lock record of every locked version ``catalog`` holds into ``backend`` (the
    store's translator, started): each ``object_locks`` row, with the pin of a latest
    version as its legal hold. The number of records written; backend errors propagate."""
    locks = ObjectLocks(catalog)
    records = LockRecords(backend)
    context = RequestContext(request_id="restore", principal="restore")
    held: dict[tuple[str, str], str] = {}  # (site, key) -> the version its pin holds
    for site in await locks.all_buckets():
        query = ArtifactFilter(site=site, pinned=True)
        async for row in every_record(catalog, query, artifacts_only=False):
            try:
                info = await backend.head_object(context, site, row.key)
            except S3Error as error:
                if error.code not in ("NoSuchKey", "NoSuchBucket"):
                    raise
                continue
            held[(site, row.key)] = info.version_id or "null"
    written = 0
    for site, key, version_id, lock in await locks.all_versions():
        pinned = held.get((site, key)) == version_id
        if pinned:
            del held[(site, key)]
        await records.write(
            site, key, version_id, with_fields(lock, legal_hold=lock.legal_hold or pinned)
        )
        written += 1
    for (site, key), version_id in held.items():
        await records.write(site, key, version_id, ObjectLock(legal_hold=True))
        written += 1
    return written
