"""Small helpers shared by the conformance tests."""

from __future__ import annotations

import anyio

from core.ranges import RangeSpec
from tests.conformance.conftest import CTX
from tests.conformance.payload import MemoryPayload
from translators.base import (
    Backend,
    GetOptions,
    ListPage,
    ListQuery,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
)


async def put(
    backend: Backend,
    bucket: str,
    key: str,
    data: bytes,
    *,
    metadata: WriteMetadata | None = None,
    conditions: WriteConditions | None = None,
    algorithms: tuple[str, ...] = ("CRC32",),
) -> ObjectInfo:
    return await backend.put_object(
        CTX,
        bucket,
        key,
        MemoryPayload(data, algorithms=algorithms),
        metadata or WriteMetadata(),
        conditions or WriteConditions(),
    )


async def read(
    backend: Backend,
    bucket: str,
    key: str,
    *,
    byte_range: RangeSpec | None = None,
    part_number: int | None = None,
) -> bytes:
    result = await backend.get_object(CTX, bucket, key, GetOptions(byte_range, part_number))
    chunks = [chunk async for chunk in result.body]
    await result.body.aclose()
    return b"".join(chunks)


async def list_all(backend: Backend, bucket: str, query: ListQuery) -> list[ListPage]:
    """Every page of a listing, following ``next_start_after``."""
    pages: list[ListPage] = []
    start_after = query.start_after
    while True:
        page = await backend.list_objects(
            CTX,
            bucket,
            ListQuery(query.prefix, query.delimiter, start_after, query.max_keys),
        )
        pages.append(page)
        if page.next_start_after is None:
            return pages
        assert len(page.objects) + len(page.common_prefixes) == query.max_keys
        start_after = page.next_start_after


async def put_many(backend: Backend, bucket: str, keys: list[str], concurrency: int = 32) -> None:
    """Create empty objects ``keys`` with ``concurrency`` writers in flight."""
    pending = iter(keys)

    async def worker() -> None:
        for key in pending:
            await put(backend, bucket, key, b"", algorithms=())

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
