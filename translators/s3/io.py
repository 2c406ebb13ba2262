"""Byte streams of the S3 translator: download bodies and upload feeding.

* :class:`StreamBody` is a GET body: bounded chunks of a botocore ``StreamingBody`` read in
  the :class:`BlockingPool`, optionally skipping a head and stopping after a length (when a
  backend ignored a Range and sent the whole object).
* :func:`held_back` withholds each chunk of an upload until the next one arrived, so the
  last bytes reach the backend only once the client's stream verified completely: a backend
  commits as soon as it has Content-Length bytes, so a signature or checksum failure found
  at the very end must surface before those bytes leave.
* :class:`PartSplitter` cuts an upload into bounded part buffers.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Final

from core import checksums
from core.errors import S3Error
from translators.blocking import BlockingPool, PayloadReader, iterate_in_thread
from translators.s3.errors import map_errors

#: The largest chunk a GET body yields.
CHUNK_SIZE: Final = 1024 * 1024


class EmptyBody:
    """The body of a zero-length read."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        return
        yield b""

    async def aclose(self) -> None:
        return None


class BytesBody:
    """A body already in memory, yielded in chunks of <= CHUNK_SIZE."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data
        self._offset = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._data is not None and self._offset < len(self._data):
            chunk = self._data[self._offset : self._offset + CHUNK_SIZE]
            self._offset += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        self._data = None


class StreamBody:
    """``length`` bytes of ``stream`` after skipping ``skip``, in chunks of <= CHUNK_SIZE.

    The stream holds one HTTP response, i.e. one version of the object, so a reader keeps
    reading that version whatever happens to the key. A stream ending before ``length``
    bytes, or (with ``expected_md5``) whose bytes do not hash to it, raises ``InternalError``
    instead of ending quietly: a backend that is not atomic (rclone's memory remote) can
    tear a read racing a write, and a client must see the failure.
    """

    def __init__(
        self,
        pool: BlockingPool,
        stream: Any,
        skip: int,
        length: int,
        endpoint: str,
        expected_md5: str | None = None,
    ) -> None:
        self._pool = pool
        self._md5 = hashlib.md5(usedforsecurity=False) if expected_md5 else None
        self._expected_md5 = expected_md5
        self._stream = stream
        self._skip = skip
        self._remaining = length
        self._endpoint = endpoint
        self._closed = False

    def _chunks(self) -> Iterator[bytes]:
        while self._skip > 0:
            with map_errors(self._endpoint, "GetObject"):
                dropped = self._stream.read(min(CHUNK_SIZE, self._skip))
            if not dropped:
                raise S3Error("InternalError", "The storage backend sent a short body.")
            self._skip -= len(dropped)
        while self._remaining > 0 and not self._closed:
            with map_errors(self._endpoint, "GetObject"):
                chunk = self._stream.read(min(CHUNK_SIZE, self._remaining))
            if not chunk:
                raise S3Error("InternalError", "The storage backend sent a short body.")
            self._remaining -= len(chunk)
            if self._md5 is not None:
                self._md5.update(chunk)
                if self._remaining <= 0 and self._md5.hexdigest() != self._expected_md5:
                    raise S3Error(
                        "InternalError",
                        "The storage backend sent a body that does not match the object's ETag.",
                    )
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._closed:
            return
        try:
            async for chunk in iterate_in_thread(self._pool, self._chunks()):
                if self._closed:
                    return
                yield chunk
        finally:
            if self._remaining <= 0 or self._closed:
                await self.aclose()

    async def aclose(self) -> None:
        if self._stream is None:
            return
        self._closed = True
        stream, self._stream = self._stream, None
        await self._pool.run(stream.close)


class BodyReader(PayloadReader):
    """A :class:`PayloadReader` that remembers the error the upload body raised, so the
    caller re-raises it instead of whatever botocore made of the aborted request."""

    error: BaseException | None = None

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except BaseException as error:
            self.error = error
            raise


async def held_back(
    chunks: AsyncIterator[bytes], hashers: Mapping[str, checksums.Hasher] | None = None
) -> AsyncIterator[bytes]:
    """Yield ``chunks`` one behind: a chunk leaves only after the next one (or the verified
    end of the stream) arrived. ``hashers`` see every chunk."""
    pending: bytes | None = None
    async for chunk in chunks:
        if not chunk:
            continue
        for hasher in (hashers or {}).values():
            hasher.update(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    if pending is not None:
        yield pending


class PartSplitter:
    """Cuts an upload stream into parts of a given size, buffering one part at a time.

    :meth:`next` reads until it holds more than ``size`` bytes or the stream ended, so after
    it returns, :attr:`finished` says whether the returned part is the last one.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._carry = b""
        self._ended = False

    @property
    def finished(self) -> bool:
        return self._ended and not self._carry

    async def next(self, size: int) -> bytes:
        buffer = bytearray(self._carry)
        while len(buffer) <= size and not self._ended:
            try:
                buffer += await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True
        part, self._carry = bytes(buffer[:size]), bytes(buffer[size:])
        return part
