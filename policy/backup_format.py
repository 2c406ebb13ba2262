"""The catalog backup file's format: its version, its entries as values, its counts.

:mod:`policy.backup` writes a file and restores from it; :mod:`policy.backup_read` reads
and checks one. A backup holds the catalog's own state:

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
  its own;
* versioned sites (``policy.catalog_versions``): each site's versioning state, every
  version row (noncurrent versions and delete markers, with what the catalog knew of them;
  an object line's ``version_id`` names its current version) and the per-key noncurrent
  totals kept from before 0012_object_versions (``policy.backup_versions``).

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
    {"type": "site_object_lock", "site": ..., "mode": ... | null, "days": N | null,
     "years": N | null}
    {"type": "version_lock", "site": ..., "key": ..., "version_id": ..., "mode": ... | null,
     "retain_until": "..." | null, "legal_hold": true | false}
    {"type": "site_versioning", "site": ..., "status": "Enabled" | "Suspended"}
    {"type": "object_version", "site": ..., "key": ..., "version_id": ...,
     "is_delete_marker": ..., "is_latest": ..., "size": N, "etag": ... | null,
     "last_modified": "...", "creator": ..., "content_type": ..., "build_id": ...,
     "compression": ..., "sha256": ..., "status": ..., "action": ... (each | null)}
    {"type": "noncurrent_total", "site": ..., "key": ..., "bytes": N, "versions": N}
    {"type": "end", "objects": N, "site_policies": N, "api_keys": N, "users": N,
     "access_keys": N, "user_policies": N, "site_grants": N, "site_access": N,
     "object_acls": N, "site_cors": N, "bucket_tags": N, "site_lifecycle": N,
     "site_object_lock": N, "version_locks": N, "site_versioning": N,
     "object_versions": N, "noncurrent_totals": N}

Identity, access, CORS, tag, lifecycle, object lock and versioning lines (and an object
line's ``tags`` and ``version_id``) were added to version 1 without a new version: files
written before them (whose end line has no such counts, whose object lines have no tags)
read as holding none.

The end line makes a truncated file detectable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from core.object_lock import BucketLock, ObjectLock
from policy.bucket_access import BucketAccess, Grant
from policy.catalog_api_keys import ApiKeyRecord
from policy.cors import CorsRules
from policy.identity_model import AccessKeyRecord, SiteGrant, User, UserPolicy
from policy.lifecycle import LifecycleRules
from policy.model import ObjectRecord

FORMAT: Final = "pagewright-catalog-backup"
VERSION: Final = 1


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


@dataclass(frozen=True)
class SiteObjectLockEntry:
    """A backed-up site's object lock configuration."""

    site: str
    lock: BucketLock


@dataclass(frozen=True)
class VersionLockEntry:
    """A backed-up version's lock (retention, and a noncurrent version's legal hold)."""

    site: str
    key: str
    version_id: str
    lock: ObjectLock


@dataclass(frozen=True)
class VersionRowEntry:
    """A backed-up row of a versioning table (``policy.backup_versions``): its line's
    ``type`` and the row's columns, checked against the table."""

    kind: str
    values: dict[str, Any]


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
    site_object_lock: int = 0
    version_locks: int = 0
    site_versioning: int = 0
    object_versions: int = 0
    noncurrent_totals: int = 0

    def text(self) -> str:
        return (
            f"{self.objects} object row(s), {self.site_policies} site polic(ies), "
            f"{self.api_keys} API key(s), {self.users} user(s), "
            f"{self.access_keys} access key(s), {self.user_policies} user polic(ies), "
            f"{self.site_grants} site grant(s), {self.site_access} site access setting(s), "
            f"{self.object_acls} object ACL(s), {self.site_cors} CORS configuration(s), "
            f"{self.bucket_tags} bucket tag set(s), "
            f"{self.site_lifecycle} lifecycle configuration(s), "
            f"{self.site_object_lock} object lock configuration(s), "
            f"{self.version_locks} version lock(s), "
            f"{self.site_versioning} versioning state(s), "
            f"{self.object_versions} version row(s), "
            f"{self.noncurrent_totals} noncurrent total(s)"
        )


#: Entry type in the file -> its BackupCounts field (the end line's name for the count).
COUNTED: Final = {
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
    "site_object_lock": "site_object_lock",
    "version_lock": "version_locks",
    "site_versioning": "site_versioning",
    "object_version": "object_versions",
    "noncurrent_total": "noncurrent_totals",
}
#: Counts an end line written before identities were backed up does not carry.
LATER_COUNTS: Final = frozenset(
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
        "site_object_lock",
        "version_locks",
        "site_versioning",
        "object_versions",
        "noncurrent_totals",
    }
)


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
    | SiteObjectLockEntry
    | VersionLockEntry
    | VersionRowEntry
)
"""A backup line's value: an object row, a site's overrides (site, overrides), an API key,
an identity row, or one of the entries above."""


def time_text(value: datetime) -> str:
    """``value`` as the file writes a time: ISO 8601 in UTC."""
    return value.astimezone(UTC).isoformat()


def optional_time_text(value: datetime | None) -> str | None:
    """:func:`time_text`, None kept."""
    return None if value is None else time_text(value)
