"""Tags as catalog state, on SQLite and PostgreSQL: they go with their object's row, a
multipart upload's wait in the catalog until it completes, the artifact search finds them,
site state records keep them (reindex restores them) and backups carry them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

import policy
from commands.cli import main
from core.context import RequestContext
from policy.backup_format import BackupError
from policy.backup_read import check_backup
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.catalog_contents import CatalogContents
from policy.catalog_database import normalize_url
from policy.catalog_gate import CatalogGate
from policy.model import ArtifactFilter, ObjectRecord, SitePolicy
from policy.reindex import reindex
from policy.site_state import load_site_state
from policy.stack import build_stack
from tests.conformance.payload import MemoryPayload
from tests.support.postgres import catalog_url, fresh_schema
from translators.base import Backend, CompletedPart, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend

CTX = RequestContext(request_id="test-tagging", principal="alice")
SITE = "site-a"
GIB = 1024**3
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
#: Tag keys and values with every kind of character a tag may hold.
ODD = {"team:web/ops": "wéb ops", "a.b": "x=y+z@w", "ключ": "значение", "empty": ""}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path / "catalog") as value:
        yield value


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def record(key: str, **changes: Any) -> ObjectRecord:
    values: dict[str, Any] = {
        "site": SITE,
        "key": key,
        "size": 1,
        "etag": "0" * 32,
        "created_at": T0,
        "creator": "root",
    }
    if key.startswith("builds/"):
        values.update(build_id=key[len("builds/") : -len(".tar.gz")], compression="gzip")
    values.update(changes)
    return ObjectRecord(**values)


@pytest.mark.anyio
async def test_tags_go_with_their_row(url: str) -> None:
    catalog = SqlCatalog(url)
    changed: list[str] = []

    async def listener(site: str) -> None:
        changed.append(site)

    catalog.add_state_listener(listener)
    await catalog.start()
    try:
        await catalog.upsert(record("a", tags=ODD))
        assert await catalog.object_tags(SITE, "a") == ("0" * 32, ODD)
        assert changed == [SITE]
        # A new object under the key has only its own tags, whatever its ETag.
        await catalog.upsert(record("a"))
        assert await catalog.object_tags(SITE, "a") == ("0" * 32, {})
        assert changed == [SITE, SITE]
        await catalog.upsert(record("a"))  # untagged over untagged: nothing changed
        assert len(changed) == 2
        assert await catalog.set_object_tags(SITE, "a", {"k": "v"})
        assert (await catalog.get(SITE, "a")) == record("a", tags={"k": "v"})
        assert not await catalog.set_object_tags(SITE, "missing", {"k": "v"})
        # A key no PostgreSQL row can hold (a NUL) has no tags there; never a database error.
        assert await catalog.object_tags(SITE, "nul\x00key") is None
        assert not await catalog.set_object_tags(SITE, "nul\x00key", {"k": "v"})
        assert await catalog.tagged_objects(SITE) == [("a", "0" * 32, {"k": "v"})]
        await catalog.delete(SITE, "a")
        assert await catalog.object_tags(SITE, "a") is None
        assert await catalog.tagged_objects(SITE) == []
        await catalog.upsert(record("a"))
        assert await catalog.object_tags(SITE, "a") == ("0" * 32, {})

        # An upload's tags wait for its completion, then belong to its object only.
        await catalog.set_upload_tags(SITE, "up-1", "m", {"stage": "done"})
        await catalog.set_upload_tags(SITE, "up-2", "m", {"never": "1"})
        await catalog.upsert(record("m", tags={"ignored": "1"}), upload_id="up-1")
        assert await catalog.object_tags(SITE, "m") == ("0" * 32, {"stage": "done"})
        await catalog.upsert(record("m"), upload_id="up-1")  # completed already: none left
        assert await catalog.object_tags(SITE, "m") == ("0" * 32, {})
        await catalog.drop_upload_tags(SITE, "up-2")
        await catalog.upsert(record("m"), upload_id="up-2")
        assert await catalog.object_tags(SITE, "m") == ("0" * 32, {})

        await catalog.set_bucket_tags(SITE, {"cost": "web"})
        assert await catalog.bucket_tags(SITE) == {"cost": "web"}
        assert await CatalogContents(catalog).all_bucket_tags() == {SITE: {"cost": "web"}}
        await catalog.set_upload_tags(SITE, "up-3", "n", {"k": "v"})
        await catalog.upsert(record("z", tags={"k": "v"}))
        await catalog.delete_site(SITE)
        assert await catalog.bucket_tags(SITE) is None
        await catalog.upsert(record("n"), upload_id="up-3")
        assert await catalog.object_tags(SITE, "n") == ("0" * 32, {})
    finally:
        await catalog.close()


@pytest.mark.anyio
async def test_tag_filters(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        await catalog.upsert(record("builds/1.tar.gz", tags=ODD))
        await catalog.upsert(record("builds/2.tar.gz", tags={"team:web/ops": "wéb ops"}))
        await catalog.upsert(record("builds/3.tar.gz"))
        await catalog.upsert(record("plain", tags=ODD))

        async def keys(*tags: tuple[str, str], artifacts_only: bool = True) -> list[str]:
            page = await catalog.list(
                ArtifactFilter(tags=tags),
                artifacts_only=artifacts_only,
                sort="key",
                descending=False,
            )
            return [r.key for r in page.items]

        assert await keys(("team:web/ops", "wéb ops")) == ["builds/1.tar.gz", "builds/2.tar.gz"]
        assert await keys(("team:web/ops", "wéb ops"), ("ключ", "значение")) == ["builds/1.tar.gz"]
        assert await keys(("a.b", "x=y+z@w"), artifacts_only=False) == [
            "builds/1.tar.gz",
            "plain",
        ]
        assert await keys(("empty", "")) == ["builds/1.tar.gz"]
        assert await keys(("team:web/ops", "wéb")) == []
        assert await keys(("nope", "")) == []
    finally:
        await catalog.close()


async def _put(backend: Backend, key: str, data: bytes, tags: dict[str, str]) -> None:
    await backend.put_object(
        CTX, SITE, key, MemoryPayload(data), WriteMetadata(tags=tags), WriteConditions()
    )


@pytest.mark.anyio
async def test_site_state_keeps_tags_and_reindex_restores_them(tmp_path: Path, url: str) -> None:
    storage = FilesystemBackend(tmp_path / "storage", fsync=False)
    stack = build_stack(storage, url, SitePolicy(validate_archives=False), GIB)
    await stack.backend.start()
    try:
        await stack.backend.create_bucket(CTX, SITE)
        await _put(stack.backend, "index.html", b"<html>", ODD)
        await _put(stack.backend, "builds/1.tar.gz", b"one", {"release": "1"})
        await _put(stack.backend, "untagged", b"u", {})
        await _put(stack.backend, "retagged", b"r", {"old": "1"})
        await _put(stack.backend, "retagged", b"r", {})  # same bytes, a new untagged object
        upload = await stack.backend.create_multipart_upload(
            CTX, SITE, "big", WriteMetadata(tags={"parts": "1"}), None, None
        )
        part = await stack.backend.upload_part(
            CTX, SITE, "big", upload.upload_id, 1, MemoryPayload(b"p" * 10)
        )
        await stack.backend.complete_multipart_upload(
            CTX, SITE, "big", upload.upload_id, [CompletedPart(1, part.etag)], WriteConditions()
        )
        await stack.catalog.set_bucket_tags(SITE, {"cost": "web"})

        saved = await load_site_state(storage, SITE)
        assert saved is not None
        assert {k: t.tags for k, t in saved.object_tags.items()} == {
            "index.html": ODD,
            "builds/1.tar.gz": {"release": "1"},
            "big": {"parts": "1"},
        }
        assert saved.bucket_tags == {"cost": "web"}
        # The object is replaced behind the catalog's back: its saved tags are not its own.
        await storage.put_object(
            CTX,
            SITE,
            "builds/1.tar.gz",
            MemoryPayload(b"rebuilt"),
            WriteMetadata(),
            WriteConditions(),
        )
    finally:
        await stack.close()

    if url.startswith("sqlite"):
        for file in (tmp_path / "catalog").glob("catalog.sqlite3*"):
            file.unlink()
    with nullcontext(url) if url.startswith("sqlite") else fresh_schema() as lost_url:
        rebuilt = SqlCatalog(lost_url)
        await rebuilt.start()
        storage = FilesystemBackend(tmp_path / "storage", fsync=False)
        await storage.start()
        try:
            report = await reindex(storage, rebuilt)
            tags = {
                key: await rebuilt.object_tags(SITE, key)
                for key in ("index.html", "builds/1.tar.gz", "untagged", "retagged", "big")
            }
            bucket_tags = await rebuilt.bucket_tags(SITE)
        finally:
            await rebuilt.close()
            await storage.close()
    assert {k: None if v is None else v[1] for k, v in tags.items()} == {
        "index.html": ODD,
        "builds/1.tar.gz": {},
        "untagged": {},
        "retagged": {},
        "big": {"parts": "1"},
    }
    assert bucket_tags == {"cost": "web"}
    assert (report.restored_tags, report.restored_bucket_tags) == (2, 1)
    assert "restored the tags of 2 object(s) and of 1 bucket(s)" in report.summary()


async def _populate(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        await catalog.upsert(record("builds/1.tar.gz", tags=ODD))
        await catalog.upsert(record("plain", tags={"k": "v"}))
        await catalog.upsert(record("untagged"))
        await catalog.set_bucket_tags(SITE, {f"k{i}": "v" for i in range(50)})
        await catalog.set_bucket_tags("site-b", {"cost": "docs"})
    finally:
        await catalog.close()


async def _tag_state(url: str) -> dict[str, Any]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        page = await catalog.list(ArtifactFilter(), artifacts_only=False, sort="key")
        return {
            "objects": {r.key: r.tags for r in page.items},
            "buckets": await CatalogContents(catalog).all_bucket_tags(),
        }
    finally:
        await catalog.close()


def test_backup_and_restore_carry_tags(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source' / 'catalog.sqlite3'}"
    anyio.run(_populate, source)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    assert "2 bucket tag set(s)" in capsys.readouterr().out
    assert main(["restore", str(file), "--catalog-url", url]) == 0
    assert anyio.run(_tag_state, url) == anyio.run(_tag_state, source)
    # Tags that break S3's rules make the file unreadable; nothing is restored from it.
    lines = file.read_text().splitlines()
    for broken in (
        [
            json.dumps({**json.loads(line), "tags": {"aws:x": "1"}})
            if '"type":"object"' in line
            else line
            for line in lines
        ],
        [
            json.dumps({**json.loads(line), "tags": {"k": 1}})
            if '"type":"bucket_tags"' in line
            else line
            for line in lines
        ],
    ):
        bad = tmp_path / "bad.backup"
        bad.write_text("\n".join(broken) + "\n")
        with pytest.raises(BackupError):
            check_backup(bad)
    # A backup written before tags were carried (no tags, no bucket_tags count) still reads.
    old = [
        json.dumps({k: v for k, v in json.loads(line).items() if k not in ("tags", "bucket_tags")})
        for line in lines
        if '"type":"bucket_tags"' not in line
    ]
    legacy = tmp_path / "legacy.backup"
    legacy.write_text("\n".join(old) + "\n")
    assert check_backup(legacy).bucket_tags == 0


@pytest.mark.anyio
async def test_a_write_the_catalog_missed_keeps_its_tags(tmp_path: Path) -> None:
    """With a catalog gate, a write acknowledged while the catalog went is recorded once it
    answers again, with the tags the write set (a completed upload's: those it asked for)."""
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    gate = CatalogGate(catalog.check_ready, fresh_s=3600)
    backend = CatalogBackend(
        FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False), catalog, gate
    )
    await backend.start()
    try:
        await backend.create_bucket(CTX, SITE)
        upload = await backend.create_multipart_upload(
            CTX, SITE, "mp", WriteMetadata(tags={"from": "upload"}), None, None
        )
        part = await backend.upload_part(CTX, SITE, "mp", upload.upload_id, 1, MemoryPayload(b"p"))
        await catalog.close()  # the catalog goes while a put is under way
        await _put(backend, "put", b"x", {"from": "put"})
        await catalog.start()
        await _put(backend, "next", b"y", {})  # the first write admitted catches up
        assert await catalog.object_tags(SITE, "put") == (md5_hex(b"x"), {"from": "put"})
        await catalog.close()  # and again while an upload completes
        await backend.complete_multipart_upload(
            CTX, SITE, "mp", upload.upload_id, [CompletedPart(1, part.etag)], WriteConditions()
        )
        await catalog.start()
        await _put(backend, "next", b"z", {})
        stored = await catalog.object_tags(SITE, "mp")
        assert stored is not None
        assert stored[1] == {"from": "upload"}
    finally:
        await backend.close()


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(policy.__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _alembic(url: str, action: str, revision: str) -> None:
    config = _config()
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


@pytest.mark.anyio
async def test_upgrade_to_tagging_and_back(url: str) -> None:
    """Rows written before 0007_tagging read as untagged, take tags after it, and a
    downgrade to the revision before it drops the tag tables and column only."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    before = _script().get_revision("0007_tagging").down_revision
    assert isinstance(before, str)
    _alembic(url, "upgrade", before)
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO objects (site, key, size, etag, created_at, creator, "
                    "content_type, pinned, corrupt, user_metadata) VALUES ('site-a', 'old', 1, "
                    "'e', :now, 'root', 'text/plain', false, false, '{}')"
                ),
                {"now": T0},
            )
    finally:
        engine.dispose()
    catalog = SqlCatalog(url)
    await catalog.start()  # migrates to the head
    try:
        assert await catalog.object_tags(SITE, "old") == ("e", {})
        assert await catalog.set_object_tags(SITE, "old", {"k": "v"})
        await catalog.set_bucket_tags(SITE, {"k": "v"})
    finally:
        await catalog.close()
    _alembic(url, "downgrade", before)
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT key FROM objects")).scalars().all() == ["old"]
            tables = set(inspect(conn).get_table_names())
            assert "bucket_tags" not in tables
            assert "upload_tags" not in tables
            assert "tags" not in {c["name"] for c in inspect(conn).get_columns("objects")}
    finally:
        engine.dispose()
