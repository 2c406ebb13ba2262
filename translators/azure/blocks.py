"""Streaming an upload body into staged Azure blocks, and streaming a download back out.

:class:`BlockWriter` reads a :class:`PayloadStream` into bounded blocks and stages them
(``stage_block``) with at most ``concurrency`` in flight, so memory stays at about
``(concurrency + 1) * block_size`` whatever the object size. Staged blocks are invisible
until a block list naming them is committed; a body that fails midway commits nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from typing import Final, Protocol

import anyio
from azure.storage.blob.aio import BlobClient, StorageStreamDownloader

from core.streams import PayloadStream
from translators.azure import names as azure_names
from translators.azure.errors import map_errors

#: Largest body sent as one Put Blob (aiohttp sends larger byte bodies only with a warning
#: that they may block the event loop).
SMALL_PUT: Final = 1024 * 1024
#: Largest piece a GetObject body yields (the gateway's bound for every translator).
BODY_PIECE: Final = 1024 * 1024


class Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to re-raise from a task group: the first that is not a cancellation."""
    cancelled = anyio.get_cancelled_exc_class()
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_error(error)
        if not isinstance(error, cancelled):
            return error
    return group.exceptions[0]


class BlockWriter:
    """Stages a body's blocks on ``blob`` under ids of ``(upload_id, part_number, attempt)``.

    With ``keep_small`` a body of at most :data:`SMALL_PUT` bytes is not staged but left in
    ``small`` (the caller uploads it in one Put Blob). ``hasher`` sees every byte, in order.
    """

    def __init__(
        self,
        blob: BlobClient,
        *,
        upload_id: str,
        part_number: int,
        block_size: int,
        concurrency: int,
        keep_small: bool,
        key: str,
        hasher: Hasher | None = None,
    ) -> None:
        self.blob = blob
        self.upload_id = upload_id
        self.part_number = part_number
        self.attempt = os.urandom(4).hex()
        self.block_size = block_size
        self.limiter = anyio.Semaphore(concurrency)
        self.keep_small = keep_small
        self.key = key
        self.hasher = hasher
        self.block_ids: list[str] = []
        self.small: bytes | None = None

    async def receive(self, body: PayloadStream) -> None:
        """Read ``body`` to its end and stage it; raises what the body or Azure raised."""
        try:
            async with anyio.create_task_group() as group:
                buffer = bytearray()
                async for chunk in body:
                    if self.hasher is not None:
                        self.hasher.update(chunk)
                    buffer += chunk
                    while len(buffer) >= self.block_size:
                        block = bytes(buffer[: self.block_size])
                        del buffer[: self.block_size]
                        await self._stage(group, block)
                if self.keep_small and not self.block_ids and len(buffer) <= SMALL_PUT:
                    self.small = bytes(buffer)
                elif buffer:
                    await self._stage(group, bytes(buffer))
        except BaseExceptionGroup as group:
            raise first_error(group) from None

    async def _stage(self, group: anyio.abc.TaskGroup, block: bytes) -> None:
        block_id = azure_names.block_id(
            self.upload_id, self.part_number, self.attempt, len(self.block_ids)
        )
        self.block_ids.append(block_id)
        await self.limiter.acquire()

        async def stage() -> None:
            try:
                with map_errors(key=self.key):
                    await self.blob.stage_block(block_id, io.BytesIO(block), length=len(block))
            finally:
                self.limiter.release()

        group.start_soon(stage)


class DownloadBody:
    """An :class:`translators.base.ObjectBody` over a downloader's chunks, yielded in pieces
    of at most ``piece`` bytes (a download request may fetch more at once: see
    ``translators.azure.backend.CHUNK_SIZE``)."""

    def __init__(
        self, downloader: StorageStreamDownloader[bytes] | None, key: str, piece: int = BODY_PIECE
    ) -> None:
        self._chunks: AsyncIterator[bytes] | None = (
            downloader.chunks() if downloader is not None else None
        )
        self._key = key
        self._piece = piece
        self._pending = memoryview(b"")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self._pending and self._chunks is not None:
            with map_errors(key=self._key):
                chunk = await anext(self._chunks, None)
            if chunk is None:
                self._chunks = None
            else:
                self._pending = memoryview(chunk)
        if not self._pending:
            raise StopAsyncIteration
        piece, self._pending = self._pending[: self._piece], self._pending[self._piece :]
        return bytes(piece)

    async def aclose(self) -> None:
        self._chunks = None
        self._pending = memoryview(b"")
