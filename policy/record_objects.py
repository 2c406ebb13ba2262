"""Small JSON records the gateway keeps as objects in a site's bucket: reading one whole,
within a size bound, and checking its format and version.

The site state record (``policy.site_state``), lock records (``policy.lock_records``) and
completed-upload records (``policy.completed_uploads``) are read through the translator,
below every wrapper. A record is small: one that is larger than its bound was not written by
the gateway, and is refused before it costs memory.
"""

from __future__ import annotations

import json
from typing import Any

from core.context import RequestContext
from core.errors import S3Error
from translators.base import Backend, GetOptions


class RecordTooLarge(ValueError):
    """The object is larger than the record's bound (checked as it is read)."""


async def read_record(
    backend: Backend,
    ctx: RequestContext,
    bucket: str,
    key: str,
    limit: int,
    *,
    missing: tuple[str, ...] = ("NoSuchKey",),
) -> bytes | None:
    """The bytes of the object ``key``, or None when the backend answers one of ``missing``.

    :class:`RecordTooLarge` when it holds more than ``limit`` bytes (said by its size, or
    found while reading: it may grow meanwhile); other backend errors propagate."""
    try:
        opened = await backend.get_object(ctx, bucket, key, GetOptions())
    except S3Error as error:
        if error.code in missing:
            return None
        raise
    data = bytearray()
    try:
        if opened.info.size > limit:
            raise RecordTooLarge(f"{key} is {opened.info.size} bytes, over {limit}")
        async for chunk in opened.body:
            data += chunk
            if len(data) > limit:
                raise RecordTooLarge(f"{key} grew over {limit} bytes while it was read")
    finally:
        await opened.body.aclose()
    return bytes(data)


def parse_record(data: bytes, record_format: str, version: int) -> dict[str, Any]:
    """The JSON object of a record of ``record_format`` and ``version``; ``ValueError``
    naming what is wrong otherwise (callers raise their own error type from it)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != record_format:
        raise ValueError(f"not a {record_format} record")
    if document.get("version") != version:
        raise ValueError(f"version {document.get('version')!r}, expected {version}")
    return document
