"""Catalog backups: the catalog's own state as a versioned JSON Lines file.

``reindex`` rebuilds object rows from the backend, and each site's state record
(:mod:`policy.site_state`) brings back its overrides, pins and edits, but API keys live only
in the catalog. A backup carries all of it, so a catalog can be restored, or moved between
databases (SQLite to PostgreSQL):

* every object row, with its catalog-only state (pinned, corrupt, status, action);
* every site's policy overrides;
* every API key as stored: its id, principal, times and the SHA-256 of its secret (never a
  secret; restored keys keep working);
* every identity (``policy.identities``): IAM users, their access keys as stored (secrets
  sealed under the master key: restored keys open only under that same key, so restore
  with the gateway's ``master.key`` / ``master_key``), inline policies and site grants;
* every site's access settings (``policy.bucket_access``: owner, bucket policy, ACL, public
  access block, object ownership) and every object ACL. A restore without them would lose
  a bucket policy's Deny statements, so they travel too;
* every site's CORS rules (``policy.cors``);
* every site's lifecycle rules (``policy.lifecycle``; the retention rule travels as the
  site's ``retention_days`` override);
* S3 tags: an object's on its object line (``tags``), every bucket's tag set on a line of
  its own.

The file is written with mode 0600 all the same.

Quota reservations and the tags of multipart uploads in progress (transient) are not
included.

Format, one JSON object per line::

    {"format": "pagewright-catalog-backup", "version": 1, "created_at": "..."}
    {"type": "object", "site": ..., "key": ..., ...every ObjectRecord field...}
    {"type": "site_policy", "site": ..., "overrides": {...}}
    {"type": "api_key", "id": ..., "principal": ..., "key_hash": ..., "created_at": ...,
     "last_used_at": ..., "expires_at": ...}
    {"type": "user", "name": ..., "user_id": ..., "path": ..., "created_at": ...}
    {"type": "access_key", "access_key_id": ..., "user_name": ..., "secret_sealed": ...,
     "status": ..., "created_at": ..., "expires_at": ..., "last_used_at": ...}
    {"type": "user_policy", "user_name": ..., "policy_name": ..., "document": "..."}
    {"type": "site_grant", "site": ..., "user_name": ..., "role": ...}
    {"type": "site_access", "site": ..., "owner": ..., "policy": "..." | null,
     "acl": [{"kind", "grantee", "permission", "display"}...],
     "public_access_block": {...} | null, "ownership": ... | null}
    {"type": "object_acl", "site": ..., "key": ..., "acl": [...]}
    {"type": "site_cors", "site": ..., "rules": [...as policy.cors.rules_to_json...]}
    {"type": "bucket_tags", "site": ..., "tags": {key: value, ...}}
    {"type": "site_lifecycle", "site": ..., "rules": [...as policy.lifecycle.rules_to_json...]}
    {"type": "end", "objects": N, "site_policies": N, "api_keys": N, "users": N,
     "access_keys": N, "user_policies": N, "site_grants": N, "site_access": N,
     "object_acls": N, "site_cors": N, "bucket_tags": N, "site_lifecycle": N}

Identity, access, CORS, tag and lifecycle lines (and an object line's ``tags``) were added
to version 1 without a new version: files written before them (whose end line has no such
counts, whose object lines have no tags) read as holding none.

The end line makes a truncated file detectable. :func:`restore_backup` first reads the
whole file to check it (format, version, every line, the counts) and writes nothing unless
it is sound; it refuses a catalog that is not empty unless asked to replace its contents.
Both directions stream: memory is bounded by one batch of rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO, cast

from policy.bucket_access import (
    BucketAccess,
    Grant,
    access_from_json,
    access_to_json,
    grants_from_json,
    grants_to_json,
)
from policy.catalog import SqlCatalog
from policy.catalog_api_keys import ApiKeyRecord
from policy.cors import CorsRules, rules_from_json, rules_to_json
from policy.identities import Identities, export_identities, restore_identities
from policy.identity_model import AccessKeyInfo, AccessKeyRecord, SiteGrant, User, UserPolicy
from policy.identity_rules import STATUSES
from policy.lifecycle import LifecycleRules
from policy.lifecycle import rules_from_json as lifecycle_from_json
from policy.lifecycle import rules_to_json as lifecycle_to_json
from policy.model import ArtifactFilter, Compression, ObjectRecord, every_record
from policy.policies import PolicyError, validate_overrides
from policy.principals import Role
from policy.tags import valid_tags

FORMAT: Final = "pagewright-catalog-backup"
VERSION: Final = 1
_BATCH = 500
_COMPRESSIONS = ("gzip", "zstd", "none")


@dataclass(frozen=True)
class SiteAccessEntry:
    """A backed-up site's access settings and bucket policy."""

    site: str
    access: BucketAccess
    policy: str | None


