"""A lean HTTP/1.1 load generator: pre-built requests replayed over keep-alive connections.

The requests are built once (presigned S3 URLs need no per-request signing), so each request
costs one socket write and a small response parse; on uvloop one core drives tens of thousands
of requests per second, well above what either server under test answers on its core.

Every loop here is bounded: by a deadline, by a request count, and by a watchdog that cancels
workers still waiting ``grace`` seconds after the deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

_HEAD, _BODY, _UNTIL_CLOSE, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER = range(7)
_MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Response:
    """What the load generator keeps of a response: the body only when asked for."""

    status: int
    body_length: int
    body: bytes = b""


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._body_length = 0
        self._body = bytearray()
        self._keep_body = False
        self._head_only = False
        self._status = 0
        self._close_after = False
        self._waiter: asyncio.Future[Response] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(loop), host, port)
        return protocol

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable.set()
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._state == _UNTIL_CLOSE:
            self._finish()
        else:
            waiter.set_exception(ConnectionError("connection closed before the response ended"))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._state == _BODY and not self._buffer and not self._keep_body:
            # Fast path for large bodies: count the bytes, never copy them.
            size = len(data)
            if size < self._remaining:
                self._remaining -= size
                self._body_length += size
                return
            self._body_length += self._remaining
            data = data[self._remaining :]
            self._remaining = 0
            self._finish()
            if not data:
                return
        self._buffer += data
        self._parse()

    # requests

    async def request(
        self,
        data: bytes,
        stream: AsyncIterator[bytes | memoryview] | None = None,
        *,
        head_only: bool = False,
        keep_body: bool = False,
    ) -> Response:
        """Send ``data`` (request head, and the body if small), then ``stream``; await the reply.

        A reply that arrives before the streamed body is fully sent (an early error) ends the
        upload and closes the connection, since the rest of the body can no longer be framed.
        """
        if self.closed or self._transport is None:
            raise ConnectionError("connection is closed")
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self._head_only = head_only
        self._keep_body = keep_body
        transport = self._transport
        transport.write(data)
        if stream is not None:
            async for chunk in stream:
                if waiter.done() or self.closed:
                    transport.close()
                    self.closed = True
                    break
                transport.write(chunk)
                if not self._writable.is_set():
                    await self._writable.wait()
        return await waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # response parsing

    def _parse(self) -> None:
        buffer = self._buffer
        while buffer:
            if self._waiter is None:
                buffer.clear()  # bytes nobody asked for: drop the connection
                self.close()
                return
            state = self._state
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD_BYTES:
                        self._fail("response head too large")
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                self._start_body(head)
            elif state in (_BODY, _CHUNK_DATA):
                take = min(len(buffer), self._remaining)
                if self._keep_body:
                    self._body += buffer[:take]
                del buffer[:take]
                self._body_length += take
                self._remaining -= take
                if self._remaining:
                    return
                if state == _BODY:
                    self._finish()
                else:
                    self._state = _CHUNK_END
            elif state == _UNTIL_CLOSE:
                if self._keep_body:
                    self._body += buffer
                self._body_length += len(buffer)
                buffer.clear()
            elif state == _CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
                del buffer[: end + 2]
                self._remaining = size
                self._state = _CHUNK_DATA if size else _TRAILER
            elif state == _CHUNK_END:
                if len(buffer) < 2:
                    return
                del buffer[:2]
                self._state = _CHUNK_SIZE
            else:  # _TRAILER: header lines until an empty one
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finish()

    def _start_body(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status = int(lines[0][9:12])
        if 100 <= status < 200:
            return  # interim response; the real one follows
        self._status = status
        self._body_length = 0
        self._body = bytearray()
        length: int | None = None
        chunked = False
        close = lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        self._close_after = close
        if self._head_only or status in (204, 304):
            self._finish()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._remaining = length
            self._state = _BODY
            if length == 0:
                self._finish()
        else:
            self._close_after = True
            self._state = _UNTIL_CLOSE

    def _finish(self) -> None:
        waiter = self._waiter
        self._waiter = None
        self._state = _HEAD
        if self._close_after:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, self._body_length, bytes(self._body)))

    def _fail(self, message: str) -> None:
        waiter = self._waiter
        self._waiter = None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(message))


@dataclass
class LoadResult:
    """The outcome of one closed-loop run: successes, failures and their latencies (seconds)."""

    completed: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """The latency below which ``fraction`` of the successful requests completed."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index]

    def note_failure(self, reason: str) -> None:
        self.failed += 1
        if not self.first_failure:
            self.first_failure = reason


def _success(response: Response) -> bool:
    return 200 <= response.status < 300


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration: float,
    max_requests: int,
    head_only: bool = False,
    accept: Callable[[Response], bool] | None = None,
    grace: float = 30.0,
) -> LoadResult:
    """Replay ``requests`` round-robin from ``concurrency`` connections.

    Each connection sends its next request as soon as the previous reply ends. The run stops
    after ``duration`` seconds or ``max_requests`` requests, whichever comes first; a worker
    still waiting ``grace`` seconds after that is cancelled and counted as a failure.
    """
    accept = accept or _success
    result = LoadResult()
    counter = itertools.count()
    total = len(requests)
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        connection = await Connection.open(host, port)
        try:
            while True:
                index = next(counter)
                if index >= max_requests or time.perf_counter() >= deadline:
                    return
                sent = time.perf_counter()
                try:
                    response = await connection.request(
                        requests[index % total], head_only=head_only
                    )
                except ConnectionError as error:
                    result.note_failure(f"connection error: {error}")
                    connection = await Connection.open(host, port)
                    continue
                if accept(response):
                    result.completed += 1
                    result.latencies.append(time.perf_counter() - sent)
                else:
                    result.note_failure(f"HTTP {response.status}, {response.body_length} bytes")
                if connection.closed:
                    connection = await Connection.open(host, port)
        finally:
            connection.close()

    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=duration + grace)
    result.elapsed = time.perf_counter() - start
    for task in pending:
        task.cancel()
        result.note_failure("timed out")
    if pending:
        await asyncio.wait(pending)
    for task in done:
        error = task.exception()
        if error is not None:
            raise error
    return result


async def repeat_blocks(block: bytes, total: int) -> AsyncIterator[bytes | memoryview]:
    """``total`` bytes made of ``block`` repeated: a body generated as it is sent."""
    view = memoryview(block)
    sent = 0
    while sent < total:
        size = min(len(block), total - sent)
        yield view[:size]
        sent += size


async def slices(body: bytes, size: int = 1024 * 1024) -> AsyncIterator[bytes | memoryview]:
    """``body`` in ``size`` pieces, without copying it."""
    view = memoryview(body)
    for start in range(0, len(body), size):
        yield view[start : start + size]


@dataclass(frozen=True)
class Transfer:
    response: Response
    seconds: float


async def transfer(
    host: str,
    port: int,
    data: bytes,
    stream: AsyncIterator[bytes | memoryview] | None = None,
    *,
    time_limit: float,
    keep_body: bool = False,
) -> Transfer:
    """One request on a fresh connection, timed from the first byte sent to the last received."""
    connection = await Connection.open(host, port)
    try:
        start = time.perf_counter()
        response = await asyncio.wait_for(
            connection.request(data, stream, keep_body=keep_body), time_limit
        )
        return Transfer(response, time.perf_counter() - start)
    finally:
        connection.close()
