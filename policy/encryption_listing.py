"""Listings of server-side encrypted buckets (:mod:`policy.encryption`): the bucket marker
and the plaintext sizes a listing reports.

A translator lists an encrypted object with its stored (ciphertext) size. A bucket that has
held an encrypted object carries a marker object in the reserved area
(:data:`~policy.encryption_meta.MARKER_KEY`), written by :meth:`EncryptedBuckets.mark`
before its first encrypted write; a listing of a marked bucket heads each listed object to
report its plaintext size (:func:`plaintext_sizes`: one HEAD per object, at most
:data:`LIST_CONCURRENCY` at once). Whether a bucket is marked is remembered for good once it
is, and its absence for :data:`UNMARKED_RECHECK_S`: a listing on another replica within that
time of a bucket's first encrypted write may show that object's stored (slightly larger)
size.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final

from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.reserved import SITE_STATE_PREFIX
from core.streams import EmptyBody
from policy.encryption_meta import MARKER_KEY, plain_view, sealed_entry
from translators.base import Backend, ListPage, ObjectInfo, WriteConditions, WriteMetadata
from translators.versioning import VersionsPage

LIST_CONCURRENCY: Final = 32
#: How long a bucket found without the marker is believed unmarked.
UNMARKED_RECHECK_S: Final = 2.0
#: How many buckets found unmarked are remembered (all are forgotten past it).
_UNMARKED_MEMORY: Final = 4096


class EncryptedBuckets:
    """Which buckets of ``inner`` hold encrypted objects, as their marker objects say."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self._marked: set[str] = set()
        self._unmarked: dict[str, float] = {}  # bucket -> when it was found unmarked

    async def mark(self, ctx: RequestContext, bucket: str) -> None:
        """Record that ``bucket`` holds encrypted objects (once per process and bucket)."""
        if bucket in self._marked:
            return
        try:
            await self.inner.head_object(ctx, bucket, MARKER_KEY)
        except S3Error as error:
            if error.code != "NoSuchKey":
                raise
            await self.inner.put_object(
                ctx,
                bucket,
                MARKER_KEY,
                HashingPayload(EmptyBody(), 0),
                WriteMetadata(),
                WriteConditions(),
            )
        self._marked.add(bucket)
        self._unmarked.pop(bucket, None)

    async def is_marked(self, ctx: RequestContext, bucket: str) -> bool:
        """Whether ``bucket`` carries the marker (a missing bucket does not)."""
        if bucket in self._marked:
            return True
        checked = self._unmarked.get(bucket)
        now = time.monotonic()
        if checked is not None and now - checked < UNMARKED_RECHECK_S:
            return False
        try:
            await self.inner.head_object(ctx, bucket, MARKER_KEY)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                if len(self._unmarked) >= _UNMARKED_MEMORY:
                    self._unmarked.clear()
                self._unmarked[bucket] = now
                return False
            raise
        self._marked.add(bucket)
        return True


async def plaintext_sizes(
    inner: Backend, ctx: RequestContext, bucket: str, page: ListPage
) -> ListPage:
    """``page`` of ``inner`` with each encrypted object's plaintext size and checksums.

    An object gone since it was listed, or replaced by one of another stored size, keeps
    its listed entry; reserved objects are not headed.
    """

    async def head(listed: ObjectInfo) -> ObjectInfo:
        return await inner.head_object(ctx, bucket, listed.key)

    return replace(page, objects=await _plaintext(page.objects, head))


async def plaintext_version_sizes(
    inner: Backend, ctx: RequestContext, bucket: str, page: VersionsPage
) -> VersionsPage:
    """:func:`plaintext_sizes` for a page of versions (delete markers stay as they are)."""

    async def head(listed: ObjectInfo) -> ObjectInfo:
        found = await inner.head_version(ctx, bucket, listed.key, listed.version_id or "")
        if found.info is None:
            raise S3Error("NoSuchKey", Key=listed.key)
        return found.info

    listed = [v.info for v in page.versions if v.info is not None]
    fixed = iter(await _plaintext(listed, head))
    versions = [v if v.info is None else replace(v, info=next(fixed)) for v in page.versions]
    return replace(page, versions=versions)


async def _plaintext(
    objects: list[ObjectInfo], head: Callable[[ObjectInfo], Awaitable[ObjectInfo]]
) -> list[ObjectInfo]:
    """``objects`` with each encrypted one's plaintext size and checksums, read by
    ``head`` (at most :data:`LIST_CONCURRENCY` at once)."""
    limit = asyncio.Semaphore(LIST_CONCURRENCY)

    async def fix(listed: ObjectInfo) -> ObjectInfo:
        if listed.key.startswith(SITE_STATE_PREFIX):
            return listed
        async with limit:
            try:
                info = await head(listed)
            except S3Error as error:
                if error.code in ("NoSuchKey", "NoSuchVersion"):
                    return listed
                raise
        # The same stored object (a translator's listing may show another ETag form):
        if info.size != listed.size or sealed_entry(info.user_metadata) is None:
            return listed
        view = plain_view(info)
        return replace(listed, size=view.size, checksums=view.checksums)

    return list(await asyncio.gather(*(fix(o) for o in objects)))
