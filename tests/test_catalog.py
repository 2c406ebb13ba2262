"""SqlCatalog on SQLite and PostgreSQL: rows, filters, keyset paging, usage, reservations,
site overrides, API keys and migrations."""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import policy
from core.errors import S3Error
from policy.api_keys import ApiKeyStore
from policy.catalog import SqlCatalog
from policy.catalog_api_keys import api_key_id
from policy.catalog_database import normalize_url
from policy.catalog_records import CursorError
from policy.model import (
    ArtifactFilter,
    ObjectRecord,
    QuotaExceeded,
    SitePolicy,
    SortField,
    UploadReservation,
    Usage,
    parse_artifact_key,
)
from tests.support.postgres import catalog_url

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SORTS: tuple[SortField, ...] = ("created_at", "size", "build_id", "key")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
async def catalog(url: str) -> AsyncIterator[SqlCatalog]:
    catalog = SqlCatalog(url)
    await catalog.start()
    yield catalog
    await catalog.close()


def record(site: str, key: str, **fields: Any) -> ObjectRecord:
    artifact = parse_artifact_key(key)
    values: dict[str, Any] = {
        "site": site,
        "key": key,
        "size": 10,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "created_at": T0,
        "creator": "alice",
        "build_id": artifact.build_id if artifact else None,
        "compression": artifact.compression if artifact else None,
    }
    values.update(fields)
    return ObjectRecord(**values)


async def list_all(
    catalog: SqlCatalog,
    query: ArtifactFilter,
    *,
    limit: int = 3,
    cursor: str | None = None,
    **options: Any,
) -> list[ObjectRecord]:
    items: list[ObjectRecord] = []
    while True:
        page = await catalog.list(query, cursor=cursor, limit=limit, **options)
        assert len(page.items) <= limit
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def expected_order(
    records: list[ObjectRecord], sort: SortField, descending: bool
) -> list[tuple[str, str]]:
    def sort_key(r: ObjectRecord) -> tuple[Any, ...]:
        if sort == "key":
            return (r.key, r.site)
        first: Any = {"created_at": r.created_at, "size": r.size, "build_id": r.build_id or ""}
        return (first[sort], r.site, r.key)

    return [(r.site, r.key) for r in sorted(records, key=sort_key, reverse=descending)]


# Rows


async def test_upsert_get_delete(catalog: SqlCatalog) -> None:
    first = record(
        "site-a",
        "builds/b1.tar.gz",
        sha256="ab" * 32,
        status="ready",
        action="deploy",
        pinned=True,
        corrupt=True,
        content_type="application/gzip",
        user_metadata={"branch": "main", "ünï": "cödé"},
    )
    await catalog.upsert(first)
    assert await catalog.get("site-a", "builds/b1.tar.gz") == first
    assert await catalog.get("site-a", "builds/missing.tar") is None
    assert await catalog.get("site-b", "builds/b1.tar.gz") is None

    # A new upload replaces every field, flags included.
    second = record("site-a", "builds/b1.tar.gz", size=99, etag="e2", created_at=T0 + timedelta(1))
    await catalog.upsert(second)
    assert await catalog.get("site-a", "builds/b1.tar.gz") == second

    await catalog.delete("site-a", "builds/b1.tar.gz")
    await catalog.delete("site-a", "builds/b1.tar.gz")  # absent: fine
    assert await catalog.get("site-a", "builds/b1.tar.gz") is None


async def test_keys_are_opaque(catalog: SqlCatalog) -> None:
    keys = ["a", "a/b", "a//b", "dir/", "../x", "A", "é", "a b", "%2F"]
    for key in keys:
        await catalog.upsert(record("site-a", key, size=len(key)))
    for key in keys:
        found = await catalog.get("site-a", key)
        assert found is not None
        assert found.size == len(key)
    listed = await list_all(
        catalog, ArtifactFilter(site="site-a"), artifacts_only=False, sort="key", descending=False
    )
    assert [r.key for r in listed] == sorted(keys, key=lambda k: k.encode())


