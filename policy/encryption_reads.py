"""Decrypting reads of server-side encrypted objects (:mod:`policy.encryption`).

Given an object's stored info, its plaintext view and its opened data key: a whole GET
decrypts the stored stream as it flows (:func:`open_whole`); a ranged or part GET reads only
the chunks covering the range, plus the header of the first stream touched when the range
starts far into it, with one stored range read of the same version (:func:`open_ranged`).
The first chunk is decrypted before a result is returned, so a wrong key or a tampered start
is an S3 error, not a broken reply; tampering found later cuts the reply (never wrong
bytes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from core.ranges import ByteRange, RangeSpec
from core.streams import EmptyBody
from policy.encryption_meta import stored_streams
from policy.sse_crypto import (
    CHUNK,
    HEADER,
    DecryptingBody,
    HeldFirstBody,
    Segment,
    plan_read,
)
from translators import multipart
from translators.base import GetOptions, GetResult, ObjectInfo


async def open_whole(result: GetResult, view: ObjectInfo, data_key: bytes) -> GetResult:
    """The whole plaintext ``view`` of the stored object ``result`` is reading."""
    return await _decrypted(result, view, None, data_key, _whole(result.info))


#: Opens the stored object being read (the current one of a key, or one version) with the
#: given options.
StoredRead = Callable[[GetOptions], Awaitable[GetResult]]


async def open_ranged(
    read: StoredRead,
    options: GetOptions,
    stored: ObjectInfo,
    view: ObjectInfo,
    data_key: bytes,
) -> GetResult | None:
    """The range or part ``options`` asks of ``view``, read with ``read`` (None: the
    object changed since ``stored`` was read; the caller reads it again)."""
    span = multipart.read_span(view, GetOptions(options.range, options.part_number))
    whole = span is None
    if span is None:
        span = ByteRange(0, view.size - 1)
    if span.length <= 0:  # an empty object, or an empty part of a larger one
        return GetResult(view, None if whole else span, EmptyBody())
    plan = plan_read(stored_streams(stored), span.start, span.end)
    segments = plan.segments
    if plan.header_at is not None:
        header = await _read_bytes(read, plan.header_at, HEADER, stored)
        if header is None:
            return None
        segments = [replace(segments[0], header=header), *segments[1:]]
    result = await read(GetOptions(RangeSpec(plan.stored_start, plan.stored_end)))
    if result.info.etag != stored.etag or result.info.size != stored.size:
        await result.body.aclose()
        return None
    return await _decrypted(result, view, None if whole else span, data_key, segments)


async def _read_bytes(read: StoredRead, at: int, length: int, stored: ObjectInfo) -> bytes | None:
    """``length`` stored bytes from ``at`` (None: the object is no longer ``stored``)."""
    result = await read(GetOptions(RangeSpec(at, at + length - 1)))
    if result.info.etag != stored.etag or result.info.size != stored.size:
        await result.body.aclose()
        return None
    data = b"".join([piece async for piece in result.body])
    return data if len(data) == length else None


def _whole(info: ObjectInfo) -> list[Segment]:
    """Segments reading every stored stream of ``info`` from its header on."""
    result = []
    for stream in stored_streams(info):
        if stream.size == 0:
            result.append(Segment(stream.part_number, 0, 0, 0, 0, 0))
        else:
            last = stream.size - 1
            result.append(
                Segment(stream.part_number, stream.size, 0, last // CHUNK, 0, stream.size)
            )
    return result


async def _decrypted(
    result: GetResult,
    view: ObjectInfo,
    span: ByteRange | None,
    data_key: bytes,
    segments: list[Segment],
) -> GetResult:
    body = DecryptingBody(result.body, data_key, segments)
    first = await body.first_chunk()
    return GetResult(view, span, HeldFirstBody(body, first))
