"""Running blocking SDK calls off the event loop, streaming across that boundary, retrying.

* :class:`BlockingPool` runs a blocking call in a worker thread, at most ``size`` at once.
* :class:`PayloadReader` lets an SDK running in a worker thread ``read()`` an upload body
  that arrives on the event loop, one chunk at a time (never the whole object).
* :func:`iterate_in_thread` turns a blocking iterator of chunks (an SDK download stream)
  into an async one, a chunk at a time.
* :func:`retrying` retries a transient failure with bounded, jittered exponential backoff.
"""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from core.retries import retried

T = TypeVar("T")


class BlockingPool:
    """A bounded pool for blocking calls; the event loop never waits on one."""

    def __init__(self, size: int) -> None:
        self.limiter = anyio.CapacityLimiter(size)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)


class PayloadReader(io.RawIOBase):
    """A read-only, non-seekable file over an async chunk iterator, for SDK upload calls made
    from a worker thread of :class:`BlockingPool` (it calls back into the event loop).

    Errors raised by the iterator (a failed signature or checksum check) surface from
    ``read()``, so the SDK aborts the upload. ``bytes_read`` counts what was handed out.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._eof = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes | None:
        async def pull() -> bytes | None:
            try:
                return await self._chunks.__anext__()
            except StopAsyncIteration:
                return None

        return anyio.from_thread.run(pull)

    def read(self, size: int | None = -1) -> bytes:
        wanted = -1 if size is None else size
        out = bytearray()
        while wanted < 0 or len(out) < wanted:
            if not self._pending:
                if self._eof:
                    break
                chunk = self._next()
                if chunk is None:
                    self._eof = True
                    break
                self._pending = chunk
            take = len(self._pending) if wanted < 0 else min(wanted - len(out), len(self._pending))
            out += self._pending[:take]
            self._pending = self._pending[take:]
        self.bytes_read += len(out)
        return bytes(out)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


async def iterate_in_thread(pool: BlockingPool, chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Yield the chunks of a blocking iterator, each fetched in a worker thread."""

    def step() -> bytes | None:
        return next(chunks, None)

    while (chunk := await pool.run(step)) is not None:
        if chunk:
            yield chunk


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    transient: Callable[[BaseException], bool],
    attempts: int = 4,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
) -> T:
    """Await ``call()``, retrying failures ``transient`` accepts, with full-jitter backoff;
    each retry is reported to :func:`core.retries.retried`."""
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as error:
            if attempt == attempts - 1 or not transient(error):
                raise
            retried()
            await anyio.sleep(random.uniform(0, min(max_delay, base_delay * 2**attempt)))
    raise AssertionError("unreachable")
