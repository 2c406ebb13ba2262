"""Object lock survives a lost catalog: each locked version's lock record and the site's
configuration in its state record (policy.lock_records, policy.site_state), restored by
``reindex`` (policy.reindex_locks), over S3 with boto3 on the memory and filesystem
translators; the records' format and naming; a lock that cannot be recorded answers 503."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from commands.cli import main
from core.context import RequestContext
from core.errors import S3Error
from core.object_lock import BucketLock, DefaultRetention, ObjectLock
from core.streams import PayloadStream
from policy.catalog import SqlCatalog
from policy.lock_records import (
    LOCKS_PREFIX,
    LockRecord,
    LockRecordError,
    LockRecords,
    record_key,
)
from policy.reindex import ReindexReport, reindex
from policy.site_state import SITE_STATE_KEY, SiteState, load_site_state
from tests.support.artifact_api import ApiClient, create_api_key, upload
from tests.support.clients import make_s3_client
from tests.support.gateway import in_process_gateway
from tests.support.s3_errors import s3_error
from translators.base import Backend, ListQuery, ObjectInfo, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend
from translators.memory.backend import MemoryBackend

CTX = RequestContext(request_id="test-lock-records", principal="root")
DENIED = (403, "AccessDenied")
LOCKED, PLAIN = "locked-site", "held-site"
RULE = {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}
#: The locked versions of LOCKED: (name of its version id, key).
LOCKED_VERSIONS = (("a1", "a"), ("a2", "a"), ("h1", "dir/h é"), ("h2", "dir/h é"))


def later(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


@dataclass
class Store:
    """One storage shared by gateways that come and go; ``opened`` gives each its translator."""

    opened: Callable[[], Backend]


@pytest.fixture(params=["memory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        memory = MemoryBackend()
        return Store(lambda: memory)
    root = tmp_path / "storage"
    return Store(lambda: FilesystemBackend(root, fsync=False))


@pytest.fixture
def serving(store: Store, monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Any]:
    """Serve a gateway with data dir (and so catalog) ``data`` over ``store``."""
    monkeypatch.setattr("commands.serve.open_backend", lambda *_, **__: store.opened())
    return in_process_gateway


async def _stored_names(backend: Backend, bucket: str) -> list[str]:
    await backend.start()
    try:
        page = await backend.list_objects(CTX, bucket, ListQuery(prefix=LOCKS_PREFIX))
        return [o.key for o in page.objects]
    finally:
        await backend.close()


async def _reindex(backend: Backend, url: str, stale: tuple[str, str, str]) -> ReindexReport:
    catalog = SqlCatalog(url)
    await catalog.start()
    await backend.start()
    try:
        # A record left by a version that is gone: reindex removes it.
        await LockRecords(backend).write(stale[0], stale[1], stale[2], ObjectLock(legal_hold=True))
        return await reindex(backend, catalog)
    finally:
        await backend.close()
        await catalog.close()


def _populate(s3: Any) -> dict[str, str]:
    """A site with default COMPLIANCE retention, a retention set and holds placed; a site
    with object lock and no default, where a hold was placed and taken off and a retained
    version deleted. The version ids, by name."""
    s3.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=LOCKED, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": RULE}
    )
    v: dict[str, str] = {}
    v["a1"] = s3.put_object(Bucket=LOCKED, Key="a", Body=b"a1")["VersionId"]
    v["a2"] = s3.put_object(Bucket=LOCKED, Key="a", Body=b"a2")["VersionId"]
    retention = {"Mode": "COMPLIANCE", "RetainUntilDate": later(30)}
    s3.put_object_retention(Bucket=LOCKED, Key="a", VersionId=v["a2"], Retention=retention)
    # A legal hold on a noncurrent version, and one on a latest version that then moves on.
    s3.put_object_legal_hold(Bucket=LOCKED, Key="a", VersionId=v["a1"], LegalHold={"Status": "ON"})
    v["h1"] = s3.put_object(Bucket=LOCKED, Key="dir/h é", Body=b"h1")["VersionId"]
    s3.put_object_legal_hold(Bucket=LOCKED, Key="dir/h é", LegalHold={"Status": "ON"})
    v["h2"] = s3.put_object(Bucket=LOCKED, Key="dir/h é", Body=b"h2")["VersionId"]
    s3.put_object_legal_hold(Bucket=LOCKED, Key="dir/h é", LegalHold={"Status": "ON"})
    s3.create_bucket(Bucket=PLAIN, ObjectLockEnabledForBucket=True)
    v["x"] = s3.put_object(Bucket=PLAIN, Key="x", Body=b"x")["VersionId"]
    s3.put_object_legal_hold(Bucket=PLAIN, Key="x", LegalHold={"Status": "ON"})
    s3.put_object_legal_hold(Bucket=PLAIN, Key="x", LegalHold={"Status": "OFF"})
    v["d"] = s3.put_object(
        Bucket=PLAIN, Key="d", Body=b"d", ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=later(1),
    )["VersionId"]  # fmt: skip
    s3.delete_object(Bucket=PLAIN, Key="d", VersionId=v["d"], BypassGovernanceRetention=True)
    return v


def _locks_seen(s3: Any, v: dict[str, str]) -> dict[str, Any]:
    """What S3 answers about every lock of the sites."""
    seen: dict[str, Any] = {
        "config": s3.get_object_lock_configuration(Bucket=LOCKED)["ObjectLockConfiguration"],
        "plain": s3.get_object_lock_configuration(Bucket=PLAIN)["ObjectLockConfiguration"],
    }
    for name, key in LOCKED_VERSIONS:
        got = s3.get_object_retention(Bucket=LOCKED, Key=key, VersionId=v[name])["Retention"]
        hold = s3.get_object_legal_hold(Bucket=LOCKED, Key=key, VersionId=v[name])
        seen[name] = (got["Mode"], got["RetainUntilDate"], hold["LegalHold"]["Status"])
    hold = s3.get_object_legal_hold(Bucket=PLAIN, Key="x", VersionId=v["x"])
    seen["x"] = hold["LegalHold"]["Status"]
    return seen


def test_reindex_restores_object_lock_from_the_records(
    serving: Callable[[Path], Any], store: Store, tmp_path: Path
) -> None:
    with serving(tmp_path / "first") as first:
        s3 = make_s3_client(first)
        v = _populate(s3)
        before = _locks_seen(s3, v)
        # S3 clients never see the records: not listed, not readable.
        listed = s3.list_objects_v2(Bucket=LOCKED)["Contents"]
        assert {k["Key"] for k in listed} == {"a", "dir/h é"}
        versions = s3.list_object_versions(Bucket=LOCKED)["Versions"]
        assert {k["Key"] for k in versions} == {"a", "dir/h é"}
        name = record_key("a", v["a1"])
        assert s3_error(lambda: s3.get_object(Bucket=LOCKED, Key=name))[:2] == (
            400,
            "InvalidObjectName",
        )
    assert before["config"] == {"ObjectLockEnabled": "Enabled", "Rule": RULE}
    assert before["a1"][2] == before["h1"][2] == before["h2"][2] == "ON"
    # One record per locked version; none for the cleared hold nor the deleted version.
    names = anyio.run(_stored_names, store.opened(), LOCKED)
    assert sorted(names) == sorted(record_key(key, v[n]) for n, key in LOCKED_VERSIONS)
    assert anyio.run(_stored_names, store.opened(), PLAIN) == []

    # The catalog is lost: a fresh one, rebuilt by reindex from the backend.
    fresh = f"sqlite:///{tmp_path / 'second' / 'catalog.sqlite3'}"
    (tmp_path / "second").mkdir()
    report = anyio.run(_reindex, store.opened(), fresh, (PLAIN, "x", "no-such-version"))
    assert report.locks.configurations == 2
    assert report.locks.versions == 4
    assert report.locks.stale_records == 1
    assert report.locks.problems == []
    assert "restored object lock on 2 site(s)" in report.summary()
    assert anyio.run(_stored_names, store.opened(), PLAIN) == []

    with serving(tmp_path / "second") as second:
        s3 = make_s3_client(second)
        assert _locks_seen(s3, v) == before
        for name, key in LOCKED_VERSIONS:
            delete = partial(
                s3.delete_object,
                Bucket=LOCKED,
                Key=key,
                VersionId=v[name],
                BypassGovernanceRetention=True,
            )
            assert s3_error(delete)[:2] == DENIED, name
        head = s3.head_object(Bucket=LOCKED, Key="dir/h é")
        assert head["ObjectLockLegalHoldStatus"] == "ON"
        assert head["ObjectLockMode"] == "COMPLIANCE"
        # The cleared hold stays cleared: that version goes.
        s3.delete_object(Bucket=PLAIN, Key="x", VersionId=v["x"])


def test_the_site_record_keeps_the_configuration() -> None:
    lock = BucketLock(DefaultRetention("GOVERNANCE", years=2))
    assert SiteState.from_json(SiteState("s", object_lock=lock).to_json()).object_lock == lock
    bare = SiteState.from_json(SiteState("s", object_lock=BucketLock()).to_json())
    assert bare.object_lock == BucketLock()
    old = b'{"format":"pagewright-site-state","version":1,"site":"s","overrides":{},"artifacts":{}}'
    assert SiteState.from_json(old).object_lock is None


def test_records_name_any_key_safely_and_parse_strictly() -> None:
    long_key = "k/" + "é" * 511
    name = record_key(long_key, "abc-_.1")
    assert name.startswith(LOCKS_PREFIX)
    assert name.endswith("/abc-_.1")
    assert len(name) < 200
    assert record_key("../x", "../y").endswith("/~2e2e2f79")
    assert record_key("a", "v") != record_key("b", "v")
    until = datetime(2040, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = LockRecord(long_key, "v1", ObjectLock("COMPLIANCE", until, True))
    assert LockRecord.from_json(record.to_json()) == record
    for bad in (
        b"{}",
        b"not json",
        record.to_json().replace(b'"COMPLIANCE"', b'"SOFT"'),
        record.to_json().replace(b'"legal_hold":true', b'"legal_hold":"yes"'),
        record.to_json().replace(b"+00:00", b""),
    ):
        with pytest.raises(LockRecordError):
            LockRecord.from_json(bad)


class _Refusing(MemoryBackend):
    """A memory store that refuses writes of lock records."""

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        if key.startswith(LOCKS_PREFIX):
            raise S3Error("InternalError", "the disk is gone")
        return await super().put_object(ctx, bucket, key, body, metadata, conditions)


def test_a_lock_that_cannot_be_recorded_answers_503(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    refusing = _Refusing()
    monkeypatch.setattr("commands.serve.open_backend", lambda *_, **__: refusing)
    with in_process_gateway(tmp_path / "data") as gateway:
        s3 = make_s3_client(gateway)
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="k", Body=b"no lock, no record")  # unaffected
        s3.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
        version = s3.put_object(Bucket=LOCKED, Key="k", Body=b"x")["VersionId"]
        hold = lambda: s3.put_object_legal_hold(  # noqa: E731
            Bucket=LOCKED, Key="k", VersionId=version, LegalHold={"Status": "ON"}
        )
        assert s3_error(hold)[:2] == (503, "ServiceUnavailable")
        # The lock holds all the same (the catalog is the live state).
        held = s3.get_object_legal_hold(Bucket=LOCKED, Key="k", VersionId=version)
        assert held["LegalHold"]["Status"] == "ON"
    record = anyio.run(_site_record, refusing, LOCKED)
    assert record is not None
    assert record.object_lock == BucketLock()


async def _site_record(backend: Backend, site: str) -> SiteState | None:
    await backend.start()
    try:
        return await load_site_state(backend, site)
    finally:
        await backend.close()


async def _drop_records(backend: Backend, bucket: str) -> None:
    await backend.start()
    try:
        page = await backend.list_objects(CTX, bucket, ListQuery(prefix=LOCKS_PREFIX))
        for found in page.objects:
            await backend.delete_object(CTX, bucket, found.key)
    finally:
        await backend.close()


def test_restore_writes_the_lock_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A catalog restored from a backup writes its versions' lock records (here into a store
    that had lost them), so a later reindex keeps the locks."""
    root = tmp_path / "storage"
    monkeypatch.setattr(
        "commands.serve.open_backend", lambda *_, **__: FilesystemBackend(root, fsync=False)
    )
    with in_process_gateway(tmp_path / "first") as first:
        s3 = make_s3_client(first)
        v = _populate(s3)
        before = _locks_seen(s3, v)
    file = tmp_path / "catalog.backup"
    source = f"sqlite:///{tmp_path / 'first' / 'catalog.sqlite3'}"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    anyio.run(_drop_records, FilesystemBackend(root, fsync=False), LOCKED)
    restored = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    store_url = f"file://{root}"
    capsys.readouterr()
    assert main(["restore", str(file), "--catalog-url", restored, "--backend", store_url]) == 0
    assert "wrote 4 object lock record(s) into the store" in capsys.readouterr().out
    names = anyio.run(_stored_names, FilesystemBackend(root, fsync=False), LOCKED)
    assert sorted(names) == sorted(record_key(key, v[n]) for n, key in LOCKED_VERSIONS)

    (tmp_path / "second").mkdir()
    fresh = f"sqlite:///{tmp_path / 'second' / 'catalog.sqlite3'}"
    report = anyio.run(_reindex, FilesystemBackend(root, fsync=False), fresh, (PLAIN, "x", "v0"))
    assert report.locks.versions == 4
    with in_process_gateway(tmp_path / "second") as second:
        assert _locks_seen(make_s3_client(second), v) == before


