"""QuotaBackend over real FilesystemBackend, CatalogBackend and SqlCatalog (SQLite, PostgreSQL)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from gateway.errors import S3Error
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.model import SitePolicy
from policy.policies import PolicyResolver
from policy.quota import QuotaBackend, upload_reservation_id
from tests.conformance.payload import MemoryPayload
from translators.base import (
    Backend,
    CompletedPart,
    RequestContext,
    WriteConditions,
    WriteMetadata,
)
from translators.filesystem import FilesystemBackend

CTX = RequestContext(request_id="quota-test", principal="tester")
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
KIB = 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class UnknownLengthPayload(MemoryPayload):
    """A body whose length the client did not announce (aws-chunked without a decoded
    length, or a chunked transfer)."""

    @property
    def declared_size(self) -> int | None:
        return None


@dataclass
class Stack:
    quota: QuotaBackend
    catalog: SqlCatalog
    policies: PolicyResolver
    site: str

    async def put(self, key: str, data: bytes, *, unknown_length: bool = False) -> None:
        cls = UnknownLengthPayload if unknown_length else MemoryPayload
        await self.quota.put_object(
            CTX, self.site, key, cls(data, chunk_size=4 * KIB), WriteMetadata(), WriteConditions()
        )

    async def keys(self) -> list[str]:
        from translators.base import ListQuery

        page = await self.quota.list_objects(CTX, self.site, ListQuery())
        return [o.key for o in page.objects]


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}" if request.param == "sqlite" else POSTGRES_URL
    catalog = SqlCatalog(url)
    storage = FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False)
    policies = PolicyResolver(SitePolicy(), catalog, ttl_s=0)
    backend = QuotaBackend(
        CatalogBackend(storage, catalog), catalog, policies, max_object_size=1024 * KIB
    )
    await backend.start()
    site = f"quota-{uuid.uuid4().hex[:12]}"
    await backend.create_bucket(CTX, site)
    try:
        yield Stack(backend, catalog, policies, site)
    finally:
        await catalog.delete_site(site)
        await catalog.set_site_overrides(site, {})
        await backend.close()


def _code(info: pytest.ExceptionInfo[S3Error]) -> str:
    return info.value.code


@pytest.mark.anyio
async def test_concurrent_uploads_over_quota_exactly_one_fails(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    results: dict[str, BaseException | None] = {}

    async def upload(key: str) -> None:
        try:
            await stack.put(key, b"x" * (60 * KIB))
            results[key] = None
        except S3Error as exc:
            results[key] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(upload, "a.bin")
        tg.start_soon(upload, "b.bin")

    failures = [e for e in results.values() if e is not None]
    assert len(failures) == 1
    assert isinstance(failures[0], S3Error)
    assert failures[0].code == "QuotaExceeded"
    assert failures[0].status == 403
    assert stack.site in failures[0].message
    assert "102400" in failures[0].message
    assert len(await stack.keys()) == 1  # nothing partial stored
    usage = await stack.catalog.usage(stack.site)
    assert (usage.bytes, usage.objects, usage.reserved_bytes) == (60 * KIB, 1, 0)


@pytest.mark.anyio
async def test_many_concurrent_unknown_length_uploads_never_overshoot(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    stored: list[str] = []
    codes: set[str] = set()

    async def upload(index: int) -> None:
        try:
            await stack.put(f"k{index}", b"y" * (30 * KIB), unknown_length=True)
            stored.append(f"k{index}")
        except S3Error as exc:
            codes.add(exc.code)

    async with anyio.create_task_group() as tg:
        for index in range(6):
            tg.start_soon(upload, index)

    assert codes == {"QuotaExceeded"}
    usage = await stack.catalog.usage(stack.site)
    assert usage.bytes <= 100 * KIB
    assert usage.bytes == 30 * KIB * len(stored)
    assert usage.reserved_bytes == 0
    assert sorted(await stack.keys()) == sorted(stored)


@pytest.mark.anyio
async def test_replacement_counts_only_the_difference(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    await stack.put("site.bin", b"a" * (60 * KIB))
    await stack.put("site.bin", b"b" * (70 * KIB))  # +10 KiB, not +70
    with pytest.raises(S3Error) as info:
        await stack.put("other.bin", b"c" * (40 * KIB))
    assert _code(info) == "QuotaExceeded"
    usage = await stack.catalog.usage(stack.site)
    assert (usage.bytes, usage.objects, usage.reserved_bytes) == (70 * KIB, 1, 0)


@pytest.mark.anyio
async def test_concurrent_replacements_and_new_keys_never_overshoot(stack: Stack) -> None:
    """Shrinking replacements free space while growing ones of the same key are in flight."""
    quota = 100 * KIB
    await stack.policies.set_overrides(stack.site, {"quota_bytes": quota})
    await stack.put("k", b"a" * (50 * KIB))
    sizes = {"k": [10, 90, 20, 80], "n1": [50], "n2": [40]}

    codes: set[str] = set()

    async def upload(key: str, size: int) -> None:
        try:
            await stack.put(key, b"z" * (size * KIB))
        except S3Error as exc:
            codes.add(exc.code)

    async with anyio.create_task_group() as tg:
        for key, each in sizes.items():
            for size in each:
                tg.start_soon(upload, key, size)

    assert codes <= {"QuotaExceeded"}
    usage = await stack.catalog.usage(stack.site)
    assert usage.bytes <= quota
    assert usage.reserved_bytes == 0


@pytest.mark.anyio
async def test_entity_too_large_from_declared_length(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"max_object_size": 10 * KIB})

    class Unread(MemoryPayload):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            raise AssertionError("the body must not be read")
            yield b""  # pragma: no cover

    with pytest.raises(S3Error) as info:
        await stack.quota.put_object(
            CTX, stack.site, "big", Unread(b"x" * (11 * KIB)), WriteMetadata(), WriteConditions()
        )
    assert _code(info) == "EntityTooLarge"
    assert info.value.fields["MaxSizeAllowed"] == str(10 * KIB)
    usage = await stack.catalog.usage(stack.site)
    assert (usage.objects, usage.reserved_bytes) == (0, 0)


@pytest.mark.anyio
async def test_entity_too_large_while_streaming_an_unknown_length(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"max_object_size": 10 * KIB})
    with pytest.raises(S3Error) as info:
        await stack.put("big", b"x" * (11 * KIB), unknown_length=True)
    assert _code(info) == "EntityTooLarge"
    await stack.put("fits", b"x" * (10 * KIB), unknown_length=True)
    assert await stack.keys() == ["fits"]
    usage = await stack.catalog.usage(stack.site)
    assert (usage.bytes, usage.reserved_bytes) == (10 * KIB, 0)


@pytest.mark.anyio
async def test_global_max_object_size_applies_without_a_site_limit(stack: Stack) -> None:
    with pytest.raises(S3Error) as info:
        await stack.put("big", b"x" * (1024 * KIB + 1), unknown_length=True)
    assert _code(info) == "EntityTooLarge"


@pytest.mark.anyio
async def test_quota_on_an_unknown_length_stream(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 20 * KIB})
    with pytest.raises(S3Error) as info:
        await stack.put("big", b"x" * (21 * KIB), unknown_length=True)
    assert _code(info) == "QuotaExceeded"
    assert await stack.keys() == []
    usage = await stack.catalog.usage(stack.site)
    assert (usage.bytes, usage.reserved_bytes) == (0, 0)


@pytest.mark.anyio
async def test_artifact_count_quota(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_artifacts": 2})
    await stack.put("builds/1.tar.gz", b"1")
    await stack.put("builds/2.tar.gz", b"2")
    await stack.put("builds/2.tar.gz", b"2 again")  # a replacement adds no artifact
    await stack.put("notes.txt", b"ordinary objects do not count as artifacts")
    with pytest.raises(S3Error) as info:
        await stack.put("builds/3.tar.gz", b"3")
    assert _code(info) == "QuotaExceeded"
    assert "artifacts quota of 2" in info.value.message
    usage = await stack.catalog.usage(stack.site)
    assert (usage.artifacts, usage.objects, usage.reserved_artifacts) == (2, 3, 0)


@pytest.mark.anyio
async def test_multipart_reservation_grows_per_part_and_is_released_on_abort(
    stack: Stack,
) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    key = "builds/7.tar.gz"
    upload = await stack.quota.create_multipart_upload(
        CTX, stack.site, key, WriteMetadata(), None, None
    )
    assert (await stack.catalog.usage(stack.site)).reserved_artifacts == 1
    for number in (1, 2):
        await stack.quota.upload_part(
            CTX, stack.site, key, upload.upload_id, number, MemoryPayload(b"p" * (40 * KIB))
        )
        assert (await stack.catalog.usage(stack.site)).reserved_bytes == number * 40 * KIB
    with pytest.raises(S3Error) as info:
        await stack.quota.upload_part(
            CTX, stack.site, key, upload.upload_id, 3, MemoryPayload(b"p" * (40 * KIB))
        )
    assert _code(info) == "QuotaExceeded"
    assert (await stack.catalog.usage(stack.site)).reserved_bytes == 80 * KIB
    await stack.quota.abort_multipart_upload(CTX, stack.site, key, upload.upload_id)
    usage = await stack.catalog.usage(stack.site)
    assert (usage.reserved_bytes, usage.reserved_artifacts, usage.bytes) == (0, 0, 0)


@pytest.mark.anyio
async def test_multipart_complete_releases_and_the_object_counts(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    key = "builds/8.tar.gz"
    upload = await stack.quota.create_multipart_upload(
        CTX, stack.site, key, WriteMetadata(), None, None
    )
    parts = []
    for number in (1, 2):
        part = await stack.quota.upload_part(
            CTX, stack.site, key, upload.upload_id, number, MemoryPayload(b"q" * (30 * KIB))
        )
        parts.append(CompletedPart(number, part.etag))
    await stack.quota.complete_multipart_upload(
        CTX, stack.site, key, upload.upload_id, parts, WriteConditions()
    )
    usage = await stack.catalog.usage(stack.site)
    assert (usage.bytes, usage.artifacts, usage.reserved_bytes, usage.reserved_artifacts) == (
        60 * KIB,
        1,
        0,
        0,
    )
    # The upload's reservation id is gone in every replica's view.
    await stack.catalog.release(upload_reservation_id(stack.site, key, upload.upload_id))


@pytest.mark.anyio
async def test_multipart_completion_over_the_size_limit(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"max_object_size": 50 * KIB})
    upload = await stack.quota.create_multipart_upload(
        CTX, stack.site, "big", WriteMetadata(), None, None
    )
    parts = []
    for number in (1, 2):
        part = await stack.quota.upload_part(
            CTX, stack.site, "big", upload.upload_id, number, MemoryPayload(b"r" * (30 * KIB))
        )
        parts.append(CompletedPart(number, part.etag))
    with pytest.raises(S3Error) as info:
        await stack.quota.complete_multipart_upload(
            CTX, stack.site, "big", upload.upload_id, parts, WriteConditions()
        )
    assert _code(info) == "EntityTooLarge"
    await stack.quota.abort_multipart_upload(CTX, stack.site, "big", upload.upload_id)
    assert (await stack.catalog.usage(stack.site)).reserved_bytes == 0


@pytest.mark.anyio
async def test_failed_upload_releases_its_reservation(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    with pytest.raises(S3Error) as info:
        await stack.quota.put_object(
            CTX,
            stack.site,
            "broken",
            MemoryPayload(b"x" * (50 * KIB), fail_after=8 * KIB),
            WriteMetadata(),
            WriteConditions(),
        )
    assert _code(info) == "IncompleteBody"
    usage = await stack.catalog.usage(stack.site)
    assert (usage.objects, usage.reserved_bytes) == (0, 0)


def test_every_backend_method_is_forwarded_explicitly() -> None:
    """Deny by default: no __getattr__, and every Backend method defined on the wrapper."""
    from policy.retention import RetentionBackend

    wanted = {
        name
        for name, member in inspect.getmembers(Backend)
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }
    for wrapper in (QuotaBackend, RetentionBackend):
        assert "__getattr__" not in vars(wrapper)
        missing = wanted - set(vars(wrapper))
        assert not missing, f"{wrapper.__name__} does not forward {sorted(missing)}"
