"""Versioning for the S3 translator, on the backend bucket's own S3 versioning.

* **State.** A gateway bucket's state (None, ``Enabled``, ``Suspended``) is the metadata
  entry ``pagewright-versioning`` of its marker (``.pagewright/buckets/<bucket>``). Enabling
  or suspending first makes sure the backend bucket holding the gateway bucket's objects
  (its own in ``bucket`` mapping, the shared one in ``prefix`` mapping) has versioning
  ``Enabled``: the translator never suspends a backend bucket, it applies S3's ``null`` rules
  itself. A backend refusing PutBucketVersioning, or accepting it without turning it on
  (rclone serve s3), makes enabling ``NotImplemented`` (501) naming the backend.
  Reads (GET/HEAD) trust the state they read for ``READ_STATE_TTL`` seconds, so a read
  costs one backend request; writes and deletes read it fresh.
* **Version ids** are the backend's, opaque, except the ``null`` entry of a key: the one
  the backend itself calls ``null`` (written before its bucket was versioned) or the one
  whose backend id the key's *null mapping* names: ``.pagewright/nulls/<bucket>/<key>``,
  an empty object whose metadata ``null-version`` is that id. A write (PutObject,
  completion) or delete on a never-versioned or Suspended gateway bucket in a versioned
  backend bucket records its new entry there once committed, then deletes the previous
  null entry (never-versioned: every other entry of the key), so no noncurrent version is
  left behind. A crash between the commit and that cleanup, or concurrent writes to one
  key, may leave an entry listed under its backend id (never a newer entry deleted).
* **Bookkeeping** (markers, null mappings) in a versioned backend bucket is rewritten in
  place: older backend versions and delete markers of those names are deleted.
* Reserved keys (:mod:`core.reserved`) are never versioned (:func:`status_for`).
* ListObjectVersions pages natively; :mod:`~.entries` puts a key's entries in order.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.errors import S3Error
from translators.base import GetOptions, GetResult, ObjectInfo
from translators.namespace import Location
from translators.s3.client import S3Store
from translators.s3.codec import read_object
from translators.s3.entries import BackendEntries, Entry, listed
from translators.s3.errors import error_code
from translators.s3.reads import S3Reads
from translators.versioning import (
    NULL_VERSION,
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
    find_version,
    marker_position,
    readable,
    status_for,
)

STATE_KEY = "pagewright-versioning"
#: Seconds a read trusts the versioning state it read last (see ``status_for_read``).
READ_STATE_TTL = 2.0
_READ_STATE_ENTRIES = 10_000
NULL_KEY = "null-version"
#: Backend codes refusing PutBucketVersioning (map_errors makes them InternalError).
_REFUSED = ("NotImplemented", "InvalidRequest", "MethodNotAllowed", "InvalidArgument")


class S3Versions:
    """The versioning methods of :class:`translators.s3.backend.S3Backend` for gateway
    buckets that have a state (see the module docstring)."""

    def __init__(
        self,
        store: S3Store,
        reads: S3Reads,
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.reads = reads
        self.name = name
        self.names = BackendEntries(store)
        self._clock = clock
        self._seen: dict[str, tuple[VersioningStatus | None, float]] = {}

    # State

    async def status(self, bucket: str) -> VersioningStatus | None:
        """The gateway bucket's state; ``NoSuchBucket``."""
        marker = self.store.namespace.bucket_marker(bucket)
        try:
            response: Any = await self.store.call(
                "HeadObject",
                lambda: self.store.client.head_object(Bucket=marker.container, Key=marker.name),
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            raise
        value = (response.get("Metadata") or {}).get(STATE_KEY)
        return value if value in ("Enabled", "Suspended") else None

    async def status_of(self, bucket: str, key: str) -> VersioningStatus | None:
        return status_for(key, await self.status(bucket))

    async def status_for_read(self, bucket: str) -> VersioningStatus | None:
        """:meth:`status` as a read reports it: remembered for :data:`READ_STATE_TTL`
        seconds, so a GET or HEAD costs no second backend request. Only the version id a
        read reports depends on it, and S3 itself takes time to show a versioning change;
        writes and deletes, whose effect depends on the state, read it fresh."""
        now = self._clock()
        seen = self._seen.get(bucket)
        if seen is not None and seen[1] > now:
            return seen[0]
        status = await self.status(bucket)
        if len(self._seen) >= _READ_STATE_ENTRIES:
            self._seen.clear()
        self._seen[bucket] = (status, now + READ_STATE_TTL)
        return status

    def forget(self, bucket: str) -> None:
        """This process changed ``bucket``'s state, or removed it."""
        self._seen.pop(bucket, None)

    async def set_status(self, bucket: str, status: VersioningStatus) -> None:
        await self.status(bucket)
        await self._version_backend(self.store.namespace.container_for(bucket))
        marker = self.store.namespace.bucket_marker(bucket)
        await self.names.rewrite(marker, {STATE_KEY: status})
        self.forget(bucket)

    async def _version_backend(self, container: str) -> None:
        """Turn on the backend bucket's versioning; ``NotImplemented`` if it cannot."""

        async def state() -> str:
            answer: Any = await self.store.call(
                "GetBucketVersioning",
                lambda: self.store.client.get_bucket_versioning(Bucket=container),
            )
            return str(answer.get("Status") or "")

        unsupported = S3Error(
            "NotImplemented",
            f"Bucket versioning is not supported by the {self.name} backend "
            f"at {self.store.endpoint}.",
        )
        try:
            if await state() == "Enabled":
                return
            await self.store.call(
                "PutBucketVersioning",
                lambda: self.store.client.put_bucket_versioning(
                    Bucket=container, VersioningConfiguration={"Status": "Enabled"}
                ),
            )
            enabled = await state() == "Enabled"
        except S3Error as error:
            cause = error.__cause__
            if error.code in _REFUSED or (cause is not None and error_code(cause) in _REFUSED):
                raise unsupported from error
            raise
        if not enabled:
            raise unsupported

    # The null mapping

    def _nulls(self, bucket: str, key: str) -> Location:
        return self.store.namespace.system("nulls", bucket, key)

    def nulls_prefix(self, bucket: str) -> str:
        """The name prefix of ``bucket``'s null mappings (removed with the bucket)."""
        return self.store.namespace.system("nulls", bucket).name + "/"

    async def null_id(self, bucket: str, key: str) -> str | None:
        """The backend id of ``key``'s null entry, as its null mapping names it."""
        mapping = self._nulls(bucket, key)
        try:
            response: Any = await self.store.call(
                "HeadObject",
                lambda: self.store.client.head_object(Bucket=mapping.container, Key=mapping.name),
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        value = (response.get("Metadata") or {}).get(NULL_KEY)
        return str(value) if value else None

    async def history(self, bucket: str, key: str) -> list[tuple[Version, str]]:
        """``key``'s entries newest first, with client ids, each with its backend id."""
        location = self.store.namespace.object(bucket, key)
        entries = await self.names.entries(location)
        null = await self.null_id(bucket, key) if entries else None
        return [
            (self._version(key, entry, null, position), entry.backend_id)
            for position, entry in enumerate(entries)
        ]

    def _version(self, key: str, entry: Entry, null: str | None, position: int) -> Version:
        client = NULL_VERSION if entry.backend_id in (NULL_VERSION, null) else entry.backend_id
        info = None
        if not entry.is_marker:
            info = ObjectInfo(key, entry.size, entry.etag, entry.last_modified, version_id=client)
        return Version(key, client, entry.last_modified, info, position)

    async def client_info(self, bucket: str, key: str, info: ObjectInfo) -> ObjectInfo:
        """``info`` read from the backend (its version id the backend's) as clients see it."""
        backend_id = info.version_id
        status = status_for(key, await self.status_for_read(bucket))
        if status is None:
            return info if backend_id is None else replace(info, version_id=None)
        if backend_id not in (None, NULL_VERSION) and backend_id != await self.null_id(bucket, key):
            return info
        return replace(info, version_id=NULL_VERSION)

    # Writes and deletes

    async def after_write(self, bucket: str, key: str, info: ObjectInfo) -> ObjectInfo:
        """Apply S3's rules once a write committed; ``info.version_id`` is the backend's
        (None: the backend bucket is not versioned, so neither is the gateway bucket)."""
        backend_id = info.version_id
        if backend_id is None:
            return info
        status = await self.status_of(bucket, key)
        if status == "Enabled":
            return info
        if backend_id == NULL_VERSION:
            return replace(info, version_id=None if status is None else NULL_VERSION)
        await self._make_null(bucket, key, backend_id, everything=status is None)
        return replace(info, version_id=None if status is None else NULL_VERSION)

    async def _make_null(self, bucket: str, key: str, backend_id: str, everything: bool) -> None:
        """Record ``backend_id`` as ``key``'s null entry, then delete the previous null entry
        (``everything``: every other entry) among the entries older than it, so a concurrent
        newer write is never removed (it may be left listed under its backend id)."""
        previous = await self.null_id(bucket, key)
        await self.names.rewrite(self._nulls(bucket, key), {NULL_KEY: backend_id})
        location = self.store.namespace.object(bucket, key)
        entries = [e.backend_id for e in await self.names.entries(location)]
        older = entries[entries.index(backend_id) + 1 :] if backend_id in entries else []
        dropped = [e for e in older if everything or e in (NULL_VERSION, previous)]
        await self.names.delete_ids(location, dropped)

    async def delete(self, bucket: str, key: str, version_id: str | None) -> DeleteOutcome:
        """Delete ``key`` or its entry ``version_id`` by the gateway bucket's state."""
        status = await self.status_of(bucket, key)
        location = self.store.namespace.object(bucket, key)
        if status is None and version_id not in (None, NULL_VERSION):
            return DeleteOutcome(version_id, False)
        if version_id is not None and status is not None:
            for entry, backend_id in await self.history(bucket, key):
                if entry.version_id == version_id:
                    await self.names.delete_ids(location, [backend_id])
                    if version_id == NULL_VERSION:
                        await self.names.remove(self._nulls(bucket, key))
                    return DeleteOutcome(version_id, entry.is_delete_marker)
            return DeleteOutcome(version_id, False)
        try:
            response: Any = await self.store.call(
                "DeleteObject",
                lambda: self.store.client.delete_object(
                    Bucket=location.container, Key=location.name
                ),
                BucketName=bucket,
                Key=key,
            )
        except S3Error as error:
            if error.code == "NoSuchBucket":
                raise S3Error("NoSuchBucket", BucketName=bucket) from None
            if error.code != "NoSuchKey":
                raise
            response = {}
        marker = response.get("VersionId")
        if status == "Enabled" and marker is not None:
            return DeleteOutcome(str(marker), True)
        if marker is None or marker == NULL_VERSION:
            if status is None:
                return DeleteOutcome(version_id, False)
            return DeleteOutcome(NULL_VERSION, True)
        if status is None:
            await self.names.purge(location, None)
            await self.names.remove(self._nulls(bucket, key))
            return DeleteOutcome(version_id, False)
        await self._make_null(bucket, key, str(marker), everything=False)
        return DeleteOutcome(NULL_VERSION, True)

    # Reads

    async def head(self, bucket: str, key: str, version_id: str) -> Version:
        entry, backend_id = await self._find(bucket, key, version_id)
        if entry.info is None:
            return entry
        found = await self.store.find(bucket, key, backend_id)
        return replace(entry, info=replace(found.info, version_id=entry.version_id))

    async def get(self, bucket: str, key: str, version_id: str, options: GetOptions) -> GetResult:
        entry, backend_id = await self._find(bucket, key, version_id)
        readable(entry)
        result = await self.reads.get_object(bucket, key, options, backend_id)
        return replace(result, info=replace(result.info, version_id=entry.version_id))

    async def _find(self, bucket: str, key: str, version_id: str) -> tuple[Version, str]:
        history = await self.history(bucket, key)
        entry = find_version([v for v, _ in history], key, version_id)
        return entry, next(b for v, b in history if v is entry)

    async def keeps_manifest(self, bucket: str, key: str, token: str) -> bool:
        """Whether an entry of ``key`` in a versioned gateway ``bucket`` names manifest
        ``token`` (a HEAD per object version; False for a never-versioned bucket)."""
        try:
            if await self.status_of(bucket, key) is None:
                return False
        except S3Error as error:
            if error.code == "NoSuchBucket":
                return False
            raise
        location = self.store.namespace.object(bucket, key)
        for entry in await self.names.entries(location):
            if entry.is_marker:
                continue
            try:
                response: Any = await self.store.call(
                    "HeadObject",
                    functools.partial(
                        self.store.client.head_object,
                        Bucket=location.container,
                        Key=location.name,
                        VersionId=entry.backend_id,
                    ),
                )
            except S3Error as error:
                if error.code in ("NoSuchKey", "NoSuchVersion"):
                    continue
                raise
            if read_object(key, response).manifest == token:
                return True
        return False

    async def is_empty(self, bucket: str) -> bool:
        """Whether the gateway bucket holds no entry at all (delete markers count)."""
        container = self.store.namespace.container_for(bucket)
        base = self.store.namespace.bucket_prefix(bucket)
        response: Any = await self.store.call(
            "ListObjectVersions",
            lambda: self.store.client.list_object_versions(
                Bucket=container, Prefix=base, MaxKeys=1
            ),
            BucketName=bucket,
        )
        return not (response.get("Versions") or response.get("DeleteMarkers"))

    async def list(self, bucket: str, query: VersionsQuery) -> VersionsPage:
        """ListObjectVersions of a versioned gateway bucket, paged by the backend."""
        namespace = self.store.namespace
        container, base = namespace.container_for(bucket), namespace.bucket_prefix(bucket)
        params: dict[str, Any] = {"Bucket": container, "Prefix": base + query.prefix}
        if query.delimiter:
            params["Delimiter"] = query.delimiter
        if query.key_marker:
            params["KeyMarker"] = base + query.key_marker
        if query.version_id_marker:
            history = await self.history(bucket, query.key_marker)
            position = marker_position([v for v, _ in history], query)
            params["VersionIdMarker"] = history[position or 0][1]
        if query.max_keys <= 0:
            return VersionsPage([], [], None, None)
        params["MaxKeys"] = query.max_keys
        response: Any = await self.store.call(
            "ListObjectVersions",
            functools.partial(self.store.client.list_object_versions, **params),
            BucketName=bucket,
        )
        nulls: dict[str, str | None] = {}
        versions: list[Version] = []
        for entry in listed(response):
            key = namespace.key_of(bucket, entry.name)
            if key not in nulls:
                nulls[key] = await self.null_id(bucket, key)
            position = 0 if entry.is_latest else 1
            versions.append(self._version(key, entry, nulls[key], position))
        prefixes = [
            namespace.key_of(bucket, str(p["Prefix"])) for p in response.get("CommonPrefixes", [])
        ]
        if not response.get("IsTruncated"):
            return VersionsPage(versions, prefixes, None, None)
        next_key = namespace.key_of(bucket, str(response.get("NextKeyMarker", "")))
        next_id = response.get("NextVersionIdMarker")
        if next_id:
            null = nulls[next_key] if next_key in nulls else await self.null_id(bucket, next_key)
            next_id = NULL_VERSION if next_id in (NULL_VERSION, null) else str(next_id)
        return VersionsPage(versions, prefixes, next_key, next_id or None)