async def test_timestamps_are_utc(catalog: SqlCatalog) -> None:
    local = datetime(2025, 3, 1, 14, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    await catalog.upsert(record("site-a", "k", created_at=local))
    found = await catalog.get("site-a", "k")
    assert found is not None
    assert found.created_at == local
    assert found.created_at.tzinfo == UTC


async def test_update_flags(catalog: SqlCatalog) -> None:
    await catalog.upsert(record("site-a", "builds/b1.tar", status="new"))
    updated = await catalog.update("site-a", "builds/b1.tar", pinned=True, action="promote")
    assert (updated.pinned, updated.status, updated.action, updated.corrupt) == (
        True,
        "new",
        "promote",
        False,
    )
    assert await catalog.get("site-a", "builds/b1.tar") == updated
    unchanged = await catalog.update("site-a", "builds/b1.tar")
    assert unchanged == updated
    with pytest.raises(KeyError):
        await catalog.update("site-a", "builds/nope.tar", pinned=True)


async def test_delete_site(catalog: SqlCatalog) -> None:
    await catalog.upsert(record("site-a", "builds/1.tar"))
    await catalog.upsert(record("site-a", "x"))
    await catalog.upsert(record("site-b", "x"))
    await catalog.reserve("site-a", "up-1", 5, 0, SitePolicy())
    await catalog.set_site_overrides("site-a", {"quota_bytes": 5})
    await catalog.delete_site("site-a")
    assert await catalog.usage("site-a") == Usage(0, 0, 0)
    assert await catalog.get("site-b", "x") is not None
    assert await catalog.site_overrides("site-a") == {"quota_bytes": 5}
    assert await catalog.sites() == ["site-b"]


# Filters


async def test_filters(catalog: SqlCatalog) -> None:
    rows = [
        record("site-a", "builds/1.tar", status="ok", creator="bob", created_at=T0),
        record(
            "site-a",
            "builds/2.tar.zst",
            action="deploy",
            pinned=True,
            created_at=T0 + timedelta(hours=1),
            user_metadata={"branch": "main", "pr": "7"},
        ),
        record(
            "site-a",
            "builds/3.tgz",
            corrupt=True,
            status="ok",
            created_at=T0 + timedelta(hours=2),
            user_metadata={"branch": "dev"},
        ),
        record("site-a", "index.html", status="ok", created_at=T0),
        record("site-b", "builds/1.tar", status="ok", created_at=T0 + timedelta(hours=3)),
    ]
    for row in rows:
        await catalog.upsert(row)

    async def keys(query: ArtifactFilter, artifacts_only: bool = True) -> set[tuple[str, str]]:
        found = await list_all(catalog, query, artifacts_only=artifacts_only)
        return {(r.site, r.key) for r in found}

    a = "site-a"
    assert await keys(ArtifactFilter(site=a)) == {
        (a, "builds/1.tar"),
        (a, "builds/2.tar.zst"),
        (a, "builds/3.tgz"),
    }
    assert (a, "index.html") in await keys(ArtifactFilter(site=a), artifacts_only=False)
    assert await keys(ArtifactFilter(site=a, status="ok")) == {
        (a, "builds/1.tar"),
        (a, "builds/3.tgz"),
    }
    assert await keys(ArtifactFilter(site=a, action="deploy")) == {(a, "builds/2.tar.zst")}
    assert await keys(ArtifactFilter(site=a, creator="bob")) == {(a, "builds/1.tar")}
    assert await keys(ArtifactFilter(site=a, pinned=True)) == {(a, "builds/2.tar.zst")}
    assert len(await keys(ArtifactFilter(site=a, pinned=False))) == 2
    assert await keys(ArtifactFilter(site=a, corrupt=True)) == {(a, "builds/3.tgz")}
    assert await keys(ArtifactFilter(site=a, metadata={"branch": "main"})) == {
        (a, "builds/2.tar.zst")
    }
    assert await keys(ArtifactFilter(site=a, metadata={"branch": "main", "pr": "8"})) == set()
    assert await keys(ArtifactFilter(site=a, metadata={"missing": "x"})) == set()
    window = ArtifactFilter(
        site=a, created_from=T0 + timedelta(hours=1), created_to=T0 + timedelta(hours=2)
    )
    assert await keys(window) == {(a, "builds/2.tar.zst")}
    # Across sites.
    assert await keys(ArtifactFilter(status="ok")) == {
        (a, "builds/1.tar"),
        (a, "builds/3.tgz"),
        ("site-b", "builds/1.tar"),
    }


# Sorting and cursors


async def _seed_for_sorting(catalog: SqlCatalog, count: int = 23) -> list[ObjectRecord]:
    rng = random.Random(7)
    rows: list[ObjectRecord] = []
    for i in range(count):
        key = f"builds/b{rng.randint(0, 9)}-{i:02d}.tar" if i % 4 else f"page-{i}.html"
        rows.append(
            record(
                rng.choice(["site-a", "site-b"]),
                key,
                size=rng.choice([1, 5, 5, 9, 100]),  # ties on purpose
                created_at=T0 + timedelta(minutes=rng.choice([0, 1, 1, 2])),
            )
        )
    for row in rows:
        await catalog.upsert(row)
    return rows


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("descending", [True, False])
async def test_every_sort_pages_completely(
    catalog: SqlCatalog, sort: SortField, descending: bool
) -> None:
    rows = await _seed_for_sorting(catalog)
    for artifacts_only in (True, False):
        for site in ("site-a", None):
            wanted = [
                r
                for r in rows
                if (site is None or r.site == site) and (r.is_artifact or not artifacts_only)
            ]
            found = await list_all(
                catalog,
                ArtifactFilter(site=site),
                artifacts_only=artifacts_only,
                sort=sort,
                descending=descending,
            )
            assert [(r.site, r.key) for r in found] == expected_order(wanted, sort, descending)


@pytest.mark.parametrize("sort", SORTS)
async def test_paging_is_stable_under_inserts(catalog: SqlCatalog, sort: SortField) -> None:
    rows = await _seed_for_sorting(catalog)
    query = ArtifactFilter(site="site-a")
    options: dict[str, Any] = {"artifacts_only": False, "sort": sort, "descending": True}
    first = await catalog.list(query, limit=4, **options)
    assert first.next_cursor is not None
    # Rows land on both sides of the cursor between pages.
    added = [
        record("site-a", "builds/zz-new.tar", size=1000, created_at=T0 + timedelta(days=1)),
        record("site-a", "0-new", size=0, created_at=T0 - timedelta(days=1)),
        record("site-a", "builds/b5-mid.tar", size=5, created_at=T0 + timedelta(minutes=1)),
    ]
    for row in added:
        await catalog.upsert(row)
    rest = await list_all(catalog, query, limit=4, cursor=first.next_cursor, **options)
    seen = [(r.site, r.key) for r in first.items + rest]
    assert len(seen) == len(set(seen)), "a row came twice"
    originals = [r for r in rows if r.site == "site-a"]
    assert {(r.site, r.key) for r in originals} <= set(seen), "a row was skipped"
    # Whatever was returned is still in order.
    everything = originals + added
    order = expected_order(everything, sort, True)
    assert seen == [item for item in order if item in set(seen)]


async def test_cursor_errors(catalog: SqlCatalog) -> None:
    for i in range(3):
        await catalog.upsert(record("site-a", f"builds/{i}.tar"))
    page = await catalog.list(ArtifactFilter(site="site-a"), limit=1)
    assert page.next_cursor is not None
    with pytest.raises(CursorError):
        await catalog.list(ArtifactFilter(site="site-a"), sort="size", cursor=page.next_cursor)
    with pytest.raises(CursorError):
        await catalog.list(ArtifactFilter(site="site-a"), descending=False, cursor=page.next_cursor)
    for bad in ("not base64!", "e30=", "W10="):
        with pytest.raises(CursorError):
            await catalog.list(ArtifactFilter(site="site-a"), cursor=bad)


async def test_last_page_has_no_cursor(catalog: SqlCatalog) -> None:
    for i in range(4):
        await catalog.upsert(record("site-a", f"builds/{i}.tar"))
    page = await catalog.list(ArtifactFilter(site="site-a"), limit=4)
    assert len(page.items) == 4
    assert page.next_cursor is None
    empty = await catalog.list(ArtifactFilter(site="site-z"))
    assert empty.items == []
    assert empty.next_cursor is None


# Usage and reservations


async def test_usage_is_exact(catalog: SqlCatalog) -> None:
    assert await catalog.usage("site-a") == Usage(0, 0, 0)
    await catalog.upsert(record("site-a", "builds/1.tar", size=100))
    await catalog.upsert(record("site-a", "builds/2.tar", size=50))
    await catalog.upsert(record("site-a", "index.html", size=7))
    await catalog.upsert(record("site-b", "builds/1.tar", size=1000))
    await catalog.upsert(record("site-a", "builds/2.tar", size=60))  # overwrite
    await catalog.reserve("site-a", "up-1", 30, 1, SitePolicy())
    assert await catalog.usage("site-a") == Usage(
        bytes=167, objects=3, artifacts=2, reserved_bytes=30, reserved_artifacts=1
    )
    await catalog.release("up-1")
    await catalog.release("up-1")  # unknown: ignored
    assert await catalog.usage("site-a") == Usage(bytes=167, objects=3, artifacts=2)


async def test_reserve_enforces_quotas(catalog: SqlCatalog) -> None:
    policy = SitePolicy(quota_bytes=100, quota_artifacts=2)
    await catalog.upsert(record("site-a", "builds/1.tar", size=40))
    await catalog.reserve("site-a", "up-1", 30, 1, policy)
    with pytest.raises(QuotaExceeded) as bytes_error:
        await catalog.reserve("site-a", "up-2", 31, 0, policy)
    assert bytes_error.value.which == "bytes"
    assert bytes_error.value.limit == 100
    assert bytes_error.value.usage == Usage(40, 1, 1, 30, 1)
    with pytest.raises(QuotaExceeded) as artifacts_error:
        await catalog.reserve("site-a", "up-2", 1, 1, policy)
    assert artifacts_error.value.which == "artifacts"
    assert await catalog.usage("site-a") == Usage(40, 1, 1, 30, 1)  # nothing reserved
    # Exactly to the limit is fine; re-reserving an id adds to it (multipart parts).
    await catalog.reserve("site-a", "up-1", 20, 0, policy)
    await catalog.reserve("site-a", "up-1", 10, 0, policy)
    assert await catalog.usage("site-a") == Usage(40, 1, 1, 60, 1)
    with pytest.raises(QuotaExceeded):
        await catalog.reserve("site-a", "up-1", 1, 0, policy)
    # A dimension that does not grow is not checked; other sites are independent.
    await catalog.reserve("site-a", "up-3", 0, 0, policy)
    await catalog.reserve("site-b", "up-4", 100, 2, policy)
    await catalog.reserve("site-a", "up-5", 10**12, 10**6, SitePolicy())
    with pytest.raises(ValueError, match="negative"):
        await catalog.reserve("site-a", "up-6", -1, 0, policy)


async def test_a_release_the_outage_refused_is_made_when_the_catalog_is_back(url: str) -> None:
    """A write's reservation that could not be released while the database was gone is
    released by ``release_pending`` (the reclaim job) once it answers again."""
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        await catalog.reserve("site-a", "write-1", 30, 1, SitePolicy())
        await catalog.reserve("site-a", "write-2", 5, 0, SitePolicy())
        await catalog.close()  # the database is gone for this process
        with pytest.raises(S3Error) as refused:
            await catalog.release("write-1")
        assert refused.value.code == "ServiceUnavailable"
        assert await catalog.release_pending() == 0  # still gone: kept for later
        await catalog.start()
        assert (await catalog.usage("site-a")).reserved_bytes == 35
        assert await catalog.release_pending() == 1
        assert await catalog.release_pending() == 0  # made once
        usage = await catalog.usage("site-a")
        assert (usage.reserved_bytes, usage.reserved_artifacts) == (5, 0)
    finally:
        await catalog.close()


async def test_concurrent_reservations_on_two_catalogs(url: str) -> None:
    """Two engines (as two gateway processes) race for the last room: exactly one wins."""
    first, second = SqlCatalog(url), SqlCatalog(url)
    await first.start()
    await second.start()
    policy = SitePolicy(quota_bytes=100, quota_artifacts=1)
    try:
        for round_ in range(8):
            site = f"race-{round_}"
            outcomes: list[bool] = []

            async def attempt(
                catalog: SqlCatalog, upload: str, site: str, outcomes: list[bool]
            ) -> None:
                try:
                    await catalog.reserve(site, upload, 60, 0, policy)
                    outcomes.append(True)
                except QuotaExceeded:
                    outcomes.append(False)

            async with anyio.create_task_group() as group:
                group.start_soon(attempt, first, f"{site}-1", site, outcomes)
                group.start_soon(attempt, second, f"{site}-2", site, outcomes)
            assert sorted(outcomes) == [False, True]
            assert (await first.usage(site)).reserved_bytes == 60
    finally:
        await first.close()
        await second.close()


def _reserve_in_process(url: str, site: str, upload: str, barrier: Any, results: Any) -> None:
    async def run() -> None:
        catalog = SqlCatalog(url)
        await catalog.start()
        try:
            barrier.wait()
            try:
                await catalog.reserve(site, upload, 0, 1, SitePolicy(quota_artifacts=1))
                results.put(True)
            except QuotaExceeded:
                results.put(False)
        finally:
            await catalog.close()

    anyio.run(run)


def test_concurrent_reservations_in_processes(url: str) -> None:
    """Two processes start (migrating at once) and race for the last artifact: one fails."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(
            target=_reserve_in_process, args=(url, "proc-site", f"up-{i}", barrier, results)
        )
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    outcomes = sorted(results.get(timeout=5) for _ in processes)
    assert outcomes == [False, True]


# Site overrides


async def test_site_overrides(catalog: SqlCatalog) -> None:
    assert await catalog.site_overrides("site-a") == {}
    await catalog.set_site_overrides("site-a", {"quota_bytes": 10, "validate_archives": False})
    await catalog.set_site_overrides("site-b", {"retention_days": 3})
    assert await catalog.site_overrides("site-a") == {
        "quota_bytes": 10,
        "validate_archives": False,
    }
    await catalog.set_site_overrides("site-a", {"max_compression_ratio": 1.5})
    assert await catalog.site_overrides("site-a") == {"max_compression_ratio": 1.5}
    with pytest.raises(ValueError, match="unknown policy fields"):
        await catalog.set_site_overrides("site-a", {"quota_byts": 1})
    assert await catalog.site_overrides("site-a") == {"max_compression_ratio": 1.5}
    await catalog.set_site_overrides("site-a", {})
    assert await catalog.site_overrides("site-a") == {}
    assert await catalog.site_overrides("site-b") == {"retention_days": 3}


# API keys


async def test_api_keys(catalog: SqlCatalog) -> None:
    keys = ApiKeyStore(catalog)
    secret = await keys.create_api_key("ci-bot")
    other = await keys.create_api_key("alice")
    assert secret != other
    key_id = api_key_id(secret)
    assert key_id is not None
    [info] = await keys.list_api_keys("ci-bot")
    assert (info.id, info.principal, info.last_used_at) == (key_id, "ci-bot", None)

    assert await keys.principal_for_api_key(secret) == "ci-bot"
    assert await keys.principal_for_api_key(other) == "alice"
    assert await keys.principal_for_api_key(secret + "x") is None
    assert await keys.principal_for_api_key("") is None
    [used] = await keys.list_api_keys("ci-bot")
    assert used.last_used_at is not None
    assert len(await keys.list_api_keys()) == 2

    assert await keys.revoke_api_key(key_id) is True
    assert await keys.revoke_api_key(key_id) is False
    assert await keys.principal_for_api_key(secret) is None
    assert await keys.principal_for_api_key(other) == "alice"
    assert api_key_id("not-a-key") is None


async def test_api_key_secrets_are_not_stored(url: str, catalog: SqlCatalog) -> None:
    secret = await ApiKeyStore(catalog).create_api_key("ci-bot")
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT id, principal, key_hash FROM api_keys")).all()
    finally:
        engine.dispose()
    assert len(stored) == 1
    assert secret not in " ".join(str(v) for v in stored[0])


# Lifecycle and migrations


async def test_start_migrates_once_when_started_together(url: str) -> None:
    catalogs = [SqlCatalog(url) for _ in range(3)]
    async with anyio.create_task_group() as group:
        for catalog in catalogs:
            group.start_soon(catalog.start)
    try:
        await catalogs[0].upsert(record("site-a", "k"))
        assert await catalogs[2].get("site-a", "k") is not None
    finally:
        for catalog in catalogs:
            await catalog.close()
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert [v[0] for v in versions] == [_head_revision()]


def _head_revision() -> str:
    """The newest migration in policy/migrations (one head: the history is linear)."""
    config = Config()
    config.set_main_option("script_location", str(Path(policy.__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def test_restart_keeps_rows(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    await catalog.upsert(record("site-a", "k"))
    await catalog.close()
    await catalog.close()
    with pytest.raises(S3Error, match="not started") as refused:  # closed: 503, never a 500
        await catalog.get("site-a", "k")
    assert refused.value.status == 503
    again = SqlCatalog(url)
    await again.start()
    try:
        assert await again.get("site-a", "k") == record("site-a", "k")
    finally:
        await again.close()


async def test_sqlite_file_in_missing_directory(tmp_path: Path) -> None:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'new' / 'dir' / 'catalog.sqlite3'}")
    await catalog.start()
    try:
        await catalog.upsert(record("site-a", "k"))
        assert catalog.dialect == "sqlite"
    finally:
        await catalog.close()
    with pytest.raises(ValueError, match="in-memory"):
        await SqlCatalog("sqlite://").start()


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


async def test_upgrade_gives_old_reservations_their_owners(url: str) -> None:
    """Reservations from before leases: a multipart upload's keeps living with its upload;
    a single write's has no live owner any more and is reclaimable."""
    config = Config()
    config.set_main_option("script_location", str(Path(policy.__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            for reservation_id, size in (
                ("upload:site-a:dir/a:b.tar:UPLOAD-1", 10),
                ("write:site-a:0123abcd", 20),
            ):
                conn.execute(
                    text(
                        "INSERT INTO reservations (id, site, bytes, artifacts, created_at) "
                        "VALUES (:id, 'site-a', :size, 0, :now)"
                    ),
                    {"id": reservation_id, "size": size, "now": datetime.now(UTC)},
                )
    finally:
        engine.dispose()
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        assert await catalog.upload_reservations() == [
            UploadReservation(
                "upload:site-a:dir/a:b.tar:UPLOAD-1", "site-a", "dir/a:b.tar", "UPLOAD-1"
            )
        ]
        assert (await catalog.usage("site-a")).reserved_bytes == 30
        assert await catalog.reclaim_reservations(datetime.now(UTC), set()) == 1
        assert (await catalog.usage("site-a")).reserved_bytes == 10
    finally:
        await catalog.close()


async def test_processes_starting_together_on_new_sqlite_files_all_start(
    tmp_path: Path,
) -> None:
    """Three catalogs started at once on a new SQLite file, again and again: switching the
    new file to WAL can be refused "database is locked" at once (SQLite calls no busy
    handler while another connection sets up the WAL index), which failed about one start
    in 40 before the switch was retried (``_enter_wal``)."""
    for attempt in range(30):
        url = f"sqlite:///{tmp_path / f'catalog-{attempt}.sqlite3'}"
        catalogs = [SqlCatalog(url) for _ in range(3)]
        try:
            async with anyio.create_task_group() as group:
                for catalog in catalogs:
                    group.start_soon(catalog.start)
        finally:
            for catalog in catalogs:
                await catalog.close()
