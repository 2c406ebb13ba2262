"""A tar archive written as a stream: headers computed up front, bodies passed through.

Each member's header is built with :mod:`tarfile` (PAX format, so long names are fine)
from a size known in advance (the catalog's), so the archive's total length is known
before the first byte (:func:`archive_size`) and nothing is buffered: member bytes flow from
the opened body straight to the client. A body that yields more or fewer bytes than its
announced size raises :class:`TarSizeMismatch`, which must abort the response: a tar with
a wrong member size would be silently corrupt.
"""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from core.streams import ObjectBody

BLOCK = tarfile.BLOCKSIZE
_END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


class TarSizeMismatch(Exception):
    """A member's body did not have the size its header announced."""


@dataclass(frozen=True)
class TarEntry:
    """One regular-file member: its path in the archive, size and mtime (Unix seconds)."""

    name: str
    size: int
    mtime: float

    def header(self) -> bytes:
        info = tarfile.TarInfo(self.name)
        info.size = self.size
        info.mtime = int(self.mtime)
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        return info.tobuf(tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padding(size: int) -> int:
    return -size % BLOCK


def archive_size(entries: Sequence[TarEntry]) -> int:
    """The exact byte length :func:`stream_tar` produces for ``entries``."""
    members = sum(len(e.header()) + e.size + _padding(e.size) for e in entries)
    return members + len(_END_OF_ARCHIVE)


async def stream_tar(
    entries: Sequence[TarEntry], open_body: Callable[[TarEntry], Awaitable[ObjectBody]]
) -> AsyncIterator[bytes]:
    """The archive of ``entries``; each body is opened by ``open_body`` just before its
    member is written and closed right after (also when the consumer stops early)."""
    for entry in entries:
        body = await open_body(entry)
        try:
            yield entry.header()
            sent = 0
            async for chunk in body:
                sent += len(chunk)
                if sent > entry.size:
                    raise TarSizeMismatch(f"{entry.name} is larger than {entry.size} bytes")
                yield chunk
            if sent != entry.size:
                raise TarSizeMismatch(f"{entry.name} has {sent} bytes, not {entry.size}")
        finally:
            await body.aclose()
        padding = _padding(entry.size)
        if padding:
            yield b"\0" * padding
    yield _END_OF_ARCHIVE
