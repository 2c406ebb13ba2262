"""The per-site state record: catalog-only state kept with the data, so ``reindex`` restores it.

Some state lives only in the catalog: a site's policy overrides (retention rules, quotas,
validation rules, set through the artifact API or PutBucketLifecycleConfiguration), its CORS
rules (PutBucketCors), its lifecycle rules (PutBucketLifecycleConfiguration; the retention
rule among them is the ``retention_days`` override), what the artifact API changes on an
artifact (pins, status and action edits), because a Backend cannot rewrite an object's
metadata in place, and S3 tags of objects and of the bucket.
So that neither a lost catalog, nor ``reindex``, nor ``migrate`` to another backend loses
it, :class:`SiteStateStore` keeps a copy in each site's own bucket, in the object
:data:`SITE_STATE_KEY`:

* it is rewritten from a catalog snapshot after every change of that state (the catalog
  calls :meth:`SiteStateStore.save` as a state listener), and read back by
  :func:`policy.reindex.reindex`; ``migrate`` copies it like any other object;
* it lives in a reserved area (:data:`core.reserved.SITE_STATE_PREFIX`): S3 clients can
  neither list, read, write nor delete it (``policy.validation``); it is written through
  the translator, below the catalog and quota wrappers, so it is never indexed or counted;
* a failed write is logged, never fails the change (the catalog stays the live state);
  after writing, the snapshot is taken again and written again if another process changed
  the state meanwhile, so concurrent replicas converge on the latest state.

Format: JSON ``{"format": "pagewright-site-state", "version": 1, "site", "overrides",
"cors": [rule...] | null, "artifacts": {key: {"etag", "pinned", "status", "action"}},
"object_tags": {key: {"etag", "tags"}}, "bucket_tags": {...} | null,
"lifecycle": [rule...] | null, "object_lock": {"enabled": true, "mode", "days", "years"}
| null}`` (``cors`` as ``policy.cors.rules_to_json`` writes it,
``lifecycle`` as ``policy.lifecycle.rules_to_json``). Only artifacts whose state differs
from what the object itself carries are listed (pinned, or a status/action other than its
``x-amz-meta-status``/``-action``), and only objects (any key) that have S3 tags; an entry
applies only to an object with the same ETag (a replaced artifact is a new artifact).
``object_lock`` is the site's object lock configuration (None: not enabled; ``mode`` with
``days`` or ``years``: its default retention, else all three null); versions' own locks are
not here (one entry per locked version would not fit a record rewritten whole on every
change: ``policy.lock_records`` keeps one small record per version).
``cors``, ``object_tags``, ``bucket_tags``, ``lifecycle`` and ``object_lock`` were added to
version 1 without a new version: a record written before them reads as holding none, and an
older gateway ignores them. Not included: API keys (global, and secrets: only
``pagewright-gateway backup`` carries them), the corrupt mark (``verify`` and the scrub
find it again from the bytes), quota reservations (transient).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

import anyio

from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.object_lock import MODES, BucketLock, DefaultRetention, LockMode
from core.reserved import SITE_STATE_PREFIX
from core.streams import BytesBody
from policy import lifecycle
from policy.cors import CorsRules, rules_from_json, rules_to_json
from policy.model import ACTION, STATUS, ArtifactFilter, Catalog, ObjectRecord, every_record
from policy.record_objects import RecordTooLarge, parse_record, read_record
from policy.tags import valid_tags
from translators.base import Backend, WriteConditions, WriteMetadata

log = logging.getLogger(__name__)

SITE_STATE_KEY: Final = SITE_STATE_PREFIX + "state.json"
FORMAT: Final = "pagewright-site-state"
VERSION: Final = 1
#: A record larger than this is refused on read (it lists only artifacts with edited state).
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024
_CONTEXT = RequestContext(request_id="site-state", principal="pagewright-site-state")
_SAVE_ROUNDS = 3
#: Reads a site's object lock configuration (None: not enabled).
LockConfiguration = Callable[[str], Awaitable[BucketLock | None]]


class SiteStateError(ValueError):
    """A state record that is not valid JSON of a known format and version."""


@dataclass(frozen=True)
class ArtifactState:
    """The catalog-only state of one artifact, for the object with ``etag``."""

    etag: str
    pinned: bool
    status: str | None
    action: str | None


@dataclass(frozen=True)
class TaggedObject:
    """The S3 tags of one object, for the object with ``etag``."""

    etag: str
    tags: dict[str, str]


@dataclass(frozen=True)
class SiteState:
    """A site's catalog-only state (see the module docstring)."""

    site: str
    overrides: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, ArtifactState] = field(default_factory=dict)
    cors: CorsRules | None = None
    object_tags: dict[str, TaggedObject] = field(default_factory=dict)
    bucket_tags: dict[str, str] | None = None
    lifecycle: lifecycle.LifecycleRules | None = None
    object_lock: BucketLock | None = None

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "site": self.site,
            "overrides": self.overrides,
            "cors": None if self.cors is None else rules_to_json(self.cors),
            "artifacts": {
                key: {
                    "etag": a.etag,
                    "pinned": a.pinned,
                    "status": a.status,
                    "action": a.action,
                }
                for key, a in sorted(self.artifacts.items())
            },
            "object_tags": {
                key: {"etag": t.etag, "tags": t.tags} for key, t in sorted(self.object_tags.items())
            },
            "bucket_tags": self.bucket_tags,
            "lifecycle": None
            if self.lifecycle is None
            else lifecycle.rules_to_json(self.lifecycle),
            "object_lock": _lock_to_json(self.object_lock),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SiteState:
        """Parse a record; :class:`SiteStateError` unless it is one of this format/version."""
        try:
            document = parse_record(data, FORMAT, VERSION)
        except ValueError as error:
            raise SiteStateError(str(error)) from None
        try:
            overrides = document["overrides"]
            if not isinstance(overrides, dict):
                raise TypeError("overrides is not an object")
            artifacts = {
                str(key): ArtifactState(
                    etag=str(entry["etag"]),
                    pinned=bool(entry["pinned"]),
                    status=_optional_text(entry["status"]),
                    action=_optional_text(entry["action"]),
                )
                for key, entry in dict(document["artifacts"]).items()
            }
            cors = document.get("cors")
            rules = None if cors is None else rules_from_json(cors)
            object_tags = {
                str(key): TaggedObject(str(entry["etag"]), valid_tags(entry["tags"], "object"))
                for key, entry in dict(document.get("object_tags") or {}).items()
            }
            bucket = document.get("bucket_tags")
            bucket_tags = None if bucket is None else valid_tags(bucket, "bucket")
            rules_document = document.get("lifecycle")
            lifecycle_rules = (
                None if rules_document is None else lifecycle.rules_from_json(rules_document)
            )
            return cls(
                str(document["site"]),
                dict(overrides),
                artifacts,
                rules,
                object_tags=object_tags,
                bucket_tags=bucket_tags,
                lifecycle=lifecycle_rules,
                object_lock=_lock_from_json(document.get("object_lock")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SiteStateError(f"malformed record: {error}") from None


def _lock_to_json(lock: BucketLock | None) -> dict[str, Any] | None:
    if lock is None:
        return None
    rule = lock.default
    return {
        "enabled": True,
        "mode": None if rule is None else rule.mode,
        "days": None if rule is None else rule.days,
        "years": None if rule is None else rule.years,
    }


def _lock_from_json(document: Any) -> BucketLock | None:
    if document is None:
        return None
    if not isinstance(document, dict) or document.get("enabled") is not True:
        raise TypeError("object_lock must be null or an enabled configuration")
    mode, days, years = document.get("mode"), document.get("days"), document.get("years")
    if mode is None:
        if days is not None or years is not None:
            raise ValueError("object_lock: days or years without a mode")
        return BucketLock()
    if mode not in MODES:
        raise ValueError(f"object_lock: unknown mode {mode!r}")
    for value in (days, years):
        if value is not None and (type(value) is not int or value <= 0):
            raise ValueError("object_lock: days and years are positive integers")
    if (days is None) == (years is None):
        raise ValueError("object_lock: a default retention has days or years")
    return BucketLock(DefaultRetention(cast("LockMode", mode), days, years))


def _optional_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("status and action must be strings or null")
    return value


def artifact_state(record: ObjectRecord) -> ArtifactState | None:
    """The catalog-only state of ``record``, or None when it has none worth keeping."""
    if not record.is_artifact:
        return None
    uploaded = record.user_metadata
    edited = (record.status, record.action) != (uploaded.get(STATUS), uploaded.get(ACTION))
    if not record.pinned and not edited:
        return None
    return ArtifactState(record.etag, record.pinned, record.status, record.action)


async def snapshot(
    catalog: Catalog, site: str, object_lock: LockConfiguration | None = None
) -> SiteState:
    """The catalog's current catalog-only state of ``site`` (its object lock configuration
    read with ``object_lock``; None: recorded as not enabled)."""
    artifacts: dict[str, ArtifactState] = {}
    async for record in every_record(catalog, ArtifactFilter(site=site), artifacts_only=True):
        state = artifact_state(record)
        if state is not None:
            artifacts[record.key] = state
    tagged = {
        key: TaggedObject(etag, dict(tags))
        for key, etag, tags in await catalog.tagged_objects(site)
    }
    overrides = dict(await catalog.site_overrides(site))
    return SiteState(
        site,
        overrides,
        artifacts,
        await catalog.bucket_cors(site),
        object_tags=tagged,
        bucket_tags=await catalog.bucket_tags(site),
        lifecycle=await catalog.bucket_lifecycle(site),
        object_lock=None if object_lock is None else await object_lock(site),
    )


async def load_site_state(backend: Backend, site: str) -> SiteState | None:
    """The record stored in ``site``'s bucket of ``backend`` (a translator), or None when
    there is none. ``SiteStateError`` when it is unreadable; backend errors propagate."""
    try:
        data = await read_record(backend, _CONTEXT, site, SITE_STATE_KEY, MAX_RECORD_BYTES)
    except RecordTooLarge as error:
        raise SiteStateError(str(error)) from None
    if data is None:
        return None
    state = SiteState.from_json(data)
    if state.site != site:
        raise SiteStateError(f"the record of site {site!r} names site {state.site!r}")
    return state


class SiteStateStore:
    """Writes each site's record into ``backend`` (the translator, below every wrapper)
    from snapshots of ``catalog`` (and of ``object_lock``, which reads sites' object lock
    configuration). Register :meth:`save` as the catalog's state listener."""

    def __init__(
        self, backend: Backend, catalog: Catalog, object_lock: LockConfiguration | None = None
    ) -> None:
        self._backend = backend
        self._catalog = catalog
        self._object_lock = object_lock
        self._locks: dict[str, anyio.Lock] = {}

    async def save(self, site: str) -> None:
        """Write ``site``'s record from the catalog's current state; never raises (a failure
        is logged: the record is a copy, the catalog keeps the live state)."""
        lock = self._locks.setdefault(site, anyio.Lock())
        async with lock:
            try:
                state = await snapshot(self._catalog, site, self._object_lock)
                for _ in range(_SAVE_ROUNDS):
                    await self._write(state)
                    again = await snapshot(self._catalog, site, self._object_lock)
                    if again == state:
                        return
                    state = again
                log.warning("site state of %s kept changing while it was saved", site)
            except S3Error as error:
                if error.code == "NoSuchBucket":
                    return  # overrides of a site without a bucket: nothing to keep them with
                log.error(
                    "could not save the site state record; reindex would not restore it",
                    extra={"site": site, "code": error.code, "reason": error.message},
                )
            except Exception:
                log.exception(
                    "could not save the site state record; reindex would not restore it",
                    extra={"site": site},
                )

    async def _write(self, state: SiteState) -> None:
        data = state.to_json()
        await self._backend.put_object(
            _CONTEXT,
            state.site,
            SITE_STATE_KEY,
            HashingPayload(BytesBody(data), len(data), ("SHA256",)),
            WriteMetadata({"content-type": "application/json"}),
            WriteConditions(),
        )
