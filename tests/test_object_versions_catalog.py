"""The catalog's version rows (policy.catalog_versions, migration 0012_object_versions) on
SQLite and PostgreSQL: a catalog at 0011 holding per-key noncurrent totals upgrades with its
usage intact; a key's old total is replaced by its rows once the key is recorded again; the
downgrade folds rows back into totals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

import policy
from policy.catalog import SqlCatalog
from policy.catalog_database import normalize_url
from policy.model import ObjectRecord
from tests.support.postgres import catalog_url
from translators.base import ObjectInfo
from translators.versioning import Version

SITE = "site-a"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path / "catalog") as value:
        yield value


def _alembic(url: str, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(policy.__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def _execute(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), {"now": T0})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _entry(key: str, version_id: str, size: int | None, etag: str, age: int) -> Version:
    moment = T0 + timedelta(minutes=10 - age)
    info = None
    if size is not None:
        info = ObjectInfo(
            key=key, size=size, etag=etag, last_modified=moment, version_id=version_id
        )
    return Version(key, version_id, moment, info)


def _numbered(*entries: Version) -> list[Version]:
    return [Version(e.key, e.version_id, e.last_modified, e.info, n) for n, e in enumerate(entries)]


@pytest.mark.anyio
async def test_upgrade_keeps_old_totals_until_the_key_is_recorded(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _alembic(url, "upgrade", "0011_upload_locks")
    _execute(
        url,
        "INSERT INTO objects (site, key, size, etag, created_at, creator, content_type, "
        "pinned, corrupt, user_metadata) VALUES ('site-a', 'builds/b.tar.gz', 7, 'e3', :now, "
        "'root', 'application/gzip', false, false, '{}')",
    )
    _execute(url, "INSERT INTO site_versioning (site, status) VALUES ('site-a', 'Enabled')")
    _execute(
        url,
        "INSERT INTO noncurrent_versions (site, key, bytes, versions) VALUES "
        "('site-a', 'builds/b.tar.gz', 30, 2), ('site-a', 'other', 5, 1)",
    )
    catalog = SqlCatalog(url)
    await catalog.start()  # migrates to the head
    try:
        usage = await catalog.usage(SITE)
        assert (usage.bytes, usage.noncurrent_bytes, usage.noncurrent_versions) == (42, 35, 3)
        assert (await catalog.usage_by_site())[SITE] == usage
        row = await catalog.get(SITE, "builds/b.tar.gz")
        assert row is not None
        assert row.version_id is None
        # The key is recorded again (a versioned write): its rows replace its old total.
        key = "builds/b.tar.gz"
        history = _numbered(
            _entry(key, "v3", 7, "e3", 0),
            _entry(key, "v2", 20, "e2", 1),
            _entry(key, "v1", 10, "e1", 2),
        )
        await catalog.set_versions(SITE, key, history)
        usage = await catalog.usage(SITE)
        assert (usage.bytes, usage.noncurrent_bytes, usage.noncurrent_versions) == (42, 35, 3)
        page = await catalog.key_versions(SITE, key)
        assert [(v.version_id, v.is_latest) for v in page.items] == [
            ("null", True),
            ("v2", False),
            ("v1", False),
        ]
        # Versions first seen in a listing know only the build id their key names.
        assert [(v.build_id, v.sha256) for v in page.items[1:]] == [("b", None), ("b", None)]
        # A new current version: the row it replaces moves to the versions, fields and all.
        new = ObjectRecord(
            site=SITE,
            key=key,
            size=4,
            etag="e4",
            created_at=T0 + timedelta(hours=1),
            creator="root",
            build_id="b",
            sha256="a" * 64,
            version_id="v4",
        )
        await catalog.upsert(new)
        await catalog.upsert(ObjectRecord(**{**new.__dict__, "etag": "e5", "version_id": "v5"}))
        await catalog.set_versions(
            SITE,
            key,
            _numbered(
                _entry(key, "v5", 4, "e5", -61),
                _entry(key, "v4", 4, "e4", -60),
                *history,
            ),
        )
        page = await catalog.key_versions(SITE, key, limit=2)
        assert [v.version_id for v in page.items] == ["v5", "v4"]
        assert page.items[1].sha256 == "a" * 64
        assert page.next_cursor is not None
        rest = await catalog.key_versions(SITE, key, cursor=page.next_cursor)
        assert [v.version_id for v in rest.items] == ["v3", "v2", "v1"]
        assert rest.next_cursor is None
    finally:
        await catalog.close()
    _alembic(url, "downgrade", "0011_upload_locks")
    totals = _execute(url, "SELECT key, bytes, versions FROM noncurrent_versions ORDER BY key")
    assert totals == [("builds/b.tar.gz", 41, 4), ("other", 5, 1)]
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            assert "object_versions" not in inspect(conn).get_table_names()
            assert "version_id" not in {c["name"] for c in inspect(conn).get_columns("objects")}
    finally:
        engine.dispose()
    _alembic(url, "upgrade", "head")


@pytest.mark.anyio
async def test_a_marker_replacing_the_null_version_keeps_nothing_of_it(url: str) -> None:
    """Suspended versioning: a delete replaces the ``null`` object with a ``null`` marker;
    the row of the object moved to the versions is not taken for the marker."""
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        key = "builds/n.tar"
        record = ObjectRecord(
            site=SITE, key=key, size=9, etag="e", created_at=T0, creator="root",
            sha256="b" * 64, build_id="n", version_id="null",
        )  # fmt: skip
        await catalog.upsert(record)
        await catalog.delete(SITE, key)
        await catalog.set_versions(SITE, key, _numbered(_entry(key, "null", None, "", 0)))
        (marker,) = (await catalog.key_versions(SITE, key)).items
        assert (marker.is_delete_marker, marker.is_latest, marker.size) == (True, True, 0)
        assert (marker.sha256, marker.build_id, marker.etag) == (None, None, None)
        assert (await catalog.usage(SITE)).noncurrent_versions == 0
        await catalog.prune_versions(SITE, set())
        assert (await catalog.key_versions(SITE, key)).items == []
    finally:
        await catalog.close()