async def _record_of(backend: Backend, bucket: str, key: str, version: str) -> LockRecord | None:
    found = await LockRecords(backend).read_many(bucket, [record_key(key, version)])
    record = found.get(record_key(key, version))
    assert not isinstance(record, LockRecordError)
    return record


def test_the_artifact_api_pin_on_a_locked_site_is_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    memory = MemoryBackend()
    monkeypatch.setattr("commands.serve.open_backend", lambda *_, **__: memory)
    with in_process_gateway(tmp_path / "data") as gateway:
        s3 = make_s3_client(gateway)
        s3.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
        upload(s3, LOCKED, "b1")
        key = "builds/b1.tar.gz"
        version = s3.head_object(Bucket=LOCKED, Key=key)["VersionId"]
        with ApiClient(gateway, create_api_key(gateway)) as api:
            assert api.post(f"/sites/{LOCKED}/artifacts/b1/pin").json()["pinned"] is True
            record = anyio.run(_record_of, memory, LOCKED, key, version)
            assert record == LockRecord(key, version, ObjectLock(legal_hold=True))
            assert s3.get_object_legal_hold(Bucket=LOCKED, Key=key)["LegalHold"]["Status"] == "ON"
            assert api.post(f"/sites/{LOCKED}/artifacts/b1/unpin").json()["pinned"] is False
            assert anyio.run(_record_of, memory, LOCKED, key, version) is None
        s3.delete_object(Bucket=LOCKED, Key=key, VersionId=version)


