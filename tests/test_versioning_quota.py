"""Quotas on versioned sites (policy.catalog_versions, policy.quota_reservations): every
version counts in the site's usage, an overwrite frees nothing so it gets no credit, a
version deleted by id frees its bytes, and reindex counts the versions again."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.context import RequestContext
from core.errors import S3Error
from policy.catalog_contents import CatalogContents
from policy.model import SitePolicy
from policy.reindex import reindex
from policy.stack import Stack, build_stack
from tests.conformance.payload import MemoryPayload
from translators.base import ObjectInfo, WriteConditions, WriteMetadata
from translators.memory.backend import MemoryBackend

pytestmark = pytest.mark.anyio
CTX = RequestContext(request_id="test-versioning-quota", principal="root")
SITE = "site-v"
ARTIFACT = "builds/b1.tar.gz"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def storage() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
async def stack(tmp_path: Path, storage: MemoryBackend) -> AsyncIterator[Stack]:
    stack = build_stack(
        storage,
        f"sqlite:///{tmp_path / 'catalog.sqlite3'}",
        SitePolicy(validate_archives=False),
        1024**2,
    )
    await stack.catalog.start()
    await stack.backend.start()
    await stack.backend.create_bucket(CTX, SITE)
    await stack.policies.set_overrides(SITE, {"quota_bytes": 100})
    try:
        yield stack
    finally:
        await stack.close()
        await stack.catalog.close()


async def put(stack: Stack, key: str, size: int) -> ObjectInfo:
    return await stack.backend.put_object(
        CTX, SITE, key, MemoryPayload(b"x" * size), WriteMetadata(), WriteConditions()
    )


async def used(stack: Stack) -> int:
    return (await stack.catalog.usage(SITE)).bytes


async def test_an_unversioned_overwrite_is_credited(stack: Stack) -> None:
    await put(stack, "k", 60)
    await put(stack, "k", 60)
    assert await used(stack) == 60


async def test_every_version_counts_and_overwrites_get_no_credit(stack: Stack) -> None:
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    assert await stack.catalog.versioning_status(SITE) == "Enabled"
    first = await put(stack, "k", 40)
    await put(stack, "k", 40)
    assert await used(stack) == 80
    with pytest.raises(S3Error) as caught:
        await put(stack, "k", 40)
    assert caught.value.code == "QuotaExceeded"
    # A delete marker hides the latest; its bytes stay and still count.
    await stack.backend.delete_object(CTX, SITE, "k")
    assert await used(stack) == 80
    # Deleting a version by id frees it.
    assert first.version_id is not None
    await stack.backend.delete_version(CTX, SITE, "k", first.version_id)
    assert await used(stack) == 40
    await put(stack, "k", 40)
    assert await used(stack) == 80


async def test_reindex_counts_the_versions_again(stack: Stack, storage: MemoryBackend) -> None:
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    for size in (10, 20, 30):
        await put(stack, "k", size)
    await put(stack, "other", 5)
    assert await used(stack) == 65
    await CatalogContents(stack.catalog).clear()
    assert await used(stack) == 0
    await reindex(storage, stack.catalog)
    assert await used(stack) == 65
    assert await stack.catalog.versioning_status(SITE) == "Enabled"


async def put_artifact(stack: Stack, data: bytes, status: str) -> ObjectInfo:
    metadata = WriteMetadata(user_metadata={"status": status})
    payload = MemoryPayload(data, algorithms=("SHA256",))
    return await stack.backend.put_object(CTX, SITE, ARTIFACT, payload, metadata, WriteConditions())


async def test_each_version_keeps_its_own_row(stack: Stack) -> None:
    """An artifact overwritten twice has three rows, each with its own sha256 and status;
    deleting one by id removes its row and its bytes."""
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    datas = [bytes([n]) * (10 + n) for n in range(3)]
    infos = [await put_artifact(stack, data, f"s{n}") for n, data in enumerate(datas)]
    rows = (await stack.catalog.key_versions(SITE, ARTIFACT)).items
    assert [v.version_id for v in rows] == [i.version_id for i in infos[::-1]]
    assert [v.sha256 for v in rows] == [hashlib.sha256(d).hexdigest() for d in datas[::-1]]
    assert [v.status for v in rows] == ["s2", "s1", "s0"]
    usage = await stack.catalog.usage(SITE)
    assert (usage.bytes, usage.noncurrent_bytes, usage.noncurrent_versions) == (33, 21, 2)
    assert usage.artifacts == 1
    middle = infos[1].version_id
    assert middle is not None
    await stack.backend.delete_version(CTX, SITE, ARTIFACT, middle)
    rows = (await stack.catalog.key_versions(SITE, ARTIFACT)).items
    assert [v.version_id for v in rows] == [infos[2].version_id, infos[0].version_id]
    usage = await stack.catalog.usage(SITE)
    assert (usage.bytes, usage.noncurrent_bytes, usage.noncurrent_versions) == (22, 10, 1)


async def test_reindex_rebuilds_the_version_rows(stack: Stack, storage: MemoryBackend) -> None:
    """Reindex makes the rows what the backend lists: versions the catalog knew keep their
    fields, versions it never saw have none but their key's build id, versions gone (here
    deleted behind the gateway's back) lose their rows."""
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    datas = [bytes([n]) * (10 + n) for n in range(3)]
    infos = [await put_artifact(stack, data, f"s{n}") for n, data in enumerate(datas)]
    oldest = infos[0].version_id
    assert oldest is not None
    await storage.delete_version(CTX, SITE, ARTIFACT, oldest)
    await reindex(storage, stack.catalog)
    rows = (await stack.catalog.key_versions(SITE, ARTIFACT)).items
    assert [(v.version_id, v.sha256) for v in rows] == [
        (infos[2].version_id, hashlib.sha256(datas[2]).hexdigest()),
        (infos[1].version_id, hashlib.sha256(datas[1]).hexdigest()),
    ]
    await CatalogContents(stack.catalog).clear()
    await reindex(storage, stack.catalog)
    rows = (await stack.catalog.key_versions(SITE, ARTIFACT)).items
    assert [(v.version_id, v.is_latest) for v in rows] == [
        (infos[2].version_id, True),
        (infos[1].version_id, False),
    ]
    # The current version's checksum is read back; a noncurrent one's is not listed.
    assert rows[0].sha256 == hashlib.sha256(datas[2]).hexdigest()
    assert (rows[1].sha256, rows[1].build_id, rows[1].size) == (None, "b1", 11)
    assert (await stack.catalog.usage(SITE)).noncurrent_versions == 1


async def test_a_version_current_again_gets_back_its_catalog_state(stack: Stack) -> None:
    """A status set through the catalog (the artifact API) while a version was current
    comes back when the version is current again (the newer one deleted by id)."""
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    await put_artifact(stack, b"first", "s0")
    await stack.catalog.update(SITE, ARTIFACT, status="live")
    newer = await put_artifact(stack, b"second", "s1")
    rows = (await stack.catalog.key_versions(SITE, ARTIFACT)).items
    assert [v.status for v in rows] == ["s1", "live"]
    assert newer.version_id is not None
    await stack.backend.delete_version(CTX, SITE, ARTIFACT, newer.version_id)
    current = await stack.catalog.get(SITE, ARTIFACT)
    assert current is not None
    assert (current.status, current.size) == ("live", 5)
    assert [v.is_latest for v in (await stack.catalog.key_versions(SITE, ARTIFACT)).items] == [True]