@dataclass(frozen=True)
class SiteCorsEntry:
    """A backed-up site's CORS rules."""

    site: str
    rules: CorsRules


@dataclass(frozen=True)
class ObjectAclEntry:
    """A backed-up object ACL."""

    site: str
    key: str
    acl: tuple[Grant, ...]


@dataclass(frozen=True)
class BucketTagsEntry:
    """A backed-up bucket tag set."""

    site: str
    tags: dict[str, str]


@dataclass(frozen=True)
class SiteLifecycleEntry:
    """A backed-up site's stored lifecycle rules."""

    site: str
    rules: LifecycleRules


class BackupError(ValueError):
    """A backup file that cannot be restored: wrong format or version, malformed, truncated;
    or a catalog that is not empty."""


@dataclass(frozen=True)
class BackupCounts:
    objects: int = 0
    site_policies: int = 0
    api_keys: int = 0
    users: int = 0
    access_keys: int = 0
    user_policies: int = 0
    site_grants: int = 0
    site_access: int = 0
    object_acls: int = 0
    site_cors: int = 0
    bucket_tags: int = 0
    site_lifecycle: int = 0

    def text(self) -> str:
        return (
            f"{self.objects} object row(s), {self.site_policies} site polic(ies), "
            f"{self.api_keys} API key(s), {self.users} user(s), "
            f"{self.access_keys} access key(s), {self.user_policies} user polic(ies), "
            f"{self.site_grants} site grant(s), {self.site_access} site access setting(s), "
            f"{self.object_acls} object ACL(s), {self.site_cors} CORS configuration(s), "
            f"{self.bucket_tags} bucket tag set(s), "
            f"{self.site_lifecycle} lifecycle configuration(s)"
        )


#: Entry type in the file -> its BackupCounts field (the end line's name for the count).
_COUNTED: Final = {
    "object": "objects",
    "site_policy": "site_policies",
    "api_key": "api_keys",
    "user": "users",
    "access_key": "access_keys",
    "user_policy": "user_policies",
    "site_grant": "site_grants",
    "site_access": "site_access",
    "object_acl": "object_acls",
    "site_cors": "site_cors",
    "bucket_tags": "bucket_tags",
    "site_lifecycle": "site_lifecycle",
}
#: Counts an end line written before identities were backed up does not carry.
_LATER_COUNTS: Final = frozenset(
    {
        "users",
        "access_keys",
        "user_policies",
        "site_grants",
        "site_access",
        "object_acls",
        "site_cors",
        "bucket_tags",
        "site_lifecycle",
    }
)


# Writing


