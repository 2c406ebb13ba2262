"""``pagewright-gateway migrate``: file -> file (and file -> S3 through moto_server)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from commands.cli import main
from commands.migrate_run import MigrateOptions, MigrationError, NoProgress, Summary, migrate
from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.digest import HashingPayload
from tests.support.archives import Member, gzip, make_tar, site
from tests.support.emulators import running, start_moto
from tests.support.project import ROOT
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    ListQuery,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
)
from translators.config import parse_backend_url
from translators.filesystem.backend import FilesystemBackend
from translators.registry import create_backend

CTX = RequestContext(request_id="test-migrate", principal="tester")
MiB = 1024 * 1024

#: Keys S3 treats as distinct and opaque; none may be normalised on the way.
ODD_KEYS = ["a", "a/b", "a//b", "dir/", "../x", "./y", "sp ace/ünï cødé", "%2F", "deep/" * 20]


class _Body:
    """An in-memory ``ObjectBody`` in 64 KiB chunks."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), 64 * 1024):
            yield self._data[start : start + 64 * 1024]

    async def aclose(self) -> None:
        pass


def _bytes(size: int, seed: int) -> bytes:
    return hashlib.shake_256(f"{seed}".encode()).digest(size) if size else b""


async def _put(
    backend: Backend,
    bucket: str,
    key: str,
    data: bytes,
    algorithms: tuple[str, ...] = (),
    metadata: WriteMetadata | None = None,
) -> ObjectInfo:
    payload = HashingPayload(_Body(data), len(data), algorithms)
    return await backend.put_object(
        CTX, bucket, key, payload, metadata or WriteMetadata(), WriteConditions()
    )


async def _put_multipart(
    backend: Backend,
    bucket: str,
    key: str,
    parts: list[bytes],
    algorithm: ChecksumAlgorithm | None,
    checksum_type: ChecksumType | None,
    metadata: WriteMetadata | None = None,
) -> ObjectInfo:
    upload = await backend.create_multipart_upload(
        CTX, bucket, key, metadata or WriteMetadata(), algorithm, checksum_type
    )
    completed = []
    for number, data in enumerate(parts, start=1):
        payload = HashingPayload(_Body(data), len(data), (algorithm,) if algorithm else ())
        part = await backend.upload_part(CTX, bucket, key, upload.upload_id, number, payload)
        completed.append(CompletedPart(number, part.etag, dict(part.checksums)))
    return await backend.complete_multipart_upload(
        CTX, bucket, key, upload.upload_id, completed, WriteConditions()
    )


async def _read(backend: Backend, bucket: str, key: str) -> tuple[ObjectInfo, bytes]:
    result = await backend.get_object(CTX, bucket, key, GetOptions())
    chunks = [chunk async for chunk in result.body]
    return result.info, b"".join(chunks)


async def _keys(backend: Backend, bucket: str) -> list[str]:
    page = await backend.list_objects(CTX, bucket, ListQuery())
    return [info.key for info in page.objects]


async def _opened(root: Path, **options: Any) -> FilesystemBackend:
    backend = FilesystemBackend(root, fsync=False, **options)
    await backend.start()
    return backend


def _with(root: Path, work: Callable[[FilesystemBackend], Any], **options: Any) -> Any:
    """Run ``work(backend)`` on a started filesystem backend at ``root``, then close it."""

    async def go() -> Any:
        backend = await _opened(root, **options)
        try:
            return await work(backend)
        finally:
            await backend.close()

    return asyncio.run(go())


