"""GetObject for the S3 translator: one GET streams one version, ranges checked against
what the backend sent (see :class:`translators.s3.backend.S3Backend`)."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

import anyio

from core.errors import S3Error
from core.ranges import ByteRange, RangeSpec
from translators import multipart
from translators.base import (
    GetOptions,
    GetResult,
    etag_is_md5_of_bytes,
)
from translators.s3.client import S3Store
from translators.s3.io import BytesBody, EmptyBody, StreamBody

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_OPEN_ATTEMPTS = 5
#: Whole objects up to this size are read at once and checked against their MD5 ETag.
_VERIFIED_READ = 1024 * 1024


async def _back_off(attempt: int) -> None:
    """Before a read's retry (the object changed, or a non-atomic backend tore it, while it
    was read): a jittered wait doubling from 10 ms, so readers racing busy writers spread out
    instead of failing every attempt in the same instant. Nothing before the first try."""
    if attempt:
        await anyio.sleep(random.uniform(0, 0.01 * 2**attempt))


class S3Reads:
    """Opens objects of an :class:`~translators.s3.client.S3Store`."""

    def __init__(self, store: S3Store) -> None:
        self.store = store

    async def get_object(
        self, bucket: str, key: str, options: GetOptions, version_id: str | None = None
    ) -> GetResult:
        """One GET streams one version (the backend's ``version_id``, else the current one).
        A part number is resolved on a HEAD first, then read with If-Match on that version's
        backend ETag (retried if it changed meanwhile)."""
        if options.part_number is not None:
            for attempt in range(_OPEN_ATTEMPTS):
                await _back_off(attempt)
                found = await self.store.find(bucket, key, version_id)
                span = multipart.part_range(found.info.size, found.info.parts, options.part_number)
                if span is not None and span.length <= 0:
                    return GetResult(found.info, span, EmptyBody())
                try:
                    return await self._open(bucket, key, span, found.backend_etag, version_id)
                except S3Error as error:
                    if error.code not in ("PreconditionFailed", "NoSuchKey"):
                        raise
            raise S3Error("SlowDown", "The object is being overwritten too often to be read.")
        spec = options.range
        if spec is None:
            return await self._open_whole(bucket, key, version_id)
        if spec.first is None and not spec.last:
            spec.resolve(
                (await self.store.find(bucket, key, version_id)).info.size
            )  # raises InvalidRange
        try:
            return await self._open(bucket, key, spec, None, version_id)
        except S3Error as error:
            if error.code != "InvalidRange" or spec is None:
                raise
        # The backend refused the range: resolve it ourselves (InvalidRange with the right
        # Content-Range if it is unsatisfiable) and ask for that exact version and range.
        for attempt in range(_OPEN_ATTEMPTS):
            await _back_off(attempt)
            found = await self.store.find(bucket, key, version_id)
            span = spec.resolve(found.info.size)
            try:
                return await self._open(bucket, key, span, found.backend_etag, version_id)
            except S3Error as error:
                if error.code not in ("PreconditionFailed", "InvalidRange", "NoSuchKey"):
                    raise
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    async def _open_whole(self, bucket: str, key: str, version_id: str | None) -> GetResult:
        """The whole object. A small one whose ETag is its MD5 is read at once and verified
        (retried if a non-atomic backend tore it); a larger one is verified as it streams."""
        for attempt in range(_OPEN_ATTEMPTS):
            await _back_off(attempt)
            result = await self._open(bucket, key, None, None, version_id)
            size, etag = result.info.size, result.info.etag
            if size > _VERIFIED_READ or not etag_is_md5_of_bytes(result.info):
                return result
            try:
                data = b"".join([chunk async for chunk in result.body])
            except S3Error as error:
                if error.code != "InternalError":
                    raise
                continue
            if hashlib.md5(data, usedforsecurity=False).hexdigest() == etag:
                return GetResult(result.info, None, BytesBody(data))
        raise S3Error("SlowDown", "The object is being overwritten too often to be read.")

    async def _open(
        self,
        bucket: str,
        key: str,
        wanted: RangeSpec | ByteRange | None,
        if_match: str | None,
        version_id: str | None = None,
    ) -> GetResult:
        location = self.store.namespace.object(bucket, key)
        params: dict[str, Any] = {"Bucket": location.container, "Key": location.name}
        if version_id is not None:
            params["VersionId"] = version_id
        if isinstance(wanted, ByteRange):
            params["Range"] = f"bytes={wanted.start}-{wanted.end}"
        elif wanted is not None:
            first = "" if wanted.first is None else str(wanted.first)
            last = "" if wanted.last is None else str(wanted.last)
            params["Range"] = f"bytes={first}-{last}"
        if if_match is not None:
            params["IfMatch"] = f'"{if_match}"'
        try:
            response: Any = await self.store.call(
                "GetObject",
                lambda: self.store.client.get_object(**params),
                BucketName=bucket,
                Key=key,
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                await self.store.require_bucket(bucket)
                raise S3Error("NoSuchKey", Key=key) from None
            raise
        stream = response["Body"]
        try:
            info = await self.store.view(key, response)
            span = self._served_span(response, info.size, wanted)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.store.pool.run(stream.close)
            raise
        skip, length = span
        resolved = None if wanted is None else ByteRange(skip[1], skip[1] + length - 1)
        if length <= 0:
            await self.store.pool.run(stream.close)
            return GetResult(info, resolved, EmptyBody())
        expected = info.etag if wanted is None and etag_is_md5_of_bytes(info) else None
        body = StreamBody(self.store.pool, stream, skip[0], length, self.store.endpoint, expected)
        return GetResult(info, resolved, body)

    def _served_span(
        self, response: Any, size: int, wanted: RangeSpec | ByteRange | None
    ) -> tuple[tuple[int, int], int]:
        """((bytes to skip in the body, first offset), length) of what the client asked,
        checked against what the backend sent (a range, or the whole object)."""
        served_start, served_end = 0, int(response.get("ContentLength") or 0) - 1
        match = _CONTENT_RANGE.fullmatch(str(response.get("ContentRange") or "").strip())
        if match:
            served_start, served_end = int(match.group(1)), int(match.group(2))
        if wanted is None:
            if served_start != 0 or served_end != size - 1:
                raise S3Error("InternalError", "The storage backend sent part of an object.")
            return (0, 0), size
        target = wanted if isinstance(wanted, ByteRange) else wanted.resolve(size)
        if served_start > target.start or served_end < target.end:
            raise S3Error("InternalError", "The storage backend sent the wrong range.")
        return (target.start - served_start, target.start), target.length
