"""What PageWright knows about sites and build artifacts, independent of storage.

A bucket is a site; its name is the site id (stricter than S3 so every backend can hold
it). ``builds/<build_id>.<ext>`` is a build artifact; any other key is an ordinary object
that still counts against quotas. The catalog (:class:`Catalog`) indexes both; the backend
stays the source of truth (``reindex`` rebuilds the catalog from it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from policy.cors import CorsRules

if TYPE_CHECKING:  # policy.lifecycle imports policy.policies, which imports this module
    from policy.lifecycle import LifecycleRules
    from translators.versioning import Version

Compression = Literal["gzip", "zstd", "none"]
SortField = Literal["created_at", "size", "build_id", "key"]

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
ARTIFACT_KEY = re.compile(
    r"^builds/(?P<build>[A-Za-z0-9][A-Za-z0-9._-]{0,127}?)\.(?P<ext>tar\.gz|tgz|tar\.zst|tar)$"
)
_COMPRESSION: dict[str, Compression] = {
    "tar.gz": "gzip",
    "tgz": "gzip",
    "tar.zst": "zstd",
    "tar": "none",
}
ARTIFACT_PREFIX = "builds/"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tar")
#: User-metadata names (x-amz-meta-*) that are artifact attributes.
STATUS, ACTION, CREATOR = "status", "action", "creator"


@dataclass(frozen=True)
class ArtifactName:
    build_id: str
    compression: Compression


def parse_artifact_key(key: str) -> ArtifactName | None:
    """The build id and compression of an artifact key, or None for an ordinary object."""
    match = ARTIFACT_KEY.match(key)
    if match is None:
        return None
    return ArtifactName(match.group("build"), _COMPRESSION[match.group("ext")])


def artifact_key_problem(key: str) -> str | None:
    """Why ``key`` looks like a build artifact but is not a valid artifact key, or None.

    A key under ``builds/`` whose name ends in an archive extension in any letter case
    (``.tar.gz``, ``.tgz``, ``.tar.zst``, ``.tar``) must be exactly
    ``builds/<build_id>.<ext>``, so that no spelling (``builds/v1.TAR.GZ``,
    ``builds/.hidden.tar.gz``, ``builds/bad id.tar.gz``, ``builds/a/b.tar``) stores an
    archive that escapes artifact validation, the artifact API and retention.
    """
    if not key.startswith(ARTIFACT_PREFIX) or parse_artifact_key(key) is not None:
        return None
    suffix = next((s for s in ARCHIVE_SUFFIXES if key.lower().endswith(s)), None)
    if suffix is None:
        return None
    name = key[len(ARTIFACT_PREFIX) : -len(suffix)]
    if not key.endswith(suffix):
        return "the archive extension must be lower-case (.tar.gz, .tgz, .tar.zst or .tar)"
    if "/" in name:
        return "an artifact key is builds/<build_id>.<ext>, with no '/' in the build id"
    return (
        "a build id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def is_site_id(name: str) -> bool:
    return SITE_ID.match(name) is not None


@dataclass(frozen=True)
class ObjectRecord:
    """One catalog row: an object, and when ``build_id`` is set, a build artifact."""

    site: str
    key: str
    size: int
    etag: str
    created_at: datetime
    creator: str
    content_type: str = "binary/octet-stream"
    build_id: str | None = None
    compression: Compression | None = None
    sha256: str | None = None  # hex
    status: str | None = None
    action: str | None = None
    pinned: bool = False
    corrupt: bool = False
    user_metadata: dict[str, str] = field(default_factory=dict)
    #: The object's S3 tag set (catalog-only state: it goes with the object, see
    #: policy.catalog_backend); {} when it has none.
    tags: dict[str, str] = field(default_factory=dict)
    #: The version this row describes on a versioned site (``null``: written while not
    #: versioning); None on a site never versioned, or not known (a row from before 0012).
    version_id: str | None = None

    @property
    def is_artifact(self) -> bool:
        return self.build_id is not None


@dataclass(frozen=True)
class VersionRecord:
    """One version of a key as the catalog knows it (``Catalog.key_versions``): the current
    version (its ``objects`` row: ``is_latest``), a noncurrent version or a delete marker.
    The artifact fields are what the catalog knew of the version while it was current; None
    when unknown (never seen current through this gateway, or listed only by a reindex)."""

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int
    etag: str | None
    created_at: datetime
    sha256: str | None = None
    build_id: str | None = None
    status: str | None = None
    creator: str | None = None


@dataclass(frozen=True)
class VersionPage:
    """A page of a key's versions, newest first; ``next_cursor`` None on the last page."""

    items: list[VersionRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class ArtifactFilter:
    """Filters for listing a site's artifacts, or searching across sites (``site`` None).

    ``metadata`` matches user-metadata fields exactly (all must match); ``tags`` the
    object's S3 tags, as (key, value) pairs that must all be among them.
    """

    site: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    status: str | None = None
    action: str | None = None
    creator: str | None = None
    pinned: bool | None = None
    corrupt: bool | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Page:
    """A page of records and the opaque cursor of the next one (None: last page)."""

    items: list[ObjectRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class Usage:
    """A site's exact usage: committed objects plus reservations of uploads in flight."""

    bytes: int
    objects: int
    artifacts: int
    reserved_bytes: int = 0
    reserved_artifacts: int = 0
    #: The part of ``bytes`` held by noncurrent versions (versioned sites), and how many
    #: noncurrent versions there are (delete markers hold nothing and are not counted).
    noncurrent_bytes: int = 0
    noncurrent_versions: int = 0


@dataclass(frozen=True)
class Lease:
    """A gateway process's hold on its quota reservations: live until ``expires_at``.

    ``node`` and ``process`` identify the process on its machine (see policy.leases), so
    a process on the same machine can tell at once that it is gone."""

    id: str
    node: str | None
    process: str | None
    expires_at: datetime


@dataclass(frozen=True)
class UploadReservation:
    """The reservation of a multipart upload, which lives as long as the upload."""

    id: str
    site: str
    key: str
    upload_id: str


@dataclass(frozen=True)
class SitePolicy:
    """Limits, quotas, retention and validation rules. None = no limit / rule off.

    Global defaults come from the config file; per-site overrides from the catalog;
    :meth:`merged` lays overrides over defaults field by field.
    """

    max_object_size: int | None = None
    quota_bytes: int | None = None
    quota_artifacts: int | None = None
    retention_keep_last: int | None = None
    retention_days: int | None = None
    validate_archives: bool = True
    required_member: str | None = None
    max_members: int | None = 100_000
    max_uncompressed_bytes: int | None = 10 * 1024**3
    max_compression_ratio: float | None = 200.0
    # Rate limits of the site, shared by every principal (policy.rate_limits); None or 0:
    # no limit. A burst of None or 0 is one second's worth.
    site_requests_per_second: float | None = None
    site_request_burst: int | None = None
    site_bytes_per_second: int | None = None
    site_byte_burst: int | None = None
    # Default server-side encryption of new objects (PutBucketEncryption; policy.encryption):
    # None (none), "AES256" (SSE-S3) or "aws:kms" with a key id of the gateway's key ring
    # (None: the ring's first).
    default_encryption: str | None = None
    default_kms_key_id: str | None = None

    def merged(self, overrides: dict[str, Any]) -> SitePolicy:
        known = {f.name for f in fields(SitePolicy)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown policy fields: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


class QuotaExceeded(Exception):
    """A reservation would take a site past a quota; ``which`` is bytes or artifacts."""

    def __init__(self, which: Literal["bytes", "artifacts"], limit: int, usage: Usage) -> None:
        self.which = which
        self.limit = limit
        self.usage = usage
        super().__init__(f"{which} quota {limit} exceeded")


class Catalog(Protocol):
    """The index of every object and artifact, shared by all gateway replicas.

    Implementations are safe for concurrent use by many processes (SQLite in WAL mode for
    one host; PostgreSQL for many). Every method is a single transaction.
    """

    async def start(self) -> None:
        """Connect and bring the schema to the latest migration."""
        ...

    async def close(self) -> None: ...

    async def upsert(self, record: ObjectRecord, *, upload_id: str | None = None) -> None:
        """Insert or replace the record of (site, key); keeps ``pinned``/``corrupt`` of an
        existing row only if the new record says so (a new upload is a new artifact), and
        tags only those of ``record`` (with ``upload_id``: those that multipart upload asked
        for, see :meth:`set_upload_tags`)."""
        ...

    async def delete(self, site: str, key: str) -> None:
        """Remove the row of (site, key) with its tags; absent rows are fine."""
        ...

    async def delete_site(self, site: str) -> None: ...

    async def get(self, site: str, key: str) -> ObjectRecord | None: ...

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
        """Records matching ``query``, stably ordered by ``sort`` then key, paged by cursor."""
        ...

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
        """Change artifact flags; KeyError if absent."""
        ...

    async def usage(self, site: str) -> Usage: ...

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
        """Atomically add a reservation unless committed usage plus every reservation plus
        this one would pass ``policy``'s quotas (QuotaExceeded). Re-reserving an id adds.
        A new reservation belongs to the multipart ``upload`` (key, upload id) when given,
        else to this process's lease (:attr:`lease_id`)."""
        ...

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation (the upload committed or failed). Unknown ids are ignored."""
        ...

    async def release_pending(self) -> int:
        """Drop the reservations :meth:`release` could not drop during a catalog outage;
        how many."""
        ...

    @property
    def lease_id(self) -> str:
        """This process's lease: the owner of the single-write reservations it takes."""
        ...

    async def renew_lease(self, node: str | None, process: str | None, expires: datetime) -> None:
        """Create or extend this process's lease until ``expires``."""
        ...

    async def drop_lease(self) -> None:
        """Give up this process's lease (at shutdown): what it still holds is reclaimable."""
        ...

    async def leases(self) -> Sequence[Lease]:
        """Every lease, live or not yet reclaimed."""
        ...

    async def reclaim_reservations(self, now: datetime, dead: Collection[str]) -> int:
        """Drop the single-write reservations that no live lease owns (a lease is live
        while it has not expired at ``now`` and is not in ``dead``), then the expired and
        dead leases. Multipart upload reservations are left alone. Returns how many
        reservations were dropped."""
        ...

    async def upload_reservations(self) -> Sequence[UploadReservation]:
        """Every multipart upload's reservation."""
        ...

    async def site_overrides(self, site: str) -> dict[str, Any]: ...

    async def set_site_overrides(self, site: str, overrides: dict[str, Any]) -> None: ...

    async def bucket_cors(self, site: str) -> CorsRules | None:
        """``site``'s CORS rules (policy.cors); None: no CORS configuration."""
        ...

    async def set_bucket_cors(self, site: str, rules: CorsRules | None) -> None: ...

    async def bucket_lifecycle(self, site: str) -> LifecycleRules | None:
        """``site``'s stored lifecycle rules (policy.lifecycle; not the retention rule,
        which is the ``retention_days`` override); None: none."""
        ...

    async def set_bucket_lifecycle(self, site: str, rules: LifecycleRules | None) -> None:
        """Replace ``site``'s stored lifecycle rules only (None: remove them)."""
        ...

    async def all_bucket_lifecycle(self) -> dict[str, LifecycleRules]:
        """Every site's stored lifecycle rules, by site."""
        ...

    async def versioning_status(self, site: str) -> str | None:
        """``site``'s versioning as last set through the gateway (policy.catalog_versions);
        None: never versioned."""
        ...

    async def set_versioning_status(self, site: str, status: str) -> None: ...

    async def set_versions(self, site: str, key: str, history: Sequence[Version]) -> None:
        """Make ``key``'s version rows what ``history`` (the backend's listing of the key,
        newest first; empty: nothing left) says, keeping what the catalog knew of each
        version (policy.catalog_versions)."""
        ...

    async def prune_versions(self, site: str, keep: Collection[str]) -> None:
        """Drop the version rows of ``site``'s keys not in ``keep`` (after a reindex)."""
        ...

    async def key_versions(
        self, site: str, key: str, *, cursor: str | None = None, limit: int = 100
    ) -> VersionPage:
        """``key``'s versions newest first (the current one first), paged like ``list``."""
        ...

    async def replace_lifecycle(
        self, site: str, rules: LifecycleRules | None, retention_days: int | None
    ) -> None:
        """Replace ``site``'s stored lifecycle rules and set its ``retention_days`` override
        (None: cleared) in one transaction."""
        ...

    # S3 tags (catalog-only state; policy.tags holds the rules)

    async def object_tags(self, site: str, key: str) -> tuple[str, dict[str, str]] | None:
        """(ETag, tags) of the object's row; None: no such row."""
        ...

    async def set_object_tags(self, site: str, key: str, tags: dict[str, str]) -> bool:
        """Replace the object's tags ({}: none); False when there is no row of it."""
        ...

    async def tagged_objects(self, site: str) -> Sequence[tuple[str, str, dict[str, str]]]:
        """(key, ETag, tags) of every object of ``site`` that has tags, by key."""
        ...

    async def bucket_tags(self, site: str) -> dict[str, str] | None:
        """``site``'s bucket tag set; None: it has none."""
        ...

    async def set_bucket_tags(self, site: str, tags: dict[str, str] | None) -> None:
        """Replace ``site``'s bucket tag set; None removes it."""
        ...

    async def set_upload_tags(
        self, site: str, upload_id: str, key: str, tags: dict[str, str]
    ) -> None:
        """Keep the tags a multipart upload asked for until it completes or is aborted."""
        ...

    async def drop_upload_tags(self, site: str, upload_id: str) -> None:
        """Forget the tags of an upload that was aborted."""
        ...


async def every_record(
    catalog: Catalog,
    query: ArtifactFilter,
    *,
    artifacts_only: bool,
    sort: SortField = "key",
    descending: bool = False,
) -> AsyncIterator[ObjectRecord]:
    """Every record of ``catalog`` matching ``query``, in ``sort`` order, read a page of
    1000 at a time (the cursor's guarantees of :meth:`Catalog.list` hold)."""
    cursor: str | None = None
    while True:
        page = await catalog.list(
            query,
            artifacts_only=artifacts_only,
            sort=sort,
            descending=descending,
            cursor=cursor,
            limit=1000,
        )
        for record in page.items:
            yield record
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
