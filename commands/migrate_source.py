"""Reading a migration's source: the read-only part of the Backend a migration may use, and
the object body handed out as consecutive, digested slices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from commands.migrate_verify import VerificationError, verify_source_read
from core.context import RequestContext
from core.digest import Digester
from core.errors import S3Error
from core.streams import ObjectBody, PayloadDigest, ReadOncePayload
from translators.base import BucketInfo, GetOptions, GetResult, ListPage, ListQuery, ObjectInfo


class ReadableStore(Protocol):
    """The part of :class:`Backend` a migration may use on its source: reads only."""

    name: str

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]: ...

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo: ...

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo: ...

    async def list_objects(
        self, ctx: RequestContext, bucket: str, query: ListQuery
    ) -> ListPage: ...

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult: ...


class SourceReader:
    """One object body read once, handed out as consecutive slices of exact sizes."""

    def __init__(self, body: ObjectBody) -> None:
        self._body = body
        self._chunks = aiter(body)
        self._pending = b""
        self._closed = False

    async def take(self, size: int) -> AsyncIterator[bytes]:
        remaining = size
        while remaining > 0:
            if not self._pending:
                try:
                    self._pending = await anext(self._chunks)
                except StopAsyncIteration:
                    raise S3Error(
                        "IncompleteBody", "the source object ended before its reported size"
                    ) from None
                continue
            chunk = self._pending[:remaining]
            self._pending = self._pending[len(chunk) :]
            remaining -= len(chunk)
            yield chunk

    async def finish(self) -> None:
        """Fail if the source has bytes beyond its reported size; close it."""
        try:
            extra = bool(self._pending)
            if not extra:
                async for chunk in self._chunks:
                    if chunk:
                        extra = True
                        break
            if extra:
                raise VerificationError("the source object is longer than its reported size")
        finally:
            await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._body.aclose()


class CopyPayload(ReadOncePayload):
    """A :class:`translators.base.PayloadStream` of consecutive slices of the source.

    Besides the whole payload's digest it keeps one digest per slice (``part_sizes``), so a
    multipart source's ETag and COMPOSITE checksums can be checked against the bytes read.
    With ``source``, the payload is the whole object: after its last byte it checks that
    the source has nothing more and that the bytes match ``source``'s size, ETag and
    checksums (SHA256 included), and raises :class:`VerificationError` from the iterator
    otherwise, so the target commits nothing (the Backend's atomic-write contract).
    """

    def __init__(
        self,
        reader: SourceReader,
        part_sizes: list[int],
        algorithms: tuple[str, ...],
        on_bytes: Callable[[int], None],
        source: ObjectInfo | None = None,
    ) -> None:
        super().__init__()
        self._reader = reader
        self._part_sizes = part_sizes
        self._algorithms = algorithms
        self._on_bytes = on_bytes
        self._source = source
        self._whole = Digester(algorithms)
        self.parts: list[PayloadDigest] = []

    @property
    def declared_size(self) -> int | None:
        return sum(self._part_sizes)

    async def _stream(self) -> AsyncIterator[bytes]:
        for size in self._part_sizes:
            part = Digester(self._algorithms)
            async for chunk in self._reader.take(size):
                part.update(chunk)
                self._whole.update(chunk)
                self._on_bytes(len(chunk))
                yield chunk
            self.parts.append(part.result())
        if self._source is not None:
            await self._reader.finish()
            verify_source_read(self._source, self._whole.result(), self.parts)
        self._finish(self._whole.result())
