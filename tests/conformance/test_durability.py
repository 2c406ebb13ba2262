"""Atomicity under concurrency, interruption, cancellation and restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

from core.errors import S3Error
from core.streams import PayloadDigest
from tests.conformance.conftest import CTX, Harness
from tests.conformance.helpers import put, read
from tests.conformance.payload import MemoryPayload
from translators.base import Backend, CompletedPart, Sweeper, WriteConditions, WriteMetadata

pytestmark = pytest.mark.anyio


async def test_concurrent_writers_never_tear(backend: Backend, bucket: str) -> None:
    bodies = [bytes([65 + n]) * (300_000 + n) for n in range(8)]
    seen: set[bytes] = set()

    async def writer(body: bytes) -> None:
        for _ in range(3):
            await put(backend, bucket, "contended", body)

    async def reader() -> None:
        for _ in range(30):
            seen.add(await read(backend, bucket, "contended"))
            await anyio.lowlevel.checkpoint()

    await put(backend, bucket, "contended", bodies[0])
    async with anyio.create_task_group() as group:
        for body in bodies:
            group.start_soon(writer, body)
        group.start_soon(reader)
    final = await read(backend, bucket, "contended")
    assert final in bodies
    assert seen <= set(bodies)
    head = await backend.head_object(CTX, bucket, "contended")
    assert head.size == len(final)


async def test_interrupted_upload_keeps_previous_version(harness: Harness, bucket: str) -> None:
    backend = harness.backend
    await put(backend, bucket, "k", b"previous")
    before = harness.stored_files() if harness.stored_files else None
    payload = MemoryPayload(b"n" * 3_000_000, chunk_size=100_000, fail_after=2_500_000)
    with pytest.raises(S3Error) as caught:
        await backend.put_object(CTX, bucket, "k", payload, WriteMetadata(), WriteConditions())
    assert caught.value.code == "IncompleteBody"
    assert await read(backend, bucket, "k") == b"previous"
    if harness.stored_files is not None:
        assert harness.stored_files() == before


async def test_interrupted_part_upload_leaves_nothing(harness: Harness, bucket: str) -> None:
    backend = harness.backend
    upload = await backend.create_multipart_upload(CTX, bucket, "k", WriteMetadata(), None, None)
    payload = MemoryPayload(b"p" * 2_000_000, chunk_size=100_000, fail_after=1_500_000)
    with pytest.raises(S3Error):
        await backend.upload_part(CTX, bucket, "k", upload.upload_id, 1, payload)
    _, page = await backend.list_parts(CTX, bucket, "k", upload.upload_id, 0, 10)
    assert page.parts == []
    if harness.stored_files is not None:
        assert harness.stored_files() == []


async def test_cancelled_upload_keeps_previous_version(harness: Harness, bucket: str) -> None:
    backend = harness.backend
    await put(backend, bucket, "k", b"previous")
    before = harness.stored_files() if harness.stored_files else None
    with anyio.move_on_after(0.05):
        # A body that stalls forever after 2 MB, like a client that stopped sending.
        await backend.put_object(
            CTX, bucket, "k", _StallingPayload(2_000_000), WriteMetadata(), WriteConditions()
        )
    assert await read(backend, bucket, "k") == b"previous"
    if harness.stored_files is not None:
        assert harness.stored_files() == before


async def test_restart_keeps_data_and_removes_orphans(harness: Harness, bucket: str) -> None:
    if harness.restart is None or harness.stored_files is None or harness.plant_debris is None:
        pytest.skip("the backend has no local storage to restart")
    await put(harness.backend, bucket, "kept", b"kept")
    harness.plant_debris(bucket)
    assert len(harness.stored_files()) > 1
    backend = await harness.restart()
    assert await read(backend, bucket, "kept") == b"kept"
    assert len(harness.stored_files()) == 1


async def test_a_sweep_removes_old_leftovers_only(harness: Harness, bucket: str) -> None:
    """A translator with the optional Sweeper capability removes only leftovers, and only
    old ones: planted debris survives a cutoff before it was written; with a cutoff in the
    future (everything counts as old) it goes, ``limit`` removals per call, while a live
    object and a live upload's part survive and the upload still completes."""
    backend = harness.backend
    if not isinstance(backend, Sweeper):
        pytest.skip("the backend has no leftovers of its own to sweep")
    assert harness.plant_debris is not None
    assert harness.leftovers is not None
    await put(backend, bucket, "kept", b"kept")
    upload = await backend.create_multipart_upload(
        CTX, bucket, "pending", WriteMetadata(), None, None
    )
    part = await backend.upload_part(
        CTX, bucket, "pending", upload.upload_id, 1, MemoryPayload(b"p")
    )
    harness.plant_debris(bucket)
    planted = len(harness.leftovers())
    assert planted >= 2
    assert harness.stored_files is None or len(harness.stored_files()) > 2

    assert await backend.sweep(datetime.now(UTC) - timedelta(hours=1), limit=1000) == 0
    assert len(harness.leftovers()) == planted
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await backend.sweep(later, limit=1) == 1
    assert len(harness.leftovers()) == planted - 1
    assert await backend.sweep(later, limit=1000) == planted - 1
    assert harness.leftovers() == []
    assert await backend.sweep(later, limit=1000) == 0

    assert await read(backend, bucket, "kept") == b"kept"
    _, parts = await backend.list_parts(CTX, bucket, "pending", upload.upload_id, 0, 10)
    assert [p.part_number for p in parts.parts] == [1]
    if harness.stored_files is not None:
        assert len(harness.stored_files()) == 2  # the object's blob and the part's
    await backend.complete_multipart_upload(
        CTX,
        bucket,
        "pending",
        upload.upload_id,
        [CompletedPart(1, part.etag)],
        WriteConditions(),
    )
    assert await read(backend, bucket, "pending") == b"p"


class _StallingPayload:
    def __init__(self, size: int) -> None:
        self.size = size

    @property
    def declared_size(self) -> int | None:
        return None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(0, self.size, 100_000):
            yield b"s" * 100_000
        await anyio.sleep_forever()

    def digest(self) -> PayloadDigest:
        raise AssertionError("never finished")
