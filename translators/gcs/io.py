"""Moving bytes between the gateway and GCS: staging upload bodies, streaming downloads.

An upload body is read on the event loop until it ends or passes :data:`INLINE_LIMIT`. A
body that fits is kept in memory and committed in ONE request that carries its metadata
(its ETag and checksums are known by then). A larger one streams, from a worker thread, into
a resumable upload of a temporary object; only once the body ended and verified does the
caller commit it (a compose onto the final name carrying the metadata). A body that raises
mid-way leaves an unfinalized resumable session, which is never visible.

A download is ONE streaming HTTP request for the resolved range of a pinned generation, read
in bounded chunks from worker threads, so a reader keeps the version it opened while the
response lasts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, Final

import anyio
import requests

from core import checksums
from core.checksums import ChecksumAlgorithm
from core.errors import S3Error
from core.streams import PayloadDigest, PayloadStream
from translators.blocking import BlockingPool, PayloadReader, iterate_in_thread
from translators.gcs.errors import map_errors

#: Bodies up to this size are buffered and written in one request.
INLINE_LIMIT: Final = 4 * 1024 * 1024
#: Resumable upload chunk (GCS requires a multiple of 256 KiB).
UPLOAD_CHUNK: Final = 8 * 1024 * 1024
#: Largest chunk a GET body yields.
READ_CHUNK: Final = 1024 * 1024


class UploadReader(PayloadReader):
    """A :class:`PayloadReader` that reports its position, as the resumable upload needs."""

    def tell(self) -> int:
        return self.bytes_read

    def seekable(self) -> bool:
        return False


@dataclass(frozen=True)
class Staged:
    """A received body: in memory (``data``) or in a finalized temporary object (``temp``)."""

    digest: PayloadDigest
    data: bytes | None
    temp: Any | None  # google.cloud.storage.Blob


async def receive(
    body: PayloadStream,
    *,
    pool: BlockingPool,
    bucket: Any,
    temp_name: str,
    endpoint: str,
    algorithm: ChecksumAlgorithm | None = None,
) -> Staged:
    """Read ``body`` to its verified end; see the module docstring for where it goes.

    With ``algorithm``, that checksum is computed on the way unless the client sent it.
    The caller must :func:`discard` a returned ``temp`` once it is committed or abandoned.
    """
    iterator = body.__aiter__()
    hasher = checksums.new_hasher(algorithm) if algorithm is not None else None
    buffer = bytearray()
    ended = False
    while len(buffer) <= INLINE_LIMIT:
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
            ended = True
            break
        if hasher is not None:
            hasher.update(chunk)
        buffer += chunk
    if ended:
        return Staged(_digest(body, algorithm, hasher), bytes(buffer), None)

    async def rest() -> AsyncGenerator[bytes, None]:
        yield bytes(buffer)
        buffer.clear()
        async for chunk in iterator:
            if hasher is not None:
                hasher.update(chunk)
            yield chunk

    chunks = rest()
    reader = UploadReader(chunks)
    temp = bucket.blob(f"{temp_name}/{uuid.uuid4().hex}", chunk_size=UPLOAD_CHUNK)
    finalized = False
    try:
        with map_errors(endpoint):
            await pool.run(lambda: temp.upload_from_file(reader, retry=None))
            finalized = True
            if await pool.run(reader.read, 1):
                raise S3Error("InternalError", "The upload ended before the body did.")
        return Staged(_digest(body, algorithm, hasher), None, temp)
    except BaseException:
        if finalized:
            await discard(pool, temp)
        raise
    finally:
        await chunks.aclose()


def _digest(
    body: PayloadStream, algorithm: ChecksumAlgorithm | None, hasher: checksums.Hasher | None
) -> PayloadDigest:
    digest = body.digest()
    if algorithm is None or hasher is None or algorithm in digest.checksums:
        return digest
    return replace(
        digest, checksums={**digest.checksums, algorithm: checksums.encode(hasher.digest())}
    )


async def discard(pool: BlockingPool, blob: Any) -> None:
    """Delete a temporary object, even from a cancelled task; failures are only leftovers."""
    with anyio.CancelScope(shield=True):
        try:
            await pool.run(lambda: _delete_quietly(blob))
        except Exception:  # a leftover temp object is harmless; start() sweeps old ones
            return


def _delete_quietly(blob: Any) -> None:
    try:
        blob.delete(retry=None)
    except Exception:  # absent already, or unreachable: nothing more to do here
        return


class StreamBody:
    """An object body read from one streaming HTTP response, a chunk per worker call."""

    def __init__(self, response: requests.Response, pool: BlockingPool, endpoint: str) -> None:
        self._response = response
        self._pool = pool
        self._endpoint = endpoint
        self._chunks = response.raw.stream(READ_CHUNK, decode_content=False)
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._closed:
            return
        try:
            with map_errors(self._endpoint):
                async for chunk in iterate_in_thread(self._pool, self._chunks):
                    yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.close()

    def __del__(self) -> None:
        # A caller that never iterated nor closed the body must not leak its connection.
        if not self._closed:
            self._response.close()


class EmptyBody:
    """The body of an empty object or an empty range: no request at all."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None
