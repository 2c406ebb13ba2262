"""The records of encrypted multipart uploads (:mod:`policy.encryption`).

Not every translator returns an upload's create-time metadata from ListParts (the S3 one
cannot), so an encrypted upload's sealed entry is also kept in a small record object in the
reserved area (:data:`~policy.encryption_meta.UPLOAD_RECORDS` + upload id): written when the
upload is created, read by each part (and cached: an upload's encryption never changes),
removed on completion and abort. An upload without a record is not encrypted.
"""

from __future__ import annotations

from typing import Final

from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.streams import BytesBody
from policy.encryption_meta import UPLOAD_RECORDS, Sealed
from translators.base import Backend, GetOptions, WriteConditions, WriteMetadata

#: How many uploads' entries are cached (the oldest is dropped past it).
_CACHED: Final = 4096


class UploadRecords:
    """The sealed entries of ``inner``'s encrypted uploads, kept in record objects."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self._cache: dict[tuple[str, str], Sealed | None] = {}

    @staticmethod
    def _record_key(upload_id: str) -> str:
        return UPLOAD_RECORDS + upload_id

    async def keep(self, ctx: RequestContext, bucket: str, upload_id: str, entry: str) -> None:
        """Write the record of upload ``upload_id``, sealed as ``entry``."""
        record = entry.encode()
        await self.inner.put_object(
            ctx,
            bucket,
            self._record_key(upload_id),
            HashingPayload(BytesBody(record), len(record)),
            WriteMetadata(),
            WriteConditions(),
        )

    async def sealed(self, ctx: RequestContext, bucket: str, upload_id: str) -> Sealed | None:
        """The sealed entry of upload ``upload_id`` (None: it is not encrypted)."""
        cache_key = (bucket, upload_id)
        if cache_key in self._cache:
            return self._cache[cache_key]
        try:
            result = await self.inner.get_object(
                ctx, bucket, self._record_key(upload_id), GetOptions()
            )
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            sealed = None
        else:
            raw = b"".join([piece async for piece in result.body])
            sealed = Sealed(raw.decode("utf-8", "replace"))
        if len(self._cache) >= _CACHED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[cache_key] = sealed
        return sealed

    async def forget(self, ctx: RequestContext, bucket: str, upload_id: str) -> None:
        """Remove the record of upload ``upload_id`` (whether or not it has one)."""
        self._cache.pop((bucket, upload_id), None)
        await self.inner.delete_object(ctx, bucket, self._record_key(upload_id))