def _snapshot(root: Path) -> dict[str, str]:
    """Every stored file's SHA256 (SQLite's transient -wal/-shm files aside)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.endswith(("-wal", "-shm"))
    }


def _describe(info: ObjectInfo) -> tuple[Any, ...]:
    """What a copy must preserve (the time aside)."""
    return (
        info.key,
        info.size,
        info.etag,
        info.headers,
        info.user_metadata,
        info.checksums,
        info.checksum_type,
        [(p.size, p.etag, p.checksums) for p in info.parts],
    )


async def _contents(backend: Backend) -> dict[tuple[str, str], tuple[tuple[Any, ...], bytes]]:
    found = {}
    for bucket in await backend.list_buckets(CTX):
        for key in await _keys(backend, bucket.name):
            info, data = await _read(backend, bucket.name, key)
            found[(bucket.name, key)] = (_describe(info), data)
    return found


def _contents_of(root: Path) -> dict[tuple[str, str], tuple[tuple[Any, ...], bytes]]:
    result: dict[tuple[str, str], tuple[tuple[Any, ...], bytes]] = _with(root, _contents)
    return result


META = WriteMetadata(
    headers={
        "content-type": "text/html; charset=utf-8",
        "cache-control": "max-age=60",
        "content-disposition": 'attachment; filename="x.html"',
    },
    user_metadata={"build": "42", "author": "ci"},
)


async def _populate(backend: Backend) -> None:
    """Two sites: odd keys, metadata, every checksum algorithm, multipart objects."""
    await backend.create_bucket(CTX, "site-one")
    await backend.create_bucket(CTX, "site.two")
    for seed, key in enumerate(ODD_KEYS):
        await _put(backend, "site-one", key, _bytes(100 + seed, seed), ("CRC32",), META)
    await _put(backend, "site-one", "empty", b"")
    for seed, algorithm in enumerate(checksums.WIDTH, start=100):
        await _put(backend, "site.two", f"sum/{algorithm}", _bytes(70_000, seed), (algorithm,))
    await _put(backend, "site.two", "big.bin", _bytes(3 * MiB + 5, 7), ("SHA256",), META)
    parts = [_bytes(300_000, 20), _bytes(300_000, 21), _bytes(1234, 22)]
    await _put_multipart(backend, "site.two", "mp/composite", parts, "CRC32C", "COMPOSITE", META)
    await _put_multipart(backend, "site.two", "mp/full", parts, "CRC64NVME", "FULL_OBJECT")
    await _put_multipart(backend, "site.two", "mp/plain", parts[:2], None, None)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    _with(root, _populate, min_part_size=1)
    return root


def _run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["migrate", "--no-progress", *args])
    out, err = capsys.readouterr()
    return status, out + err


def _migrate(
    source: Path, target: Path, target_options: dict[str, Any] | None = None, **options: Any
) -> Summary:
    async def go() -> Summary:
        src = await _opened(source)
        dst = await _opened(target, **(target_options or {}))
        try:
            return await migrate(src, dst, MigrateOptions(**options), NoProgress())
        finally:
            await src.close()
            await dst.close()

    return asyncio.run(go())


def test_copies_every_bucket_with_keys_metadata_checksums_and_parts(
    source: Path, tmp_path: Path
) -> None:
    before = _snapshot(source)
    expected = _contents_of(source)
    target = tmp_path / "target"

    summary = _migrate(source, target, {"min_part_size": 1})

    assert (summary.copied, summary.skipped, summary.failures) == (len(expected), 0, [])
    assert summary.buckets == ["site-one", "site.two"]
    assert summary.bytes_copied == sum(len(data) for _, data in expected.values())
    assert summary.flattened == []
    # Same keys, bytes, ETags (multipart "-N" included), headers, metadata, checksums, parts.
    assert _contents_of(target) == expected
    assert _snapshot(source) == before

    # A second run finds everything already there, and changes nothing.
    target_before = _snapshot(target)
    again = _migrate(source, target, {"min_part_size": 1})
    assert (again.copied, again.skipped, again.failed) == (0, len(expected), 0)
    assert _snapshot(target) == target_before
    assert _snapshot(source) == before


def test_command_line_summary(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(source)
    total = len(_contents_of(source))
    target = f"file://{tmp_path / 'target'}"
    status, output = _run_cli(capsys, "--from", f"file://{source}", "--to", target)

    assert status == 0, output
    assert f"buckets: 2  copied: {total}  skipped: 0  failed: 0  bytes: " in output
    assert "duration: " in output
    # The parts of the source (below S3's 5 MiB) are refused by the target.
    assert "3 multipart objects were stored as single objects" in output
    assert _snapshot(source) == before

    # Without a state file, a flattened object is recognised again only by a full-object
    # checksum (mp/full); the others are copied again. With --state nothing is.
    status, output = _run_cli(capsys, "--from", f"file://{source}", "--to", target)
    assert f"copied: 2  skipped: {total - 2}  failed: 0" in output
    state = str(tmp_path / "state.json")
    _run_cli(capsys, "--from", f"file://{source}", "--to", target, "--state", state)
    status, output = _run_cli(
        capsys, "--from", f"file://{source}", "--to", target, "--state", state
    )
    assert f"copied: 0  skipped: {total}  failed: 0" in output
    assert _snapshot(source) == before


def test_multipart_objects_become_single_objects_when_the_target_refuses_their_parts(
    source: Path, tmp_path: Path
) -> None:
    """The source's parts are below 5 MiB, which the target (S3's rule) refuses: each such
    object is copied as one, with the MD5 as ETag and full-object checksums."""
    target = tmp_path / "target"
    summary = _migrate(source, target, bucket="site.two")
    assert summary.failures == []
    assert sorted(key for _, key in summary.flattened) == ["mp/composite", "mp/full", "mp/plain"]

    copied = _contents_of(target)
    for key, algorithm in (("mp/composite", "CRC32C"), ("mp/full", "CRC64NVME")):
        (_, size, etag, _, _, sums, kind, parts), data = copied[("site.two", key)]
        assert etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert sums == {algorithm: checksums.checksum(algorithm, data)}
        assert kind == "FULL_OBJECT"
        assert parts == []
        assert size == len(data) == 601_234
    # FULL_OBJECT CRCs describe the bytes, whatever the layout: unchanged.
    original = _contents_of(source)[("site.two", "mp/full")][0]
    assert copied[("site.two", "mp/full")][0][5] == original[5]
    assert copied[("site.two", "mp/composite")][0][3] == META.headers


def test_flatten_multipart_option(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    summary = _migrate(
        source, target, {"min_part_size": 1}, bucket="site.two", flatten_multipart=True
    )
    assert summary.failures == []
    assert len(summary.flattened) == 3
    assert "-" not in _contents_of(target)[("site.two", "mp/plain")][0][2]


def test_bucket_option_copies_one_bucket(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    status, output = _run_cli(
        capsys, "--from", f"file://{source}", "--to", f"file://{target}", "--bucket", "site-one"
    )
    assert status == 0, output
    copied = _contents_of(target)
    assert {bucket for bucket, _ in copied} == {"site-one"}
    assert sorted(key for _, key in copied) == sorted([*ODD_KEYS, "empty"])

    status, output = _run_cli(
        capsys, "--from", f"file://{source}", "--to", f"file://{target}", "--bucket", "nope"
    )
    assert status == 2
    assert "source bucket 'nope'" in output


def test_dry_run_lists_and_changes_nothing(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    _with(target, lambda backend: backend.create_bucket(CTX, "site-one"))
    # One object already there: the dry run must not list it.
    _with(
        target,
        lambda backend: _put(backend, "site-one", "a", _bytes(100, 0), ("CRC32",), META),
    )
    before_source, before_target = _snapshot(source), _snapshot(target)
    state = tmp_path / "state.json"

    status, output = _run_cli(
        capsys,
        "--from",
        f"file://{source}",
        "--to",
        f"file://{target}",
        "--dry-run",
        "--state",
        str(state),
    )

    assert status == 0, output
    total = len(ODD_KEYS) + 1 + 5 + 1 + 3
    assert f"dry run: {total - 1} objects" in output
    assert "1 already there" in output
    assert "would copy site-one/a (" not in output
    assert "would copy site-one/a//b (" in output
    assert "would copy site.two/mp/composite (601234 bytes)" in output
    assert _snapshot(source) == before_source
    assert _snapshot(target) == before_target
    assert not state.exists()
    assert _with(target, lambda backend: backend.list_buckets(CTX))[0].name == "site-one"


def test_resume_after_a_limited_run_copies_only_the_rest(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    state = tmp_path / "state.json"
    total = len(_contents_of(source))

    first = _migrate(source, target, state_file=state, limit=4, concurrency=1)
    assert (first.copied, first.stopped_at_limit) == (4, True)
    recorded = json.loads(state.read_text())["buckets"]
    assert sum(len(keys) for keys in recorded.values()) == 4

    second = _migrate(source, target, {"min_part_size": 1}, state_file=state)
    assert (second.copied, second.skipped, second.failed) == (total - 4, 4, 0)
    assert _contents_of(target) == _contents_of(source)
    recorded = json.loads(state.read_text())["buckets"]
    assert sum(len(keys) for keys in recorded.values()) == total


class _Crash(Exception):
    pass


class _CrashAfter(NoProgress):
    """Progress that makes the run fail after ``count`` objects, like a crash mid-way."""

    def __init__(self, count: int) -> None:
        self.count = count

    def finished_object(self) -> None:
        self.count -= 1
        if self.count == 0:
            raise _Crash


def test_interrupted_run_saves_its_state_and_the_rerun_copies_the_rest(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    state = tmp_path / "state.json"
    total = len(_contents_of(source))

    async def crash() -> None:
        src, dst = await _opened(source), await _opened(target, min_part_size=1)
        try:
            options = MigrateOptions(state_file=state, concurrency=2)
            await migrate(src, dst, options, _CrashAfter(6))
        finally:
            await src.close()
            await dst.close()

    with pytest.raises(BaseExceptionGroup) as crashed:
        asyncio.run(crash())
    assert crashed.group_contains(_Crash)
    done = sum(len(keys) for keys in json.loads(state.read_text())["buckets"].values())
    assert 5 <= done < total
    # The target holds only complete objects: writes are atomic.
    partial = _contents_of(target)
    source_contents = _contents_of(source)
    assert all(source_contents[name] == value for name, value in partial.items())

    rerun = _migrate(source, target, {"min_part_size": 1}, state_file=state)
    assert rerun.failed == 0
    assert rerun.skipped >= done
    assert rerun.copied == total - rerun.skipped
    assert _contents_of(target) == source_contents


def test_rerun_without_state_recopies_missing_and_changed_objects(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    total = len(_contents_of(source))
    assert _migrate(source, target, {"min_part_size": 1}).copied == total

    async def damage(backend: Backend) -> None:
        await backend.delete_object(CTX, "site-one", "a//b")
        await backend.delete_object(CTX, "site.two", "mp/composite")
        # Same size, other bytes: only the ETag and checksum tell.
        await _put(backend, "site.two", "sum/SHA1", _bytes(70_000, 999), ("SHA1",))
        # Same bytes, other metadata: recopied too.
        await _put(backend, "site-one", "a", _bytes(100, 0), ("CRC32",))

    _with(target, damage)
    summary = _migrate(source, target, {"min_part_size": 1})
    assert (summary.copied, summary.skipped, summary.failed) == (4, total - 4, 0)
    assert _contents_of(target) == _contents_of(source)


def test_state_file_of_another_migration_is_refused(source: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "source": "file:///elsewhere", "buckets": {}}))
    with pytest.raises(MigrationError, match="belongs to a migration"):
        _migrate(source, tmp_path / "t", state_file=state, source_label="file:///here")


ARTIFACT = gzip(make_tar(site([Member("page.html", _bytes(40_000, 5))])))


def _corrupted_source(tmp_path: Path) -> Path:
    """A source bucket ``rot`` with an artifact whose blob file has one flipped byte (its
    stored MD5 and SHA256 are the original ones) and a healthy object ``fine``."""
    source = tmp_path / "source"

    async def populate(backend: Backend) -> None:
        await backend.create_bucket(CTX, "rot")
        await _put(backend, "rot", "builds/7.tar.gz", ARTIFACT, ("SHA256",))
        await _put(backend, "rot", "fine", _bytes(1000, 2), ("SHA256",))

    _with(source, populate)
    (blob,) = [
        p for p in (source / "blobs").rglob("*") if p.is_file() and p.read_bytes() == ARTIFACT
    ]
    damaged = bytearray(blob.read_bytes())
    damaged[1000] ^= 0x01
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(damaged))
    return source


def test_a_corrupted_artifact_is_reported_and_never_readable_at_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _corrupted_source(tmp_path)
    target = tmp_path / "target"
    older = gzip(make_tar(site([Member("old.html", b"an older build")])))

    async def previous_copy(backend: Backend) -> None:
        await backend.create_bucket(CTX, "rot")
        await _put(backend, "rot", "builds/7.tar.gz", older, ("SHA256",))

    _with(target, previous_copy)
    status, output = _run_cli(capsys, "--from", f"file://{source}", "--to", f"file://{target}")
    assert status == 1
    assert "failed: 1" in output
    assert "FAILED rot/builds/7.tar.gz: BadDigest: " in output
    assert "differs from source ETag" in output
    # The corrupt bytes never became an object at the target; the earlier copy is intact,
    # so the target's verify has nothing healthy-looking to vouch for.
    copied = _contents_of(target)
    assert copied[("rot", "builds/7.tar.gz")][1] == older
    assert copied[("rot", "fine")][1] == _bytes(1000, 2)
    assert len(copied) == 2


@pytest.mark.server
def test_a_corrupted_artifact_never_reaches_an_s3_target(tmp_path: Path) -> None:
    _require_s3_translator()
    source = _corrupted_source(tmp_path)
    with running(start_moto, tmp_path) as moto:
        client = boto3.client(
            "s3",
            endpoint_url=moto.endpoint,
            aws_access_key_id=moto.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=moto.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="migrate-target")

        async def go() -> Summary:
            src = await _opened(source)
            dst = create_backend(
                parse_backend_url("s3://migrate-target/gw"), {**os.environ, **moto.env}
            )
            await dst.start()
            try:
                return await migrate(src, dst, MigrateOptions(), NoProgress())
            finally:
                await src.close()
                await dst.close()

        summary = asyncio.run(go())
        assert [(f.bucket, f.key) for f in summary.failures] == [("rot", "builds/7.tar.gz")]
        assert summary.failures[0].reason.startswith("BadDigest: ")
        listed = client.list_objects_v2(Bucket="migrate-target", Prefix="gw/rot/")
        assert [o["Key"] for o in listed.get("Contents", [])] == ["gw/rot/fine"]
        uploads = client.list_multipart_uploads(Bucket="migrate-target")
        assert uploads.get("Uploads", []) == []


def test_same_source_and_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path / 'one'}"
    status, output = _run_cli(capsys, "--from", url, "--to", url)
    assert status == 2
    assert "the same" in output


# file -> S3 (moto_server), through the S3 translator once it is registered.


def _require_s3_translator() -> None:
    if not (ROOT / "translators" / "s3" / "backend.py").exists():
        message = "translators/s3/backend.py has not landed yet"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.server
def test_file_to_s3_through_moto(source: Path, tmp_path: Path) -> None:
    _require_s3_translator()
    with running(start_moto, tmp_path) as moto:
        client = boto3.client(
            "s3",
            endpoint_url=moto.endpoint,
            aws_access_key_id=moto.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=moto.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="migrate-target")
        spec = parse_backend_url("s3://migrate-target/gateway")
        # Parts of S3's minimum size: this one keeps its layout on S3 too.
        big_parts = [_bytes(5 * MiB, 30), _bytes(1024, 31)]
        _with(
            source,
            lambda backend: _put_multipart(
                backend, "site.two", "mp/large", big_parts, "SHA256", "COMPOSITE", META
            ),
        )
        expected = _contents_of(source)

        async def go(state: Path) -> tuple[Summary, dict[Any, Any]]:
            src = await _opened(source)
            dst = create_backend(spec, {**os.environ, **moto.env})
            await dst.start()
            try:
                options = MigrateOptions(state_file=state)
                summary = await migrate(src, dst, options, NoProgress())
                return summary, await _contents(dst)
            finally:
                await src.close()
                await dst.close()

        summary, copied = asyncio.run(go(tmp_path / "state.json"))
        assert summary.failures == []
        assert summary.copied == len(expected)
        assert {name: data for name, (_, data) in copied.items()} == {
            name: data for name, (_, data) in expected.items()
        }
        flattened = {key for _, key in summary.flattened}
        # moto refuses parts below 5 MiB, like S3: the small-part objects become single ones.
        assert flattened == {"mp/composite", "mp/full", "mp/plain"}
        assert copied[("site.two", "mp/large")][0] == expected[("site.two", "mp/large")][0]
        for name, (info, _) in expected.items():
            got = copied[name][0]
            assert got[:2] == info[:2]  # key, size
            assert got[3:5] == info[3:5]  # headers, user metadata
            if name[1] not in flattened:
                assert got[2] == info[2]  # ETag
                assert got[5] == info[5]  # checksums

        # The objects are really in the backend bucket, under the root prefix.
        listed = client.list_objects_v2(Bucket="migrate-target", Prefix="gateway/site-one/")
        assert listed["KeyCount"] == len(ODD_KEYS) + 1

        # A rerun with a fresh state file finds every object already there, but for the
        # flattened ones without a full-object checksum (mp/full has a CRC64NVME).
        again, _ = asyncio.run(go(tmp_path / "state-2.json"))
        assert (again.copied, again.skipped, again.failed) == (2, len(expected) - 2, 0)
        # With the first run's state file, nothing is copied again.
        resumed, _ = asyncio.run(go(tmp_path / "state.json"))
        assert (resumed.copied, resumed.skipped, resumed.failed) == (0, len(expected), 0)
