"""The catalog's tables, as SQLAlchemy Core metadata shared by queries and migrations.

Keys, site ids and build ids compare byte-wise on every database (``C`` collation on
PostgreSQL, SQLite's default ``BINARY``), so cursor order matches S3 listing order.
Timestamps are stored in UTC and always read back timezone-aware.

The schema itself is created only by the Alembic migrations in ``policy/migrations``;
these definitions must stay equal to what the latest migration builds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; naive values are taken to be UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite keeps the text form only; one fixed UTC form keeps text order = time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def byte_text() -> Any:
    """Text compared byte-wise (``C`` collation on PostgreSQL)."""
    return Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def json_column_type() -> Any:
    """JSON, as JSONB on PostgreSQL."""
    return JSON().with_variant(postgresql.JSONB(), "postgresql")


metadata = MetaData()

objects = Table(
    "objects",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("key", byte_text(), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(80), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("creator", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("build_id", byte_text(), nullable=True),
    Column("compression", String(8), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("status", Text, nullable=True),
    Column("action", Text, nullable=True),
    Column("pinned", Boolean, nullable=False),
    Column("corrupt", Boolean, nullable=False),
    Column("user_metadata", json_column_type(), nullable=False),
    # The object's S3 tag set (policy.tags); NULL: none.
    Column(
        "tags",
        JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql"),
        nullable=True,
    ),
    # The current version's id on a versioned site ("null": written while not versioning);
    # NULL on a site never versioned, or for a row written before 0012_object_versions.
    Column("version_id", byte_text(), nullable=True),
    Index("ix_objects_site_created", "site", "created_at", "key"),
    Index("ix_objects_site_build", "site", "build_id", "key"),
    Index("ix_objects_site_size", "site", "size", "key"),
    Index("ix_objects_site_status", "site", "status"),
    Index("ix_objects_site_action", "site", "action"),
    Index("ix_objects_site_creator", "site", "creator"),
    Index("ix_objects_created", "created_at"),
    # Whether a site has any tagged object, at once (policy.tag_presence).
    Index(
        "ix_objects_site_tagged",
        "site",
        sqlite_where=text("tags IS NOT NULL"),
        postgresql_where=text("tags IS NOT NULL"),
    ),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("site", byte_text(), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("artifacts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # A single write's reservation is held under its process's lease; a multipart upload's
    # belongs to the upload (lease_id NULL) for as long as the upload exists.
    Column("lease_id", Text, nullable=True),
    Column("upload_key", byte_text(), nullable=True),
    Column("upload_id", Text, nullable=True),
    Index("ix_reservations_site", "site"),
    Index("ix_reservations_lease", "lease_id"),
)

#: One row per running gateway process: its quota reservations are live while it renews
#: ``expires_at``. ``node`` and ``process`` identify it on its machine (policy.leases).
leases = Table(
    "leases",
    metadata,
    Column("id", Text, primary_key=True),
    Column("node", Text, nullable=True),
    Column("process", Text, nullable=True),
    Column("expires_at", UtcDateTime, nullable=False),
)

site_policies = Table(
    "site_policies",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("overrides", json_column_type(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("principal", Text, nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),  # None: never
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    Index("ix_api_keys_principal", "principal"),
)

# Identities (policy.identities): IAM users, their access keys and inline policies, and the
# site roles granted to them. A user's rows go with the user (ON DELETE CASCADE; the store
# also deletes them itself, as SQLite enforces foreign keys only when asked to).

users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("user_id", name="uq_users_user_id"),
)

#: ``secret_sealed`` is the secret access key sealed by policy.secret_box, never plain text.
access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column(
        "user_name",
        String(64),
        ForeignKey("users.name", ondelete="CASCADE", name="fk_access_keys_user"),
        nullable=False,
    ),
    Column("secret_sealed", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Index("ix_access_keys_user", "user_name"),
)

user_policies = Table(
    "user_policies",
    metadata,
    Column(
        "user_name",
        String(64),
        ForeignKey("users.name", ondelete="CASCADE", name="fk_user_policies_user"),
        primary_key=True,
    ),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

site_grants = Table(
    "site_grants",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column(
        "user_name",
        String(64),
        ForeignKey("users.name", ondelete="CASCADE", name="fk_site_grants_user"),
        primary_key=True,
    ),
    Column("role", String(16), nullable=False),
    Index("ix_site_grants_user", "user_name"),
)

#: A site's access configuration (see policy.bucket_access); no row: the defaults.
bucket_access = Table(
    "bucket_access",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("policy", Text, nullable=True),
    Column("acl", json_column_type(), nullable=False),
    Column("public_access_block", json_column_type(), nullable=True),
    Column("ownership", Text, nullable=True),
)

#: Object ACLs other than the owner's private one (only kept while a site allows ACLs).
object_acls = Table(
    "object_acls",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("key", byte_text(), primary_key=True),
    Column("acl", json_column_type(), nullable=False),
)

#: A site's CORS configuration (policy.cors): its rules in order; no row: none.
bucket_cors = Table(
    "bucket_cors",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("rules", json_column_type(), nullable=False),
)

#: One row per background job (policy.jobs): who holds it until when (the lease that keeps
#: it to one replica at a time; ``holder`` NULL: nobody) and how its last run went.
jobs = Table(
    "jobs",
    metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_started_at", UtcDateTime, nullable=True),
    Column("last_finished_at", UtcDateTime, nullable=True),
    Column("last_duration_s", Float, nullable=True),
    Column("last_outcome", Text, nullable=True),
    Column("runs", BigInteger, nullable=False),
    Column("failures", BigInteger, nullable=False),
)

#: A bucket's S3 tag set (PutBucketTagging); no row: none.
bucket_tags = Table(
    "bucket_tags",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("tags", json_column_type(), nullable=False),
)

#: The tag set a multipart upload asked for (x-amz-tagging on CreateMultipartUpload), kept
#: until the upload completes (it becomes the object's) or is aborted.
upload_tags = Table(
    "upload_tags",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("upload_id", Text, primary_key=True),
    Column("key", byte_text(), nullable=False),
    Column("tags", json_column_type(), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

#: A site's lifecycle rules (PutBucketLifecycleConfiguration), as policy.lifecycle's
#: ``rules_to_json`` writes them, without the rule that is ``retention_days``; no row: none.
bucket_lifecycle = Table(
    "bucket_lifecycle",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("rules", json_column_type(), nullable=False),
)

#: A site's versioning state (``Enabled`` / ``Suspended``; no row: never versioned), as
#: the catalog backend saw it set (policy.catalog_versions).
site_versioning = Table(
    "site_versioning",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("status", String(16), nullable=False),
)

#: Per key of a versioned site, what its noncurrent versions held before
#: 0012_object_versions (no version ids): counted in usage until the key's versions are next
#: recorded in ``object_versions``, which drops the key's row (policy.catalog_versions).
noncurrent_versions = Table(
    "noncurrent_versions",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("key", byte_text(), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
    Column("versions", Integer, nullable=False),
)

#: Every noncurrent version and every delete marker of a versioned site's keys (the
#: current version is the key's ``objects`` row): what the backend lists of it, and what the
#: catalog knew of it while it was current (NULL: unknown). ``is_latest`` is set on a delete
#: marker that is its key's latest entry (policy.catalog_versions).
object_versions = Table(
    "object_versions",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("key", byte_text(), primary_key=True),
    Column("version_id", byte_text(), primary_key=True),
    Column("is_delete_marker", Boolean, nullable=False),
    Column("is_latest", Boolean, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(80), nullable=True),
    Column("last_modified", UtcDateTime, nullable=False),
    Column("creator", Text, nullable=True),
    Column("content_type", Text, nullable=True),
    Column("build_id", byte_text(), nullable=True),
    Column("compression", String(8), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("status", Text, nullable=True),
    Column("action", Text, nullable=True),
    Index("ix_object_versions_key_modified", "site", "key", "last_modified", "version_id"),
)

#: Sites with object lock enabled (a row each) and their default retention (policy.object_lock).
bucket_object_lock = Table(
    "bucket_object_lock",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("mode", String(16), nullable=True),
    Column("days", Integer, nullable=True),
    Column("years", Integer, nullable=True),
)

#: Each locked version's retention and legal hold (the latest version's legal hold is its
#: object row's ``pinned``: policy.object_lock).
object_locks = Table(
    "object_locks",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("key", byte_text(), primary_key=True),
    Column("version_id", byte_text(), primary_key=True),
    Column("mode", String(16), nullable=True),
    Column("retain_until", UtcDateTime, nullable=True),
    Column("legal_hold", Boolean, nullable=False),
)

#: The lock a multipart upload asked for, until it completes or is aborted (policy.object_lock).
upload_locks = Table(
    "upload_locks",
    metadata,
    Column("site", byte_text(), primary_key=True),
    Column("upload_id", byte_text(), primary_key=True),
    Column("mode", String(16), nullable=True),
    Column("retain_until", UtcDateTime, nullable=True),
    Column("legal_hold", Boolean, nullable=False),
)
