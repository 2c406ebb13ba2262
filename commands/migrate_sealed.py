"""Migrating objects the gateway stored encrypted (``policy.encryption``): copied in their
stored form, never decrypted.

Such an object's bytes are ciphertext while its ETag and checksums are the plaintext's
(:data:`core.sse.STORED_ENCRYPTION_KEY` in its user metadata), so the bytes read cannot be
checked against them, and re-hashing them would give the target wrong ones. Instead:

* the bytes are copied as they are, with the reserved metadata entry (the sealed data key),
  so the target holds the same ciphertext, which the gateway's AES-GCM authenticates on
  every read; the copy checks that exactly the source's stored size was read;
* the payload given to the target reports the source's ETag and checksums (and the size read),
  so the target records what the source recorded;
* a multipart object keeps its parts and their part numbers (each part's number is bound
  into its chunks), or is not copied at all: it cannot be flattened into one object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from commands.migrate_source import SourceReader
from commands.migrate_verify import VerificationError
from core.sse import STORED_ENCRYPTION_KEY
from core.streams import PayloadDigest, ReadOncePayload
from translators.base import ObjectInfo, PartInfo


def is_sealed(info: ObjectInfo) -> bool:
    """Whether ``info`` is an object the gateway stored encrypted."""
    return STORED_ENCRYPTION_KEY in info.user_metadata


class StoredFormPayload(ReadOncePayload):
    """``size`` stored bytes of the source, reported with the ``etag`` and ``checksums``
    the source recorded for them (see the module docstring)."""

    def __init__(
        self,
        reader: SourceReader,
        size: int,
        etag: str,
        checksums: dict[str, str],
        on_bytes: Callable[[int], None],
        *,
        last: bool,
    ) -> None:
        super().__init__()
        self._reader = reader
        self._size = size
        self._etag = etag
        self._checksums = dict(checksums)
        self._on_bytes = on_bytes
        self._last = last

    @property
    def declared_size(self) -> int | None:
        return self._size

    async def _stream(self) -> AsyncIterator[bytes]:
        read = 0
        async for chunk in self._reader.take(self._size):
            read += len(chunk)
            self._on_bytes(len(chunk))
            yield chunk
        if read != self._size:
            raise VerificationError(
                f"read {read} stored bytes of the source, expected {self._size}"
            )
        if self._last:
            await self._reader.finish()
        self._finish(PayloadDigest(read, self._etag, self._checksums))


def part_payload(
    reader: SourceReader, part: PartInfo, on_bytes: Callable[[int], None], *, last: bool
) -> StoredFormPayload:
    """The payload of one part of a sealed multipart source."""
    return StoredFormPayload(reader, part.size, part.etag, part.checksums, on_bytes, last=last)