async def write_backup(catalog: SqlCatalog, out: TextIO) -> BackupCounts:
    """Write every row of ``catalog`` to ``out`` in the format of the module docstring."""

    def line(document: dict[str, Any]) -> None:
        out.write(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")

    line({"format": FORMAT, "version": VERSION, "created_at": _time(datetime.now(UTC))})
    objects = 0
    async for record in every_record(catalog, ArtifactFilter(), artifacts_only=False):
        line(_object_line(record))
        objects += 1
    policies = await catalog.all_site_overrides()
    for site, overrides in policies.items():
        line({"type": "site_policy", "site": site, "overrides": overrides})
    keys = await catalog.api_key_records()
    for key in keys:
        line(_api_key_line(key))
    users, access_keys, user_policies, grants = await export_identities(catalog)
    for user in users:
        line({**asdict(user), "type": "user", "created_at": _time(user.created_at)})
    for access_key in access_keys:
        line(_access_key_line(access_key))
    for policy in user_policies:
        line({**asdict(policy), "type": "user_policy"})
    for grant in grants:
        line({**asdict(grant), "type": "site_grant", "role": grant.role.value})
    sites = await catalog.all_bucket_access()
    for site, (access, bucket_policy) in sites.items():
        line(
            {"type": "site_access", "site": site, "policy": bucket_policy, **access_to_json(access)}
        )
    object_acls = await catalog.all_object_acls()
    for site, object_key, acl in object_acls:
        line({"type": "object_acl", "site": site, "key": object_key, "acl": grants_to_json(acl)})
    cors = await catalog.all_bucket_cors()
    for site, rules in cors.items():
        line({"type": "site_cors", "site": site, "rules": rules_to_json(rules)})
    bucket_tags = await catalog.all_bucket_tags()
    for site, tags in bucket_tags.items():
        line({"type": "bucket_tags", "site": site, "tags": tags})
    lifecycles = await catalog.all_bucket_lifecycle()
    for site, lifecycle in lifecycles.items():
        line({"type": "site_lifecycle", "site": site, "rules": lifecycle_to_json(lifecycle)})
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
    return {**asdict(record), "type": "object", "created_at": _time(record.created_at)}


def _api_key_line(key: ApiKeyRecord) -> dict[str, Any]:
    return {
        **asdict(key),
        "type": "api_key",
        "created_at": _time(key.created_at),
        "last_used_at": _optional_time(key.last_used_at),
        "expires_at": _optional_time(key.expires_at),
    }


def _access_key_line(key: AccessKeyRecord) -> dict[str, Any]:
    info = key.info
    return {
        "type": "access_key",
        "access_key_id": info.access_key_id,
        "user_name": info.user_name,
        "secret_sealed": key.secret_sealed,
        "status": info.status,
        "created_at": _time(info.created_at),
        "expires_at": _optional_time(info.expires_at),
        "last_used_at": _optional_time(info.last_used_at),
    }


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else _time(value)


# Reading


Entry = (
    ObjectRecord
    | tuple[str, dict[str, Any]]
    | ApiKeyRecord
    | User
    | AccessKeyRecord
    | UserPolicy
    | SiteGrant
    | SiteAccessEntry
    | ObjectAclEntry
    | SiteCorsEntry
    | BucketTagsEntry
    | SiteLifecycleEntry
)


def read_backup(path: Path) -> Iterator[Entry]:
    """The entries of a backup file, checked line by line (:class:`BackupError`); the end
    line's counts are checked when the iteration finishes."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error}") from None
    with handle:
        _header(path, handle.readline())
        counts = dict.fromkeys(_COUNTED, 0)
        for number, text in enumerate(handle, start=2):
            document = _json_line(text, number)
            kind = document.get("type")
            try:
                if kind == "end":
                    _check_end(document, counts)
                    if handle.readline():
                        raise BackupError("there are lines after the end line")
                    return
                if kind == "object":
                    yield _object(document)
                elif kind == "site_policy":
                    yield _site_policy(document)
                elif kind == "api_key":
                    yield _api_key(document)
                elif kind == "user":
                    yield _user(document)
                elif kind == "access_key":
                    yield _access_key(document)
                elif kind == "user_policy":
                    yield _user_policy(document)
                elif kind == "site_grant":
                    yield _site_grant(document)
                elif kind == "site_access":
                    yield SiteAccessEntry(
                        _text(document, "site"),
                        access_from_json(document),
                        _optional_text(document, "policy"),
                    )
                elif kind == "object_acl":
                    yield ObjectAclEntry(
                        _text(document, "site"),
                        _text(document, "key"),
                        grants_from_json(document["acl"]),
                    )
                elif kind == "site_cors":
                    yield SiteCorsEntry(_text(document, "site"), rules_from_json(document["rules"]))
                elif kind == "bucket_tags":
                    yield BucketTagsEntry(
                        _text(document, "site"), valid_tags(document["tags"], "bucket")
                    )
                elif kind == "site_lifecycle":
                    yield SiteLifecycleEntry(
                        _text(document, "site"), lifecycle_from_json(document["rules"])
                    )
                else:
                    raise BackupError(f"unknown entry type {kind!r}")
            except BackupError as error:
                raise BackupError(f"line {number}: {error}") from None
            except (KeyError, TypeError, ValueError) as error:
                raise BackupError(f"line {number}: malformed {kind} entry: {error}") from None
            counts[str(kind)] += 1
    raise BackupError("the file ends without its end line (truncated?)")


def check_backup(path: Path) -> BackupCounts:
    """Read the whole file once, checking it; what it holds."""
    counts = dict.fromkeys(_COUNTED.values(), 0)
    for entry in read_backup(path):
        counts[_kind(entry)] += 1
    return BackupCounts(**counts)


def _kind(entry: Entry) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (ObjectRecord, "objects"),
        (ApiKeyRecord, "api_keys"),
        (User, "users"),
        (AccessKeyRecord, "access_keys"),
        (UserPolicy, "user_policies"),
        (SiteGrant, "site_grants"),
        (SiteAccessEntry, "site_access"),
        (ObjectAclEntry, "object_acls"),
        (SiteCorsEntry, "site_cors"),
        (BucketTagsEntry, "bucket_tags"),
        (SiteLifecycleEntry, "site_lifecycle"),
    )
    for kind, name in kinds:
        if isinstance(entry, kind):
            return name
    return "site_policies"


def _header(path: Path, text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupError(f"{path} is not a PageWright catalog backup")
    if document.get("version") != VERSION:
        raise BackupError(
            f"{path} is a backup of format version {document.get('version')!r}; "
            f"this gateway reads version {VERSION} only"
        )


def _json_line(text: str, number: int) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        raise BackupError(f"line {number} is not JSON") from None
    if not isinstance(document, dict):
        raise BackupError(f"line {number} is not a JSON object")
    return document


def _check_end(document: dict[str, Any], counts: dict[str, int]) -> None:
    expected = {name: counts[kind] for kind, name in _COUNTED.items()}
    found = {name: document.get(name, 0 if name in _LATER_COUNTS else None) for name in expected}
    if found != expected:
        raise BackupError(f"the end line counts {found}, the file holds {expected}")


def _text(document: dict[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    return None if document.get(name) is None else _text(document, name)


def _flag(document: dict[str, Any], name: str) -> bool:
    value = document[name]
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a boolean")
    return value


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed


def _object(document: dict[str, Any]) -> ObjectRecord:
    size = document["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise TypeError("size must be a non-negative integer")
    compression = _optional_text(document, "compression")
    if compression is not None and compression not in _COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}")
    metadata = document["user_metadata"]
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError("user_metadata must map strings to strings")
    return ObjectRecord(
        site=_text(document, "site"),
        key=_text(document, "key"),
        size=size,
        etag=_text(document, "etag"),
        created_at=_timestamp(_text(document, "created_at")),
        creator=_text(document, "creator"),
        content_type=_text(document, "content_type"),
        build_id=_optional_text(document, "build_id"),
        compression=cast("Compression | None", compression),
        sha256=_optional_text(document, "sha256"),
        status=_optional_text(document, "status"),
        action=_optional_text(document, "action"),
        pinned=_flag(document, "pinned"),
        corrupt=_flag(document, "corrupt"),
        user_metadata=dict(metadata),
        tags=valid_tags(document.get("tags") or {}, "object"),
    )


def _site_policy(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    overrides = document["overrides"]
    if not isinstance(overrides, dict):
        raise TypeError("overrides must be an object")
    try:
        return _text(document, "site"), validate_overrides(overrides)
    except PolicyError as error:
        raise BackupError(str(error)) from None


def _api_key(document: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=_text(document, "id"),
        principal=_text(document, "principal"),
        key_hash=_text(document, "key_hash"),
        created_at=_timestamp(_text(document, "created_at")),
        last_used_at=_optional_timestamp(document, "last_used_at"),
        expires_at=_optional_timestamp(document, "expires_at"),
    )


def _optional_timestamp(document: dict[str, Any], name: str) -> datetime | None:
    value = _optional_text(document, name)
    return None if value is None else _timestamp(value)


def _user(document: dict[str, Any]) -> User:
    return User(
        name=_text(document, "name"),
        user_id=_text(document, "user_id"),
        path=_text(document, "path"),
        created_at=_timestamp(_text(document, "created_at")),
    )


def _access_key(document: dict[str, Any]) -> AccessKeyRecord:
    status = _text(document, "status")
    for known in STATUSES:
        if status == known:
            break
    else:
        raise ValueError(f"unknown access key status {status!r}")
    info = AccessKeyInfo(
        access_key_id=_text(document, "access_key_id"),
        user_name=_text(document, "user_name"),
        status=known,
        created_at=_timestamp(_text(document, "created_at")),
        expires_at=_optional_timestamp(document, "expires_at"),
        last_used_at=_optional_timestamp(document, "last_used_at"),
    )
    return AccessKeyRecord(info, _text(document, "secret_sealed"))


def _user_policy(document: dict[str, Any]) -> UserPolicy:
    return UserPolicy(
        _text(document, "user_name"), _text(document, "policy_name"), _text(document, "document")
    )


def _site_grant(document: dict[str, Any]) -> SiteGrant:
    return SiteGrant(
        _text(document, "site"), _text(document, "user_name"), Role(_text(document, "role"))
    )


# Restoring


async def restore_backup(catalog: SqlCatalog, path: Path, *, replace: bool) -> BackupCounts:
    """Load the backup at ``path`` into ``catalog`` (started).

    The file is checked first (:class:`BackupError`, nothing written). A catalog that
    holds rows is refused (:class:`BackupError`) unless ``replace``, which deletes them
    first. Object rows are upserted in batches; a failure part way leaves a partly
    restored catalog, which a rerun with ``replace`` repairs.
    """
    counts = check_backup(path)
    if not await catalog.is_empty():
        if not replace:
            raise BackupError("the catalog is not empty; restore replaces it only when asked to")
        await catalog.clear()
    batch: list[ObjectRecord] = []
    keys: list[ApiKeyRecord] = []
    identities: Identities = ([], [], [], [])  # few: restored together, users first
    for entry in read_backup(path):
        if isinstance(entry, ObjectRecord):
            batch.append(entry)
            if len(batch) >= _BATCH:
                await catalog.upsert_many(batch)
                batch = []
        elif isinstance(entry, ApiKeyRecord):
            keys.append(entry)
            if len(keys) >= _BATCH:
                await catalog.restore_api_keys(keys)
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
            await catalog.set_bucket_access(entry.site, entry.access, entry.policy)
        elif isinstance(entry, ObjectAclEntry):
            await catalog.set_object_acl(entry.site, entry.key, entry.acl)
        elif isinstance(entry, SiteCorsEntry):
            await catalog.set_bucket_cors(entry.site, entry.rules)
        elif isinstance(entry, BucketTagsEntry):
            await catalog.set_bucket_tags(entry.site, entry.tags)
        elif isinstance(entry, SiteLifecycleEntry):
            await catalog.set_bucket_lifecycle(entry.site, entry.rules)
        else:
            await catalog.set_site_overrides(*entry)
    await catalog.upsert_many(batch)
    await catalog.restore_api_keys(keys)
    await restore_identities(catalog, identities)
    return counts
