"""Reindex rebuilds the catalog from the backend; replicas share one PostgreSQL catalog."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from commands.cli import main
from core.context import RequestContext
from core.errors import S3Error
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.model import ArtifactFilter, Catalog, ObjectRecord
from policy.reindex import reindex
from tests.conformance.payload import MemoryPayload
from tests.support.postgres import catalog_url, fresh_schema
from tests.support.project import ROOT
from translators.base import Backend, CompletedPart, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend

CTX = RequestContext(request_id="test", principal="alice")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path / "catalog") as value:
        yield value


async def put(backend: Backend, bucket: str, key: str, data: bytes, **meta: str) -> None:
    await backend.put_object(
        CTX,
        bucket,
        key,
        MemoryPayload(data, algorithms=("SHA256",)),
        WriteMetadata({"content-type": "application/x-tar"}, meta),
        WriteConditions(),
    )


async def populate(backend: Backend) -> None:
    """Two sites with artifacts (single and multipart), plain objects and a deletion."""
    for site in ("site-a", "site-b"):
        await backend.create_bucket(CTX, site)
    await put(backend, "site-a", "builds/b1.tar.gz", b"one", creator="ci", status="ready")
    await put(backend, "site-a", "builds/b2.tar.zst", b"two!", creator="ci", action="deploy")
    await put(backend, "site-a", "index.html", b"<html>")
    await put(backend, "site-a", "gone.txt", b"bye")
    await backend.delete_object(CTX, "site-a", "gone.txt")
    await put(backend, "site-b", "builds/b1.tar", b"three", creator="bob")
    upload = await backend.create_multipart_upload(
        CTX, "site-b", "builds/b2.tgz", WriteMetadata(user_metadata={"creator": "ci"}), None, None
    )
    parts = [
        await backend.upload_part(CTX, "site-b", "builds/b2.tgz", upload.upload_id, n, body)
        for n, body in ((1, MemoryPayload(b"x" * 7)), (2, MemoryPayload(b"y" * 3)))
    ]
    await backend.complete_multipart_upload(
        CTX,
        "site-b",
        "builds/b2.tgz",
        upload.upload_id,
        [CompletedPart(p.part_number, p.etag) for p in parts],
        WriteConditions(),
    )


async def all_rows(catalog: Catalog) -> list[ObjectRecord]:
    rows: list[ObjectRecord] = []
    cursor: str | None = None
    while True:
        page = await catalog.list(
            ArtifactFilter(), artifacts_only=False, sort="key", descending=False, cursor=cursor
        )
        rows.extend(page.items)
        if page.next_cursor is None:
            return sorted(rows, key=lambda r: (r.site, r.key))
        cursor = page.next_cursor


def without_implicit_creator(rows: list[ObjectRecord]) -> list[ObjectRecord]:
    """The creator is only in the backend when given as metadata; blank the others."""
    return [r if "creator" in r.user_metadata else replace(r, creator="") for r in rows]


@pytest.mark.anyio
async def test_reindex_rebuilds_a_lost_catalog(tmp_path: Path, url: str) -> None:
    storage = FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False)
    live = CatalogBackend(storage, SqlCatalog(url))
    await live.start()
    await populate(live)
    before = await all_rows(live.catalog)
    assert [(r.site, r.key) for r in before] == [
        ("site-a", "builds/b1.tar.gz"),
        ("site-a", "builds/b2.tar.zst"),
        ("site-a", "index.html"),
        ("site-b", "builds/b1.tar"),
        ("site-b", "builds/b2.tgz"),
    ]
    await live.catalog.close()

    # Lose the catalog: a new empty database (file deleted / fresh schema).
    if url.startswith("sqlite"):
        for file in (tmp_path / "catalog").glob("catalog.sqlite3*"):
            file.unlink()
    with nullcontext(url) if url.startswith("sqlite") else fresh_schema() as lost_url:
        rebuilt = SqlCatalog(lost_url)
        await rebuilt.start()
        try:
            assert await all_rows(rebuilt) == []
            report = await reindex(storage, rebuilt)
            after = await all_rows(rebuilt)
        finally:
            await rebuilt.close()
            await storage.close()
    assert without_implicit_creator(after) == without_implicit_creator(before)
    assert (report.sites, report.objects, report.artifacts) == (2, 5, 4)
    assert report.bytes == sum(r.size for r in before)
    assert (report.removed, report.removed_sites, report.vanished) == (0, 0, 0)


@pytest.mark.anyio
async def test_reindex_repairs_drift(tmp_path: Path) -> None:
    storage = FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False)
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    live = CatalogBackend(storage, catalog)
    await live.start()
    try:
        await populate(live)
        good = await all_rows(catalog)
        old = datetime(2020, 1, 1, tzinfo=UTC)
        future = datetime.now(UTC) + timedelta(hours=1)
        # Drift: a stale row, a row for a deleted site, a row newer than the reindex (a
        # concurrent upload), catalog-only flags, and a row whose object changed since.
        await catalog.upsert(replace(good[0], key="builds/stale.tar", created_at=old))
        await catalog.upsert(replace(good[0], site="site-gone", created_at=old))
        await catalog.upsert(replace(good[0], key="builds/racing.tar", created_at=future))
        await catalog.update("site-a", "builds/b1.tar.gz", pinned=True, status="promoted")
        await catalog.upsert(replace(good[1], etag="old-etag", pinned=True))
        await catalog.delete("site-b", "builds/b1.tar")

        only_b = await reindex(storage, catalog, bucket="site-b")
        assert (only_b.sites, only_b.objects, only_b.removed_sites) == (1, 2, 0)
        assert await catalog.get("site-b", "builds/b1.tar") == good[3]
        assert await catalog.get("site-a", "builds/stale.tar") is not None

        report = await reindex(storage, catalog)
        assert (report.removed, report.removed_sites) == (1, 1)
        assert await catalog.get("site-a", "builds/stale.tar") is None
        assert await catalog.sites() == ["site-a", "site-b"]
        assert await catalog.get("site-a", "builds/racing.tar") is not None
        kept = await catalog.get("site-a", "builds/b1.tar.gz")
        assert kept == replace(good[0], pinned=True, status="promoted")
        assert await catalog.get("site-a", "builds/b2.tar.zst") == good[1]

        with pytest.raises(S3Error, match="NoSuchBucket"):
            await reindex(storage, catalog, bucket="site-nope")
    finally:
        await live.close()


@pytest.mark.anyio
async def test_two_catalogs_on_one_postgresql_share_rows(tmp_path: Path) -> None:
    """Two gateway processes: each its own SqlCatalog, one PostgreSQL, one backend."""
    with fresh_schema() as url:
        storage = FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False)
        first, second = SqlCatalog(url), SqlCatalog(url)
        gateway_one = CatalogBackend(storage, first)
        await gateway_one.start()
        await second.start()
        try:
            gateway_two = CatalogBackend(storage, second)
            await populate(gateway_one)
            assert await all_rows(second) == await all_rows(first)
            await put(gateway_two, "site-a", "builds/b9.tar", b"nine", creator="ci")
            seen = await first.get("site-a", "builds/b9.tar")
            assert seen is not None
            assert seen.creator == "alice"
            await gateway_one.delete_object(CTX, "site-a", "builds/b9.tar")
            assert await second.get("site-a", "builds/b9.tar") is None
            assert await first.usage("site-b") == await second.usage("site-b")
            await first.set_site_overrides("site-a", {"quota_artifacts": 5})
            assert await second.site_overrides("site-a") == {"quota_artifacts": 5}
        finally:
            await second.close()
            await gateway_one.close()


async def _populate_storage(root: Path) -> None:
    storage = FilesystemBackend(root, min_part_size=1, fsync=False)
    await storage.start()
    try:
        await populate(storage)
    finally:
        await storage.close()


async def _count_rows(url: str) -> int:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        return len(await all_rows(catalog))
    finally:
        await catalog.close()


def test_cli_reindex(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("PWG_BACKEND", "PWG_CATALOG_URL", "PWG_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    data = tmp_path / "data"
    anyio.run(_populate_storage, data / "storage")

    assert main(["reindex", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "reindexed 2 site(s): 5 object(s), 4 artifact(s)" in out
    assert anyio.run(_count_rows, f"sqlite:///{data / 'catalog.sqlite3'}") == 5

    other = tmp_path / "other.sqlite3"
    args = ["reindex", "--data-dir", str(data), "--catalog-url", f"sqlite:///{other}"]
    assert main([*args, "--bucket", "site-b"]) == 0
    assert "reindexed 1 site(s): 2 object(s)" in capsys.readouterr().out
    assert main([*args, "--bucket", "site-nope"]) == 1
    assert "NoSuchBucket" in capsys.readouterr().err
    assert main(["reindex", "--backend", "ftp://x"]) == 2


def _reindex_with_terminal(data: Path, *options: str, terminal: bool) -> tuple[int, str, str]:
    """Run ``pagewright-gateway reindex`` as a process whose stderr is a terminal (a pty)
    or a pipe; its exit status, stdout and what reached stderr (ANSI codes removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWG_")}
    env.update(TERM="xterm-256color", COLUMNS="120", PYTHONPATH=str(ROOT))
    for variable in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(variable, None)
    command = [sys.executable, "-m", "commands.cli", "reindex", "--data-dir", str(data), *options]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr
    controller, stderr = pty.openpty()
    try:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr)
    finally:
        os.close(stderr)
    screen = bytearray()
    reader = threading.Thread(target=_read_terminal, args=(controller, screen))
    reader.start()
    out, _ = process.communicate()
    reader.join()
    os.close(controller)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    return process.returncode, out.decode(), text


def _read_terminal(controller: int, screen: bytearray) -> None:
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: every process holding the terminal has closed it
            return
        if not chunk:
            return
        screen.extend(chunk)


def test_cli_reindex_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    anyio.run(_populate_storage, data / "storage")

    status, out, screen = _reindex_with_terminal(data, terminal=True)
    assert status == 0, screen
    assert "reindexed 2 site(s): 5 object(s)" in out
    assert "reindex site-b" in screen
    assert "2/2 sites  5 objects, 28 bytes" in screen

    status, out, err = _reindex_with_terminal(data, terminal=False)
    assert status == 0, err
    assert "reindexed 2 site(s): 5 object(s)" in out
    assert err == ""

    status, out, screen = _reindex_with_terminal(data, "--no-progress", terminal=True)
    assert status == 0, screen
    assert "reindexed 2 site(s)" in out
    assert screen.strip() == ""
