"""The in-memory translator's state: buckets of objects and pending uploads, and one lock.

Stored buffers are immutable, so a reader keeps the version it opened; state changes happen
under the one lock and never across an ``await``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.errors import S3Error
from core.streams import PayloadDigest, PayloadStream
from translators import versioning
from translators.base import ObjectInfo, PartInfo, UploadInfo, WriteConditions
from translators.versioning import Version, VersioningStatus


@dataclass(frozen=True)
class Stored:
    """An object: what is known of it and its immutable bytes."""

    info: ObjectInfo
    data: bytes


@dataclass
class Upload:
    """A pending multipart upload and its parts (each with its immutable bytes)."""

    info: UploadInfo
    parts: dict[int, tuple[PartInfo, bytes]] = field(default_factory=dict)


@dataclass
class Bucket:
    """One bucket: each key's history (newest first, see :mod:`translators.versioning`),
    the latest object of each key whose latest entry is one, and pending uploads."""

    created: datetime
    keys: list[str] = field(default_factory=list)  # sorted: code point order is UTF-8 order
    objects: dict[str, Stored] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    status: VersioningStatus | None = None  # versioning
    history: dict[str, list[tuple[Version, bytes]]] = field(default_factory=dict)

    def store(self, key: str, stored: Stored, conditions: WriteConditions) -> ObjectInfo:
        """Write ``stored`` under ``key`` if ``conditions`` hold against the current object,
        per the bucket's versioning; the object as stored (with its version id)."""
        current = self.objects.get(key)
        try:
            conditions.check(current.info if current is not None else None)
        except S3Error as error:
            if error.code == "NoSuchKey":
                error.fields["Key"] = key
            raise
        status = versioning.status_for(key, self.status)
        version_id = versioning.version_id_for_write(status)
        info = replace(stored.info, version_id=version_id if status else None)
        new = Version(key, version_id, info.last_modified, info)
        change = versioning.after_write(self.entries(key), status, new)
        self._apply(key, change, (version_id, stored.data))
        return info

    def delete(self, key: str, version_id: str | None) -> versioning.DeleteOutcome:
        """Delete ``key`` (or its entry ``version_id``) per the bucket's versioning."""
        status = versioning.status_for(key, self.status)
        change = versioning.after_delete(self.entries(key), status, key, version_id)
        self._apply(key, change, None)
        return change.outcome

    def set_status(self, status: VersioningStatus) -> None:
        """Enable or suspend versioning; objects written before it was first enabled become
        ``null`` versions."""
        if self.status is None:
            for key, history in self.history.items():
                self.history[key] = [
                    (replace(v, info=replace(v.info, version_id=v.version_id)), data)
                    if v.info is not None
                    else (v, data)
                    for v, data in history
                ]
                latest = self.history[key][0]
                if latest[0].info is not None:
                    self.objects[key] = Stored(latest[0].info, latest[1])
        self.status = status

    def entries(self, key: str) -> list[Version]:
        """``key``'s history, newest first."""
        return [version for version, _ in self.history.get(key, ())]

    def data(self, key: str, version_id: str) -> bytes:
        return next(data for v, data in self.history[key] if v.version_id == version_id)

    def _apply(
        self, key: str, change: versioning.Change, written: tuple[str, bytes] | None
    ) -> None:
        """Hold ``change.history``; ``written`` is the new version's id and bytes, if any
        (it is the history's first entry, replacing an entry of the same id)."""
        held = {v.version_id: data for v, data in self.history.get(key, ())}
        if written is not None:
            held[written[0]] = written[1]
        history = [(v, held.get(v.version_id, b"")) for v in change.history]
        if history:
            self.history[key] = history
        else:
            self.history.pop(key, None)
        latest, data = history[0] if history else (None, b"")
        if latest is not None and latest.info is not None:
            if key not in self.objects:
                insort(self.keys, key)
            self.objects[key] = Stored(latest.info, data)
        elif self.objects.pop(key, None) is not None:
            del self.keys[bisect_left(self.keys, key)]

    def upload(self, key: str, upload_id: str) -> Upload:
        found = self.uploads.get(upload_id)
        if found is None or found.info.key != key:
            raise S3Error("NoSuchUpload", UploadId=upload_id)
        return found


class MemoryStore:
    """Every bucket of one in-memory backend, behind one lock."""

    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}
        self.lock = threading.Lock()

    @contextmanager
    def bucket(self, name: str) -> Iterator[Bucket]:
        """Bucket ``name`` with the lock held; ``NoSuchBucket`` if absent."""
        with self.lock:
            found = self.buckets.get(name)
            if found is None:
                raise S3Error("NoSuchBucket", BucketName=name)
            yield found

    def require_bucket(self, name: str) -> None:
        with self.bucket(name):
            return


async def receive(body: PayloadStream) -> tuple[bytes, PayloadDigest]:
    """Read ``body`` to its end; its bytes and verified digest (the stream raises on a bad
    payload, before anything is stored)."""
    chunks = [chunk async for chunk in body]
    return b"".join(chunks), body.digest()
