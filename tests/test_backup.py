"""``pagewright-gateway backup`` / ``restore``: the catalog's own state round-trips between
catalogs (SQLite to SQLite, SQLite to PostgreSQL); damaged or foreign files change nothing."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert

from commands.cli import main
from core.object_lock import BucketLock, DefaultRetention, ObjectLock
from policy.access_store import AccessStore
from policy.api_keys import ApiKeyStore
from policy.bucket_access import canned_acl, default_access
from policy.catalog import SqlCatalog
from policy.catalog_contents import CatalogContents
from policy.catalog_schema import noncurrent_versions
from policy.identities import IdentityStore, export_identities
from policy.model import ArtifactFilter, ObjectRecord
from policy.object_lock import ObjectLocks
from policy.principals import Role
from policy.secret_box import SecretBox
from tests.support.postgres import catalog_url
from translators.base import ObjectInfo
from translators.versioning import Version

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("PWG_BACKEND", "PWG_CATALOG_URL", "PWG_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)


def record(key: str, **changes: Any) -> ObjectRecord:
    values: dict[str, Any] = {
        "site": "site-a",
        "key": key,
        "size": 10,
        "etag": "0" * 32,
        "created_at": T0,
        "creator": "root",
    }
    values.update(changes)
    return ObjectRecord(**values)


ROWS = [
    record(
        "builds/1.tar.gz",
        build_id="1",
        compression="gzip",
        sha256="a" * 64,
        status="success",
        action="deploy",
        pinned=True,
        user_metadata={"creator": "root", "status": "ok", "team": "wéb"},
    ),
    record("builds/2.tar.zst", build_id="2", compression="zstd", corrupt=True, size=0),
    record("index.html", content_type="text/html", created_at=T0 + timedelta(seconds=1)),
    record("builds/9.tar", site="site-b", build_id="9", compression="none"),
]


async def populate(url: str) -> str:
    """Rows, policy overrides and an API key in the catalog at ``url``; the key's secret."""
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        for row in ROWS:
            await catalog.upsert(row)
        await catalog.set_site_overrides("site-a", {"retention_keep_last": 3})
        await catalog.set_site_overrides(
            "site-c", {"quota_bytes": 1000, "validate_archives": False}
        )
        keys = ApiKeyStore(catalog)
        secret = await keys.create_api_key("root")
        await keys.create_api_key("ci")
        assert await keys.principal_for_api_key(secret) == "root"
        return secret
    finally:
        await catalog.close()


async def contents(url: str, secret: str | None = None) -> dict[str, Any]:
    """Everything a catalog holds (and whom ``secret`` authenticates, if given)."""
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        page = await catalog.list(ArtifactFilter(), artifacts_only=False, sort="key", limit=1000)
        keys = ApiKeyStore(catalog)
        return {
            "rows": sorted(page.items, key=lambda r: (r.site, r.key)),
            "policies": await CatalogContents(catalog).all_site_overrides(),
            "keys": await keys.api_key_records(),
            "principal": None if secret is None else await keys.principal_for_api_key(secret),
        }
    finally:
        await catalog.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path / "target") as value:
        yield value


def test_backup_and_restore_round_trip(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source' / 'catalog.sqlite3'}"
    secret = anyio.run(populate, source)
    before = anyio.run(contents, source)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    assert "backed up 4 object row(s), 2 site polic(ies), 2 API key(s)" in capsys.readouterr().out
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert secret not in file.read_text()  # only the secret's SHA-256 is kept
    header = json.loads(file.read_text().splitlines()[0])
    assert (header["format"], header["version"]) == ("pagewright-catalog-backup", 1)

    assert main(["restore", str(file), "--catalog-url", target]) == 0
    assert "restored 4 object row(s)" in capsys.readouterr().out
    after = anyio.run(contents, target, secret)
    assert after["principal"] == "root"  # the restored key still authenticates
    assert {k: after[k] for k in ("rows", "policies")} == {
        k: before[k] for k in ("rows", "policies")
    }
    assert [(k.id, k.principal, k.key_hash, k.created_at) for k in after["keys"]] == [
        (k.id, k.principal, k.key_hash, k.created_at) for k in before["keys"]
    ]

    # A catalog that is not empty is replaced only when asked to.
    assert main(["restore", str(file), "--catalog-url", target]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["restore", str(file), "--catalog-url", target, "--replace"]) == 0
    assert anyio.run(contents, target)["rows"] == before["rows"]


def _header(**fields: Any) -> str:
    return json.dumps(fields)


DAMAGES: dict[str, tuple[Callable[[list[str]], list[str]], str]] = {
    "version": (
        lambda lines: [_header(format="pagewright-catalog-backup", version=2), *lines[1:]],
        "version 2",
    ),
    "format": (
        lambda lines: [_header(format="something-else", version=1), *lines[1:]],
        "not a PageWright catalog backup",
    ),
    "truncated": (lambda lines: lines[:-1], "truncated"),
    "counts": (lambda lines: [*lines[:2], *lines[3:]], "the end line counts"),
    "garbage": (lambda lines: [*lines[:2], "{not json", *lines[2:]], "line 3 is not JSON"),
    "malformed": (
        lambda lines: [lines[0], _header(type="object", site="x"), *lines[1:]],
        "line 2: malformed object entry",
    ),
}


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_restore_refuses_a_foreign_or_damaged_file_and_changes_nothing(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, says = DAMAGES[name]
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    anyio.run(populate, source)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    file.write_text("\n".join(damage(file.read_text().splitlines())) + "\n")
    capsys.readouterr()
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    assert main(["restore", str(file), "--catalog-url", target]) == 1
    assert says in capsys.readouterr().err
    empty = anyio.run(contents, target)
    assert (empty["rows"], empty["policies"], empty["keys"]) == ([], {}, [])


def test_backup_of_a_missing_file_and_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    assert main(["restore", str(tmp_path / "nope"), "--catalog-url", target]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "x"), "--catalog-url", "ftp://nowhere"]) == 1


