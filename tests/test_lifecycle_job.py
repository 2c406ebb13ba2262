"""The lifecycle job (policy.lifecycle_job) over the in-memory translator and the whole
policy stack: expirations by Days and Date on current objects matching a filter (prefix,
catalog tags, size), aborts of incomplete uploads, artifacts retention keeps left alone,
bounded work per run, and the job registered with the scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from core.context import RequestContext
from policy.lifecycle import (
    Expiration,
    LifecycleFilter,
    LifecycleRule,
    NoncurrentExpiration,
    check_rules,
    retention_rule,
)
from policy.lifecycle_job import LifecycleJob, LifecyclePass
from policy.lifecycle_store import LifecycleStore
from policy.model import SitePolicy
from policy.stack import Stack, build_stack
from tests.conformance.payload import MemoryPayload
from translators.base import ListQuery, UploadsQuery, WriteConditions, WriteMetadata
from translators.memory.backend import MemoryBackend
from translators.versioning import VersionsQuery

pytestmark = pytest.mark.anyio
CTX = RequestContext(request_id="test-lifecycle-job", principal="root")
SITE = "site-a"
LATER = datetime.now(UTC) + timedelta(days=3)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = build_stack(
        MemoryBackend(),
        f"sqlite:///{tmp_path / 'catalog.sqlite3'}",
        SitePolicy(validate_archives=False),
        1024**2,
    )
    await stack.catalog.start()
    await stack.backend.start()
    await stack.backend.create_bucket(CTX, SITE)
    try:
        yield stack
    finally:
        await stack.close()
        await stack.catalog.close()


async def put(
    stack: Stack,
    key: str,
    size: int = 1,
    tags: dict[str, str] | None = None,
    status: str | None = None,
) -> None:
    meta = WriteMetadata(
        user_metadata={} if status is None else {"status": status}, tags=tags or {}
    )
    await stack.backend.put_object(
        CTX, SITE, key, MemoryPayload(b"x" * size), meta, WriteConditions()
    )


async def stored(stack: Stack) -> list[str]:
    page = await stack.backend.list_objects(CTX, SITE, ListQuery())
    return sorted(o.key for o in page.objects)


async def configure(stack: Stack, *rules: LifecycleRule) -> None:
    await LifecycleStore(stack.catalog, stack.policies).store(SITE, check_rules(list(rules)))


def job(stack: Stack, now: datetime = LATER, limit: int = 1000) -> LifecycleJob:
    return LifecycleJob(
        stack.backend, stack.catalog, stack.policies, limit=limit, clock=lambda: now
    )


async def test_days_expire_matching_objects_through_the_stack(stack: Stack) -> None:
    await put(stack, "logs/small-debug", 5, {"kind": "debug"})
    await put(stack, "logs/untagged", 5)
    await put(stack, "logs/big-debug", 100, {"kind": "debug"})
    await put(stack, "other/small-debug", 5, {"kind": "debug"})
    await configure(
        stack,
        LifecycleRule(
            "debug-logs",
            True,
            LifecycleFilter("logs/", (("kind", "debug"),), None, 50, "and"),
            Expiration(days=1),
        ),
        LifecycleRule("off", False, LifecycleFilter(), Expiration(days=1)),
    )
    before = await stack.catalog.usage(SITE)

    # Not due yet: creation plus a day, rounded up to midnight UTC, is still ahead.
    assert (await job(stack, datetime.now(UTC)).run()).expired == 0
    done = await job(stack).run()

    assert done.expired == 1
    assert await stored(stack) == ["logs/big-debug", "logs/untagged", "other/small-debug"]
    assert await stack.catalog.get(SITE, "logs/small-debug") is None
    assert (await stack.catalog.usage(SITE)).bytes == before.bytes - 5


async def test_a_date_expires_every_matching_object_from_that_midnight(stack: Stack) -> None:
    await put(stack, "tmp/a")
    await put(stack, "keep/b")
    midnight = datetime.combine(LATER.date(), datetime.min.time(), UTC)
    await configure(
        stack, LifecycleRule("tmp", True, LifecycleFilter("tmp/"), Expiration(date=midnight))
    )
    assert (await job(stack, midnight - timedelta(seconds=1)).run()).expired == 0
    assert (await job(stack, midnight).run()).expired == 1
    assert await stored(stack) == ["keep/b"]


async def test_artifacts_retention_keeps_are_never_expired(stack: Stack) -> None:
    for build in ("1", "2", "3", "4", "5"):
        await put(stack, f"builds/{build}.tar.gz", status="success" if build < "5" else "failed")
        await anyio.sleep(0.01)  # distinct creation times
    assert await stack.catalog.update(SITE, "builds/1.tar.gz", pinned=True) is not None
    await stack.policies.set_overrides(SITE, {"retention_keep_last": 1})
    await configure(
        stack,
        LifecycleRule("everything", True, LifecycleFilter(), Expiration(days=1)),
        retention_rule(30),  # the window is retention's: this job does not apply it
    )

    done = await job(stack).run()

    # 1 is pinned, 5 is the newest, 4 the newest successful: only 2 and 3 go.
    assert (done.expired, done.protected) == (2, 3)
    assert await stored(stack) == ["builds/1.tar.gz", "builds/4.tar.gz", "builds/5.tar.gz"]


async def test_incomplete_uploads_under_the_prefix_are_aborted(stack: Stack) -> None:
    for key in ("tmp/a", "tmp/b", "keep/c"):
        await stack.backend.create_multipart_upload(CTX, SITE, key, WriteMetadata(), None, None)
    await configure(
        stack,
        LifecycleRule("uploads", True, LifecycleFilter("tmp/"), abort_after_days=1),
    )
    assert (await job(stack, datetime.now(UTC)).run()).aborted == 0
    assert (await job(stack).run()).aborted == 2
    page = await stack.backend.list_multipart_uploads(CTX, SITE, UploadsQuery())
    assert [upload.key for upload in page.uploads] == ["keep/c"]


async def test_work_per_run_is_bounded(stack: Stack) -> None:
    for number in range(5):
        await put(stack, f"tmp/{number}")
    await configure(stack, LifecycleRule("tmp", True, LifecycleFilter("tmp/"), Expiration(days=1)))
    assert (await job(stack, limit=2).run()).expired == 2
    assert len(await stored(stack)) == 3
    assert (await job(stack, limit=2).run()).expired == 2
    assert (await job(stack, limit=2).run()).expired == 1
    assert await stored(stack) == []


async def versions(stack: Stack) -> list[tuple[str, bool, bool]]:
    """(key, is latest, is delete marker) of every entry of the site."""
    page = await stack.backend.list_versions(CTX, SITE, VersionsQuery())
    return [(v.key, v.is_latest, v.is_delete_marker) for v in page.versions]


async def test_version_rules_on_an_unversioned_site_find_nothing(stack: Stack) -> None:
    marker = LifecycleRule(
        "markers", True, LifecycleFilter(), Expiration(expired_object_delete_marker=True)
    )
    await put(stack, "a")
    await configure(stack, marker)
    assert (await job(stack).run()).actions == 0
    assert await stored(stack) == ["a"]


async def test_noncurrent_versions_expire_but_the_newest_kept(stack: Stack) -> None:
    """NoncurrentDays counts from when a version became noncurrent; NewerNoncurrentVersions
    keeps that many of the newest noncurrent ones; the latest is never touched, nor what
    the prefix leaves out."""
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    for _ in range(4):
        await put(stack, "logs/a")
        await put(stack, "keep/b")
    rule = LifecycleRule(
        "old", True, LifecycleFilter("logs/"), noncurrent_expiration=NoncurrentExpiration(1, 1)
    )
    await configure(stack, rule)
    assert (await job(stack, now=datetime.now(UTC)).run()).versions == 0
    assert (await job(stack).run()).versions == 2
    assert [(k, latest) for k, latest, _ in await versions(stack)] == [
        ("keep/b", True),
        ("keep/b", False),
        ("keep/b", False),
        ("keep/b", False),
        ("logs/a", True),
        ("logs/a", False),
    ]
    assert await stored(stack) == ["keep/b", "logs/a"]
    # The catalog's version rows follow (policy.catalog_versions): the expired ones went.
    rows = (await stack.catalog.key_versions(SITE, "logs/a")).items
    assert [v.is_latest for v in rows] == [True, False]
    assert len((await stack.catalog.key_versions(SITE, "keep/b")).items) == 4
    usage = await stack.catalog.usage(SITE)
    assert (usage.noncurrent_versions, usage.noncurrent_bytes) == (4, 4)


async def test_expired_delete_markers_go_when_nothing_is_left_behind(stack: Stack) -> None:
    await stack.backend.put_bucket_versioning(CTX, SITE, "Enabled")
    await put(stack, "gone")
    await put(stack, "hidden")
    for key in ("gone", "hidden"):
        await stack.backend.delete_object(CTX, SITE, key)
    rules = [
        LifecycleRule(
            "markers", True, LifecycleFilter(), Expiration(expired_object_delete_marker=True)
        ),
        LifecycleRule(
            "old", True, LifecycleFilter("gone"), noncurrent_expiration=NoncurrentExpiration(1)
        ),
    ]
    await configure(stack, *rules)
    done = await job(stack).run()
    # "gone": its version expires (noncurrent), then its marker is all that is left; the
    # marker of "hidden" still hides a version and stays.
    assert done.versions >= 1
    await job(stack).run()
    assert await versions(stack) == [("hidden", True, True), ("hidden", False, False)]
    assert (await stack.catalog.key_versions(SITE, "gone")).items == []
    hidden = (await stack.catalog.key_versions(SITE, "hidden")).items
    assert [(v.is_latest, v.is_delete_marker) for v in hidden] == [(True, True), (False, False)]


async def test_the_job_is_scheduled(stack: Stack) -> None:
    assert stack.jobs is not None
    assert stack.jobs.jobs["lifecycle"].interval_s == 3600.0
    await put(stack, "tmp/a")
    await configure(stack, LifecycleRule("tmp", True, LifecycleFilter("tmp/"), Expiration(days=1)))
    done = await stack.jobs.jobs["lifecycle"].work()
    assert done == LifecyclePass()  # not due yet
    assert await stored(stack) == ["tmp/a"]
