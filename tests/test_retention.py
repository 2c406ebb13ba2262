"""Retention: the pure plan, and the service deleting through a real backend and catalog."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.context import RequestContext
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.model import ObjectRecord, SitePolicy
from policy.policies import PolicyResolver
from policy.retention import RetentionBackend, RetentionService, plan_retention
from tests.conformance.payload import MemoryPayload
from translators.base import ListQuery, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CTX = RequestContext(request_id="retention-test", principal="tester")


def artifact(
    build: str,
    age_days: float,
    *,
    status: str | None = None,
    pinned: bool = False,
    corrupt: bool = False,
) -> ObjectRecord:
    return ObjectRecord(
        site="site",
        key=f"builds/{build}.tar.gz",
        size=1,
        etag="e",
        created_at=NOW - timedelta(days=age_days),
        creator="ci",
        build_id=build,
        compression="gzip",
        status=status,
        pinned=pinned,
        corrupt=corrupt,
    )


def keys(records: list[ObjectRecord]) -> list[str]:
    return [r.key.removeprefix("builds/").removesuffix(".tar.gz") for r in records]


def test_no_rule_keeps_everything() -> None:
    records = [artifact(str(i), i * 100) for i in range(5)]
    plan = plan_retention(records, SitePolicy(), NOW)
    assert keys(plan.keep) == ["0", "1", "2", "3", "4"]
    assert plan.delete == []


def test_keep_last_keeps_the_newest() -> None:
    records = [artifact(str(i), i) for i in range(5)]
    plan = plan_retention(records, SitePolicy(retention_keep_last=2), NOW)
    assert keys(plan.keep) == ["0", "1"]
    assert keys(plan.delete) == ["2", "3", "4"]
    assert plan.reasons["builds/0.tar.gz"] == [
        "among the 2 newest",
        "newest successful artifact",
    ]


def test_days_keeps_the_young() -> None:
    records = [artifact(str(i), i * 3) for i in range(5)]  # 0, 3, 6, 9, 12 days old
    plan = plan_retention(records, SitePolicy(retention_days=7), NOW)
    assert keys(plan.keep) == ["0", "1", "2"]
    assert keys(plan.delete) == ["3", "4"]


def test_deleted_only_when_no_rule_keeps_it() -> None:
    records = [artifact(str(i), i * 3) for i in range(6)]  # 0..15 days
    plan = plan_retention(records, SitePolicy(retention_keep_last=4, retention_days=7), NOW)
    assert keys(plan.keep) == ["0", "1", "2", "3"]  # days keep 0-2, keep-last keeps 0-3
    plan = plan_retention(records, SitePolicy(retention_keep_last=1, retention_days=7), NOW)
    assert keys(plan.keep) == ["0", "1", "2"]


def test_pinned_is_always_kept() -> None:
    records = [artifact("new", 0), artifact("old", 400, pinned=True), artifact("mid", 50)]
    plan = plan_retention(records, SitePolicy(retention_keep_last=1, retention_days=1), NOW)
    assert keys(plan.keep) == ["new", "old"]
    assert plan.reasons["builds/old.tar.gz"] == ["pinned"]
    assert keys(plan.delete) == ["mid"]


def test_newest_successful_is_never_deleted() -> None:
    records = [
        artifact("failed", 1, status="failed"),
        artifact("broken", 2, corrupt=True),
        artifact("good", 30, status="Succeeded"),
        artifact("older-good", 40, status="success"),
    ]
    plan = plan_retention(records, SitePolicy(retention_keep_last=1), NOW)
    assert keys(plan.keep) == ["failed", "good"]
    assert plan.reasons["builds/good.tar.gz"] == ["newest successful artifact"]
    assert keys(plan.delete) == ["broken", "older-good"]


def test_no_status_counts_as_successful() -> None:
    records = [artifact("running", 0, status="running"), artifact("plain", 10)]
    plan = plan_retention(records, SitePolicy(retention_keep_last=0), NOW)
    assert keys(plan.keep) == ["plain"]
    assert keys(plan.delete) == ["running"]


def test_ordinary_objects_are_not_planned() -> None:
    ordinary = ObjectRecord("site", "index.html", 1, "e", NOW - timedelta(days=99), "ci")
    plan = plan_retention([ordinary, artifact("a", 0)], SitePolicy(retention_keep_last=0), NOW)
    assert keys(plan.keep) == ["a"]
    assert plan.delete == []


# ------------------------------------------------------------------------ the service


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Stack:
    backend: RetentionBackend
    catalog: SqlCatalog
    policies: PolicyResolver
    service: RetentionService
    site: str

    async def put(self, build: str, status: str | None = None) -> None:
        meta = WriteMetadata(user_metadata={} if status is None else {"status": status})
        await self.backend.put_object(
            CTX, self.site, f"builds/{build}.tar.gz", MemoryPayload(b"tar"), meta, WriteConditions()
        )

    async def stored(self) -> list[str]:
        page = await self.backend.list_objects(CTX, self.site, ListQuery())
        return sorted(o.key for o in page.objects)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    storage = FilesystemBackend(tmp_path / "storage", fsync=False)
    indexed = CatalogBackend(storage, catalog)
    policies = PolicyResolver(SitePolicy(), catalog, ttl_s=0)
    service = RetentionService(indexed, catalog, policies)
    backend = RetentionBackend(indexed, service)
    await backend.start()
    site = f"ret-{uuid.uuid4().hex[:12]}"
    await backend.create_bucket(CTX, site)
    try:
        yield Stack(backend, catalog, policies, service, site)
    finally:
        await backend.close()


@pytest.mark.anyio
async def test_dry_run_lists_without_deleting(stack: Stack) -> None:
    for build in ("1", "2", "3"):
        await stack.put(build)
    await stack.policies.set_overrides(stack.site, {"retention_keep_last": 1})
    plan = await stack.service.apply(stack.site, dry_run=True)
    assert keys(plan.delete) == ["2", "1"]
    assert len(await stack.stored()) == 3


@pytest.mark.anyio
async def test_apply_deletes_through_the_backend_and_the_catalog_follows(stack: Stack) -> None:
    for build in ("1", "2", "3", "4"):
        await stack.put(build)
    await stack.catalog.update(stack.site, "builds/1.tar.gz", pinned=True)
    await stack.policies.set_overrides(stack.site, {"retention_keep_last": 1})
    plan = await stack.service.apply(stack.site, dry_run=False)
    assert keys(plan.delete) == ["3", "2"]
    assert await stack.stored() == ["builds/1.tar.gz", "builds/4.tar.gz"]
    usage = await stack.catalog.usage(stack.site)
    assert usage.artifacts == 2


@pytest.mark.anyio
async def test_runs_after_every_artifact_upload(stack: Stack) -> None:
    await stack.policies.set_overrides(stack.site, {"retention_keep_last": 2})
    await stack.put("1", status="success")
    for build in ("2", "3", "4"):
        await stack.put(build, status="failed")
    # Keep-last keeps 4 and 3; the newest successful (1) survives every pass.
    assert await stack.stored() == ["builds/1.tar.gz", "builds/3.tar.gz", "builds/4.tar.gz"]
    await stack.backend.put_object(
        CTX, stack.site, "notes.txt", MemoryPayload(b"n"), WriteMetadata(), WriteConditions()
    )
    assert "notes.txt" in await stack.stored()


@pytest.mark.anyio
async def test_apply_all_covers_every_site(stack: Stack) -> None:
    for build in ("1", "2"):
        await stack.put(build)
    await stack.policies.set_overrides(stack.site, {"retention_keep_last": 1})
    await stack.service.apply_all()
    assert await stack.stored() == ["builds/2.tar.gz"]


@pytest.mark.anyio
async def test_on_a_versioned_site_builds_are_counted_not_versions(stack: Stack) -> None:
    """Keep-last counts current artifacts: a build overwritten twice is one build. Its
    delete is a delete marker: its versions stay and count in the site's bytes."""
    await stack.backend.put_bucket_versioning(CTX, stack.site, "Enabled")
    for build in ("1", "1", "1", "2", "3"):
        await stack.put(build)
    await stack.policies.set_overrides(stack.site, {"retention_keep_last": 2})
    plan = await stack.service.apply(stack.site, dry_run=False)
    assert keys(plan.delete) == ["1"]
    assert await stack.stored() == ["builds/2.tar.gz", "builds/3.tar.gz"]
    usage = await stack.catalog.usage(stack.site)
    assert (usage.artifacts, usage.objects) == (2, 2)
    assert (usage.bytes, usage.noncurrent_bytes, usage.noncurrent_versions) == (15, 9, 3)
    versions = (await stack.catalog.key_versions(stack.site, "builds/1.tar.gz")).items
    assert [(v.is_latest, v.is_delete_marker) for v in versions] == [
        (True, True),
        (False, False),
        (False, False),
        (False, False),
    ]
    # A second pass finds nothing more to delete: the versions are not builds.
    assert (await stack.service.apply(stack.site, dry_run=False)).delete == []