async def populate_identities(url: str, box: SecretBox) -> tuple[str, str]:
    """A user with a key, an inline policy and a site grant; the key's id and secret."""
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        store = IdentityStore(catalog, box)
        await store.create_user("alice", path="/team/")
        await store.create_user("bob")
        key = await store.create_access_key("alice", expires_at=T0 + timedelta(days=3650))
        await store.update_access_key("alice", key.access_key_id, "Active")
        await store.put_user_policy("alice", "read", '{"Version": "2012-10-17"}')
        await store.grant("site-a", "alice", Role.deployer)
        await store.grant("site-b", "bob", Role.reader)
        await ApiKeyStore(catalog).create_api_key("alice", expires_at=T0 + timedelta(days=3650))
        return key.access_key_id, key.secret_access_key
    finally:
        await catalog.close()


async def identities_of(url: str, box: SecretBox, key_id: str) -> dict[str, Any]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        store = IdentityStore(catalog, box)
        credential = await store.credential(key_id)
        users, keys, policies, grants = await export_identities(catalog)
        api_keys = ApiKeyStore(catalog)
        return {
            "users": users,
            "keys": [replace(k, info=replace(k.info, last_used_at=None)) for k in keys],
            "policies": policies,
            "grants": grants,
            "api_keys": [(k.principal, k.expires_at) for k in await api_keys.api_key_records()],
            "secret": None if credential is None else credential.secret_key,
        }
    finally:
        await catalog.close()