def test_migrate_carries_the_records_and_reindex_there_says_what_it_could_not_keep(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``migrate`` copies the reserved area, lock records included; it copies only the latest
    objects under new version ids into buckets that keep no versions, so reindex there
    removes the records as stale and reports that object lock was not restored."""
    for variable in ("PWG_BACKEND", "PWG_CATALOG_URL", "PWG_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    root, other = tmp_path / "storage", tmp_path / "other"
    monkeypatch.setattr(
        "commands.serve.open_backend", lambda *_, **__: FilesystemBackend(root, fsync=False)
    )
    with in_process_gateway(tmp_path / "first") as first:
        _populate(make_s3_client(first))
    assert (
        main(["migrate", "--no-progress", "--from", f"file://{root}", "--to", f"file://{other}"])
        == 0
    )
    copied = anyio.run(_stored_names, FilesystemBackend(other, fsync=False), LOCKED)
    assert len(copied) == 4
    catalog = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    capsys.readouterr()
    assert (
        main(["reindex", "--no-progress", "--backend", f"file://{other}", "--catalog-url", catalog])
        == 0
    )
    out = capsys.readouterr().out
    assert "removed 4 stale lock record(s)" in out
    assert f"object lock: {LOCKED}: object lock not restored" in out
    assert anyio.run(_stored_names, FilesystemBackend(other, fsync=False), LOCKED) == []


async def _drop_site_record(backend: Backend, bucket: str) -> None:
    await backend.start()
    try:
        await backend.delete_object(CTX, bucket, SITE_STATE_KEY)
    finally:
        await backend.close()


def test_records_without_a_site_record_still_lock_their_versions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    memory = MemoryBackend()
    monkeypatch.setattr("commands.serve.open_backend", lambda *_, **__: memory)
    with in_process_gateway(tmp_path / "first") as first:
        v = _populate(make_s3_client(first))
    anyio.run(_drop_site_record, memory, LOCKED)
    (tmp_path / "second").mkdir()
    fresh = f"sqlite:///{tmp_path / 'second' / 'catalog.sqlite3'}"
    report = anyio.run(_reindex, memory, fresh, (PLAIN, "x", "v0"))
    assert report.locks.versions == 4
    assert any("enabled from its versions' lock records" in p for p in report.locks.problems)
    with in_process_gateway(tmp_path / "second") as second:
        s3 = make_s3_client(second)
        config = s3.get_object_lock_configuration(Bucket=LOCKED)["ObjectLockConfiguration"]
        assert config == {"ObjectLockEnabled": "Enabled"}
        delete = partial(s3.delete_object, Bucket=LOCKED, Key="a", VersionId=v["a1"])
        assert s3_error(delete)[:2] == DENIED
