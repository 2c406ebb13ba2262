"""Housekeeping passes (policy.housekeeping): abandoned multipart uploads aborted through
the stack (reservations released, staged artifact uploads included), stale staging objects
and translators' own leftovers swept, each bounded per run."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from core.context import RequestContext
from policy.housekeeping import abort_abandoned_uploads, sweep_leftovers
from policy.model import SitePolicy
from policy.stack import Stack, build_stack
from policy.staging import new_nonce, staging_key
from tests.conformance.payload import MemoryPayload
from translators.base import Sweeper, UploadsQuery, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend
from translators.memory.backend import MemoryBackend

pytestmark = pytest.mark.anyio
CTX = RequestContext(request_id="test", principal="root")
SITE = "site-a"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, MemoryBackend]]:
    translator = MemoryBackend()
    stack = build_stack(
        translator, f"sqlite:///{tmp_path / 'catalog.sqlite3'}", SitePolicy(), 1024**2
    )
    await stack.catalog.start()
    await stack.backend.start()
    await stack.backend.create_bucket(CTX, SITE)
    try:
        yield stack, translator
    finally:
        await stack.close()
        await stack.catalog.close()


async def _upload(stack: Stack, key: str) -> str:
    upload = await stack.backend.create_multipart_upload(
        CTX, SITE, key, WriteMetadata(), None, None
    )
    return upload.upload_id


async def _uploads(stack: Stack) -> set[str]:
    page = await stack.backend.list_multipart_uploads(CTX, SITE, UploadsQuery())
    return {upload.key for upload in page.uploads}


async def test_uploads_older_than_the_age_are_aborted_and_their_reservations_released(
    stack: tuple[Stack, MemoryBackend],
) -> None:
    wrapped, translator = stack
    await wrapped.policies.set_overrides(SITE, {"quota_artifacts": 10})
    await _upload(wrapped, "old/plain.bin")
    await _upload(wrapped, "builds/1.tar.gz")  # staged, with an artifact reserved
    assert (await wrapped.catalog.usage(SITE)).reserved_artifacts == 1
    await anyio.sleep(0.3)
    await _upload(wrapped, "new/plain.bin")

    aborted = await abort_abandoned_uploads(wrapped.backend, timedelta(seconds=0.2))

    assert aborted == 2
    assert await _uploads(wrapped) == {"new/plain.bin"}
    assert (await wrapped.catalog.usage(SITE)).reserved_artifacts == 0
    assert [n for n in translator.held_buffers() if n.startswith("part:")] == []


async def test_aborting_stops_at_the_limit_and_the_next_run_goes_on(
    stack: tuple[Stack, MemoryBackend],
) -> None:
    wrapped, _ = stack
    for index in range(5):
        await _upload(wrapped, f"k{index}")
    assert await abort_abandoned_uploads(wrapped.backend, timedelta(0), limit=3, page_size=2) == 3
    assert len(await _uploads(wrapped)) == 2
    assert await abort_abandoned_uploads(wrapped.backend, timedelta(0), limit=3, page_size=2) == 2
    assert await _uploads(wrapped) == set()


async def test_stale_staging_objects_are_swept_and_nothing_else(
    stack: tuple[Stack, MemoryBackend],
) -> None:
    _, translator = stack
    leftover = staging_key(new_nonce(), "builds/2.tar.gz")
    for key in (leftover, "index.html"):
        await translator.put_object(
            CTX, SITE, key, MemoryPayload(b"x"), WriteMetadata(), WriteConditions()
        )
    assert await sweep_leftovers(translator, timedelta(hours=1)) == 0  # too young
    assert await sweep_leftovers(translator, timedelta(0)) == 1
    assert translator.held_buffers() == [f"object:{SITE}/index.html"]


async def test_the_filesystem_sweeps_old_temp_files_and_orphaned_blobs(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path / "storage", fsync=False)
    await backend.start()
    try:
        assert isinstance(backend, Sweeper)
        await backend.create_bucket(CTX, SITE)
        await backend.put_object(
            CTX, SITE, "kept", MemoryPayload(b"live"), WriteMetadata(), WriteConditions()
        )
        root = tmp_path / "storage"
        live_blobs = {p.name for p in (root / "blobs").rglob("*") if p.is_file()}
        old = time.time() - 7200
        planted = {
            "old-temp": root / "tmp" / "old-temp",
            "new-temp": root / "tmp" / "new-temp",
            "old-orphan": root / "blobs" / "ab" / "ab-old-orphan",
            "new-orphan": root / "blobs" / "ab" / "ab-new-orphan",
        }
        for name, path in planted.items():
            path.write_bytes(b"debris")
            if name.startswith("old"):
                os.utime(path, (old, old))
        for blob in live_blobs:  # live blobs are never swept, however old
            path = root / "blobs" / blob[:2] / blob
            os.utime(path, (old, old))

        removed = await backend.sweep(datetime.now(UTC) - timedelta(hours=1), limit=100)

        assert removed == 2
        assert {n for n, p in planted.items() if p.exists()} == {"new-temp", "new-orphan"}
        assert {p.name for p in (root / "blobs").rglob("*") if p.is_file()} == {
            *live_blobs,
            "ab-new-orphan",
        }
        info = await backend.head_object(CTX, SITE, "kept")
        assert info.size == 4
        assert await backend.sweep(datetime.now(UTC), limit=1) == 1  # bounded
    finally:
        await backend.close()
