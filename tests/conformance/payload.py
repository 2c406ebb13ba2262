"""An in-memory :class:`translators.base.PayloadStream` for the conformance suite."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable

import anyio

from core import checksums
from core.errors import S3Error
from core.streams import PayloadDigest


class MemoryPayload:
    """Yields ``data`` in ``chunk_size`` pieces, with S3's digests computed as it goes.

    ``fail_after`` bytes into the body the iterator raises ``IncompleteBody``, as a verifying
    stream does when a client disconnects or a signature fails midway.
    """

    def __init__(
        self,
        data: bytes,
        *,
        algorithms: Iterable[str] = ("CRC32",),
        chunk_size: int = 64 * 1024,
        fail_after: int | None = None,
    ) -> None:
        self.data = data
        self.algorithms = tuple(algorithms)
        self.chunk_size = chunk_size
        self.fail_after = fail_after
        self._digest: PayloadDigest | None = None

    @property
    def declared_size(self) -> int | None:
        return len(self.data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        md5 = hashlib.md5(usedforsecurity=False)
        hashers = {name: checksums.new_hasher(name) for name in self.algorithms}
        for offset in range(0, len(self.data), self.chunk_size):
            if self.fail_after is not None and offset >= self.fail_after:
                raise S3Error("IncompleteBody")
            chunk = self.data[offset : offset + self.chunk_size]
            md5.update(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            await anyio.lowlevel.checkpoint()
            yield chunk
        if self.fail_after is not None:
            raise S3Error("IncompleteBody")
        self._digest = PayloadDigest(
            size=len(self.data),
            md5_hex=md5.hexdigest(),
            checksums={name: checksums.encode(h.digest()) for name, h in hashers.items()},
        )

    def digest(self) -> PayloadDigest:
        if self._digest is None:
            raise RuntimeError("digest() before the payload was fully read")
        return self._digest
