"""One incremental digester for every byte stream the gateway hashes, and what is built on it.

:class:`Digester` computes the size, the MD5 and any of S3's additional checksums of bytes fed
chunk by chunk: uploads (``gateway.payload``), copies (:class:`HashingPayload`) and migrations
all hash through it. :func:`multipart_etag` is S3's ETag of an object assembled from parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable

from core import checksums
from core.streams import ObjectBody, PayloadDigest


class Digester:
    """Size, MD5 and the checksums in ``algorithms`` of the bytes given to :meth:`update`."""

    __slots__ = ("_hashers", "_md5", "size")

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._hashers = {name: checksums.new_hasher(name) for name in algorithms}
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._md5.update(data)
        for hasher in self._hashers.values():
            hasher.update(data)

    def md5(self) -> bytes:
        """The raw MD5 of the bytes so far."""
        return self._md5.digest()

    def raw_checksums(self) -> dict[str, bytes]:
        """Algorithm -> raw digest of the bytes so far."""
        return {name: hasher.digest() for name, hasher in self._hashers.items()}

    def result(self) -> PayloadDigest:
        """The :class:`PayloadDigest` of the bytes so far (checksums base64-encoded)."""
        return PayloadDigest(
            self.size,
            self._md5.hexdigest(),
            {name: checksums.encode(raw) for name, raw in self.raw_checksums().items()},
        )


def multipart_etag(part_md5_hex: Iterable[str]) -> str:
    """S3's multipart ETag: hex MD5 of the concatenated binary part MD5s, then ``-N``."""
    md5 = hashlib.md5(usedforsecurity=False)
    count = 0
    for value in part_md5_hex:
        md5.update(bytes.fromhex(value))
        count += 1
    return f"{md5.hexdigest()}-{count}"


class HashingPayload:
    """A ``PayloadStream`` over bytes the gateway already trusts (a copy source): it streams
    ``source`` while digesting it; ``digest()`` is valid once the stream is exhausted."""

    def __init__(self, source: ObjectBody, size: int, algorithms: Iterable[str] = ()) -> None:
        self._source = source
        self._size = size
        self._digester = Digester(algorithms)
        self._done = False

    @property
    def declared_size(self) -> int | None:
        return self._size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                self._digester.update(chunk)
                yield chunk
            self._done = True
        finally:
            await self._source.aclose()

    def digest(self) -> PayloadDigest:
        if not self._done:
            raise RuntimeError("digest() before the payload was fully read")
        return self._digester.result()
