"""QuotaBackend over real FilesystemBackend, CatalogBackend and SqlCatalog (SQLite, PostgreSQL)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from core.context import RequestContext
from core.errors import S3Error
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.leases import LeaseKeeper, this_process
from policy.model import SitePolicy
from policy.policies import PolicyResolver
from policy.quota import QuotaBackend
from policy.quota_reservations import upload_reservation_id
from tests.conformance.payload import MemoryPayload
from tests.support.postgres import catalog_url
from translators.base import Backend, CompletedPart, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend

CTX = RequestContext(request_id="quota-test", principal="tester")
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
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty catalog of its own (PostgreSQL: a fresh schema, so that reclaiming other
    processes' reservations never touches another test's)."""
    with catalog_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
async def stack(url: str, tmp_path: Path) -> AsyncIterator[Stack]:
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


# Reservations nobody owns any more are reclaimed (policy.leases)


async def _started(url: str) -> SqlCatalog:
    catalog = SqlCatalog(url)
    await catalog.start()
    return catalog


@pytest.mark.anyio
async def test_reservations_of_an_expired_lease_are_reclaimed(stack: Stack, url: str) -> None:
    """A replica elsewhere stops renewing (it died): once its lease expired, a live
    replica reclaims its single-write reservations, and only those."""
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    other = await _started(url)
    try:
        now = datetime.now(UTC)
        await other.renew_lease("another-machine", "4242/1", now + timedelta(seconds=60))
        await other.reserve(stack.site, "write:gone", 60 * KIB, 0, SitePolicy())
        keeper = LeaseKeeper(stack.catalog, stack.quota, lease_s=60)
        await keeper.renew(now)
        await stack.catalog.reserve(stack.site, "write:mine", 10 * KIB, 0, SitePolicy())
        assert await keeper.reclaim(now) == 0  # not expired yet: could be alive
        assert (await stack.catalog.usage(stack.site)).reserved_bytes == 70 * KIB
        later = now + timedelta(seconds=61)
        await keeper.renew(later)
        assert await keeper.reclaim(later) == 1
        assert (await stack.catalog.usage(stack.site)).reserved_bytes == 10 * KIB
        assert [lease.id for lease in await stack.catalog.leases()] == [stack.catalog.lease_id]
        await stack.put("fits", b"f" * (80 * KIB))  # 90 KiB of 100: only without the dead 60
    finally:
        await other.close()


@pytest.mark.anyio
async def test_reservations_of_a_process_gone_from_this_machine_are_reclaimed_at_once(
    stack: Stack, url: str
) -> None:
    node, process = this_process()
    assert node is not None, "no /proc: cannot tell processes apart"
    assert process is not None
    pid, _, started = process.partition("/")
    later = datetime.now(UTC) + timedelta(hours=1)  # none of these leases has expired
    catalogs = {name: await _started(url) for name in ("dead", "reused-pid", "alive")}
    try:
        for name, identity in (
            ("dead", f"{2**22 + 1}/1"),  # above Linux's largest PID
            ("reused-pid", f"{pid}/{int(started) + 1}"),
            ("alive", process),
        ):
            await catalogs[name].renew_lease(node, identity, later)
            await catalogs[name].reserve(stack.site, f"write:{name}", KIB, 0, SitePolicy())
        keeper = LeaseKeeper(stack.catalog, stack.quota)
        await keeper.start()
        assert (await stack.catalog.usage(stack.site)).reserved_bytes == KIB  # "alive" only
        live = {lease.id for lease in await stack.catalog.leases()}
        assert live == {stack.catalog.lease_id, catalogs["alive"].lease_id}
    finally:
        for catalog in catalogs.values():
            await catalog.close()


@pytest.mark.anyio
async def test_multipart_reservations_live_as_long_as_their_upload(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"quota_bytes": 100 * KIB})
    key = "builds/9.tar.gz"
    kept = await stack.quota.create_multipart_upload(
        CTX, stack.site, key, WriteMetadata(), None, None
    )
    await stack.quota.upload_part(
        CTX, stack.site, key, kept.upload_id, 1, MemoryPayload(b"k" * (30 * KIB))
    )
    gone = await stack.quota.create_multipart_upload(
        CTX, stack.site, key, WriteMetadata(), None, None
    )
    await stack.quota.upload_part(
        CTX, stack.site, key, gone.upload_id, 1, MemoryPayload(b"g" * (20 * KIB))
    )
    # The upload ends, but its process dies before releasing the reservation.
    await stack.quota.inner.abort_multipart_upload(CTX, stack.site, key, gone.upload_id)
    keeper = LeaseKeeper(stack.catalog, stack.quota, lease_s=60)
    await keeper.renew()
    far = datetime.now(UTC) + timedelta(days=30)
    await keeper.renew(far)
    assert await keeper.reclaim(far) == 0  # lease expiry never touches uploads
    assert (await stack.catalog.usage(stack.site)).reserved_bytes == 50 * KIB
    assert await keeper.reclaim_uploads() == 1
    usage = await stack.catalog.usage(stack.site)
    assert (usage.reserved_bytes, usage.reserved_artifacts) == (30 * KIB, 1)
    await stack.quota.abort_multipart_upload(CTX, stack.site, key, kept.upload_id)
    assert (await stack.catalog.usage(stack.site)).reserved_bytes == 0


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
