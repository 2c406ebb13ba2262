"""The in-memory translator's state: buckets of objects and pending uploads, and one lock.

Stored buffers are immutable, so a reader keeps the version it opened; state changes happen
under the one lock and never across an ``await``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import S3Error
from core.streams import PayloadDigest, PayloadStream
from translators.base import ObjectInfo, PartInfo, UploadInfo, WriteConditions


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
    created: datetime
    keys: list[str] = field(default_factory=list)  # sorted: code point order is UTF-8 order
    objects: dict[str, Stored] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)

    def store(self, key: str, stored: Stored, conditions: WriteConditions) -> None:
        """Swap ``stored`` in under ``key`` if ``conditions`` hold against the current one."""
        current = self.objects.get(key)
        try:
            conditions.check(current.info if current is not None else None)
        except S3Error as error:
            if error.code == "NoSuchKey":
                error.fields["Key"] = key
            raise
        if current is None:
            insort(self.keys, key)
        self.objects[key] = stored

    def remove(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
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