def test_identities_survive_backup_and_restore(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    box = SecretBox.from_key(Fernet.generate_key())
    source = f"sqlite:///{tmp_path / 'source' / 'catalog.sqlite3'}"
    key_id, secret = anyio.run(populate_identities, source, box)
    before = anyio.run(identities_of, source, box, key_id)
    assert before["secret"] == secret
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    out = capsys.readouterr().out
    assert "2 user(s), 1 access key(s), 1 user polic(ies), 2 site grant(s)" in out
    assert secret not in file.read_text()  # the key travels sealed

    assert main(["restore", str(file), "--catalog-url", target]) == 0
    after = anyio.run(identities_of, target, box, key_id)
    assert after == before  # the restored key opens under the same master key
    other_box = SecretBox.from_key(Fernet.generate_key())
    assert anyio.run(identities_of, target, other_box, key_id)["secret"] is None

    assert main(["restore", str(file), "--catalog-url", target]) == 1  # not empty: users
    capsys.readouterr()
    assert main(["restore", str(file), "--catalog-url", target, "--replace"]) == 0
    assert anyio.run(identities_of, target, box, key_id) == before


def test_a_backup_from_before_identities_still_restores(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    anyio.run(populate, source)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    lines = file.read_text().splitlines()
    end = json.loads(lines[-1])
    old_end = {k: end[k] for k in ("type", "objects", "site_policies", "api_keys")}
    older = [json.loads(line) for line in lines[1:-1]]
    for document in older:
        document.pop("expires_at", None)  # API key lines had no expiry then
    file.write_text("\n".join([lines[0], *map(json.dumps, older), json.dumps(old_end)]) + "\n")
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    assert main(["restore", str(file), "--catalog-url", target]) == 0
    assert len(anyio.run(contents, target)["keys"]) == 2


async def populate_access(url: str) -> dict[str, Any]:
    """A site with a bucket policy, a public ACL, a lifted block and an object ACL; the
    sites' settings as stored."""
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "NoSecrets",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::site-a/secret/*",
                    }
                ],
            }
        )
        access = replace(
            default_access("alice"),
            acl=canned_acl("public-read", "alice"),
            public_access_block=None,
            ownership="ObjectWriter",
        )
        store = AccessStore(catalog)
        await store.set_bucket_access("site-a", access, policy)
        await store.set_bucket_access("site-b", default_access("root"), None)
        await store.set_object_acl("site-a", "page.html", canned_acl("public-read", "alice"))
        return await CatalogContents(catalog).all_bucket_access()
    finally:
        await catalog.close()


async def access_of(url: str) -> dict[str, Any]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        stored = CatalogContents(catalog)
        return {
            "sites": await stored.all_bucket_access(),
            "objects": await stored.all_object_acls(),
        }
    finally:
        await catalog.close()


def test_site_access_settings_survive_backup_and_restore(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source' / 'catalog.sqlite3'}"
    anyio.run(populate_access, source)
    before = anyio.run(access_of, source)
    assert before["sites"]["site-a"][1] is not None
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    assert "2 site access setting(s), 1 object ACL(s)" in capsys.readouterr().out
    assert main(["restore", str(file), "--catalog-url", target]) == 0
    assert anyio.run(access_of, target) == before
    # A damaged access line is refused before anything is written.
    lines = file.read_text().splitlines()
    damaged = [
        line.replace('"ownership":"ObjectWriter"', '"ownership":"Everyone"') for line in lines
    ]
    file.write_text("\n".join(damaged) + "\n")
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert main(["restore", str(file), "--catalog-url", empty]) == 1
    assert "Everyone" in capsys.readouterr().err


LOCKED_UNTIL = datetime(2030, 1, 1, tzinfo=UTC)


async def populate_locks(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        locks = ObjectLocks(catalog)
        await locks.set_bucket("locked", BucketLock(DefaultRetention("GOVERNANCE", days=3)))
        await locks.set_bucket("plain-lock", BucketLock())
        await locks.store("locked", "k", "v1", ObjectLock("COMPLIANCE", LOCKED_UNTIL, True))
        await locks.store("locked", "k", "v2", ObjectLock(None, None, True))
    finally:
        await catalog.close()


async def locks_of(url: str) -> tuple[dict[str, BucketLock], list[Any]]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        locks = ObjectLocks(catalog)
        return await locks.all_buckets(), await locks.all_versions()
    finally:
        await catalog.close()


def test_object_lock_state_survives_backup_and_restore(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sites' object lock configuration and versions' locks are catalog-only state: a
    backup carries them, and a restore brings them back exactly."""
    source = f"sqlite:///{tmp_path / 'source' / 'catalog.sqlite3'}"
    anyio.run(populate_locks, source)
    before = anyio.run(locks_of, source)
    assert len(before[1]) == 2
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    assert "2 object lock configuration(s), 2 version lock(s)" in capsys.readouterr().out
    assert main(["restore", str(file), "--catalog-url", target]) == 0
    assert anyio.run(locks_of, target) == before


async def populate_versions(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        key = "builds/v.tar.gz"
        await catalog.set_versioning_status("site-a", "Enabled")
        for n in range(3):
            await catalog.upsert(
                record(key, size=10 + n, etag=f"e{n}", sha256=f"{n}" * 64, version_id=f"v{n}")
            )
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        history = [
            Version(
                key,
                f"v{n}",
                moment + timedelta(minutes=n),
                ObjectInfo(key, 10 + n, f"e{n}", moment, version_id=f"v{n}"),
                2 - n,
            )
            for n in (2, 1, 0)
        ]
        await catalog.set_versions("site-a", key, history)
        await catalog.database.run(
            True,
            lambda conn: conn.execute(
                insert(noncurrent_versions).values(site="site-a", key="old", bytes=5, versions=1)
            ),
        )
    finally:
        await catalog.close()


async def versions_of(url: str) -> tuple[Any, ...]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        return (
            await catalog.versioning_status("site-a"),
            await catalog.key_versions("site-a", "builds/v.tar.gz"),
            await catalog.usage("site-a"),
        )
    finally:
        await catalog.close()


def test_versions_survive_backup_and_restore(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Versioning state, version rows (with what the catalog knew of each version) and the
    pre-0012 noncurrent totals are catalog state a backup carries."""
    source = f"sqlite:///{tmp_path / 'source' / 'catalog.sqlite3'}"
    anyio.run(populate_versions, source)
    before = anyio.run(versions_of, source)
    assert before[0] == "Enabled"
    assert [v.sha256 for v in before[1].items] == ["2" * 64, "1" * 64, "0" * 64]
    assert (before[2].noncurrent_bytes, before[2].noncurrent_versions) == (26, 3)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    out = capsys.readouterr().out
    assert "1 versioning state(s), 2 version row(s), 1 noncurrent total(s)" in out
    assert main(["restore", str(file), "--catalog-url", target]) == 0
    assert anyio.run(versions_of, target) == before
    # A damaged version line is refused before anything is written.
    lines = file.read_text().splitlines()
    damaged = [
        line.replace('"size":11', '"size":-1') if '"object_version"' in line else line
        for line in lines
    ]
    file.write_text("\n".join(damaged) + "\n")
    assert main(["restore", str(file), "--catalog-url", target, "--replace"]) != 0
    assert "size must be a non-negative integer" in capsys.readouterr().err
