"""A PayloadStream over bytes the gateway already trusts (a copy source): it only hashes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable

from gateway import checksums
from translators.base import ObjectBody, PayloadDigest


class HashingPayload:
    """Streams ``source`` while computing MD5 and the checksums in ``algorithms``.

    Implements ``translators.base.PayloadStream``; ``digest()`` is valid once exhausted.
    """

    def __init__(self, source: ObjectBody, size: int, algorithms: Iterable[str] = ()) -> None:
        self._source = source
        self._size = size
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._hashers = {a: checksums.new_hasher(a) for a in algorithms}
        self._seen = 0
        self._done = False

    @property
    def declared_size(self) -> int | None:
        return self._size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                self._md5.update(chunk)
                for hasher in self._hashers.values():
                    hasher.update(chunk)
                self._seen += len(chunk)
                yield chunk
            self._done = True
        finally:
            await self._source.aclose()

    def digest(self) -> PayloadDigest:
        if not self._done:
            raise RuntimeError("digest() before the payload was fully read")
        return PayloadDigest(
            self._seen,
            self._md5.hexdigest(),
            {a: checksums.encode(h.digest()) for a, h in self._hashers.items()},
        )
