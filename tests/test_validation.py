"""policy.validation over a real FilesystemBackend (and policy.verify): nothing invalid is
ever stored, artifacts carry a SHA256, corrupt blobs fail reads and are reported."""

from __future__ import annotations

import inspect
import random
import tarfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from core import checksums
from core.context import RequestContext
from core.errors import S3Error
from core.ranges import RangeSpec
from core.reserved import STAGING_PREFIX
from core.streams import ObjectBody, PayloadDigest
from policy.catalog import SqlCatalog
from policy.catalog_backend import object_record
from policy.model import SitePolicy
from policy.validation import ValidationBackend
from policy.validation_streams import CorruptArtifactError
from policy.verify import VerifySummary, verify_artifacts
from tests.conformance.payload import MemoryPayload
from tests.support.archives import Member, gzip, make_tar, site, zstd
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    ListQuery,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)
from translators.filesystem.backend import FilesystemBackend

CTX = RequestContext(request_id="test", principal="tester")
BUCKET = "site-one"
KEY = "builds/42.tar.gz"
POLICY = SitePolicy(required_member="index.html", max_members=50)
GOOD = gzip(make_tar(site()))
GOOD_V2 = gzip(make_tar(site([Member("v2.txt", b"second build")])))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def inner(tmp_path: Path) -> AsyncIterator[FilesystemBackend]:
    backend = FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False)
    await backend.start()
    await backend.create_bucket(CTX, BUCKET)
    yield backend
    await backend.close()


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[SqlCatalog]:
    sql = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    await sql.start()
    yield sql
    await sql.close()


def wrap(
    inner: Backend, policy: SitePolicy = POLICY, catalog: SqlCatalog | None = None
) -> ValidationBackend:
    async def policies(site_id: str) -> SitePolicy:
        assert site_id == BUCKET
        return policy

    return ValidationBackend(inner, policies, catalog)


async def put(backend: Backend, key: str, data: bytes, chunk: int = 1000) -> None:
    await backend.put_object(
        CTX, BUCKET, key, MemoryPayload(data, chunk_size=chunk), WriteMetadata(), WriteConditions()
    )


async def read(backend: Backend, key: str, options: GetOptions | None = None) -> bytes:
    result = await backend.get_object(CTX, BUCKET, key, options or GetOptions())
    return b"".join([chunk async for chunk in result.body])


async def drain(body: ObjectBody, into: list[bytes]) -> None:
    async for chunk in body:
        into.append(chunk)


def blob_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "storage" / "blobs").glob("*/*") if p.is_file())


def temp_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "storage" / "tmp").iterdir())


MALICIOUS = {
    "truncated-gzip": (GOOD[:-9], "InvalidArchive"),
    "flipped-crc": (GOOD[:-8] + bytes([GOOD[-8] ^ 1]) + GOOD[-7:], "InvalidArchive"),
    "dotdot": (gzip(make_tar(site([Member("../evil", b"x")]))), "UnsafeArchivePath"),
    "absolute": (gzip(make_tar(site([Member("/etc/x", b"x")]))), "UnsafeArchivePath"),
    "symlink-escape": (
        gzip(make_tar(site([Member("p", kind=tarfile.SYMTYPE, linkname="../../etc/passwd")]))),
        "UnsafeArchiveLink",
    ),
    "hardlink-escape": (
        gzip(make_tar(site([Member("h", kind=tarfile.LNKTYPE, linkname="../x")]))),
        "UnsafeArchiveLink",
    ),
    "char-device": (
        gzip(make_tar(site([Member("tty", kind=tarfile.CHRTYPE)]))),
        "ForbiddenArchiveMember",
    ),
    "too-many": (gzip(make_tar(Member(f"f{i}") for i in range(60))), "ArchiveTooManyMembers"),
    "bomb": (
        gzip(make_tar([Member("index.html", bytes(20 * 1024 * 1024))])),
        "ArchiveCompressionRatio",
    ),
    "no-index": (gzip(make_tar([Member("about.html", b"x")])), "MissingRequiredMember"),
}


@pytest.mark.anyio
async def test_valid_artifact_is_stored_with_its_sha256(inner: FilesystemBackend) -> None:
    backend = wrap(inner)
    await put(backend, KEY, GOOD)
    info = await backend.head_object(CTX, BUCKET, KEY)
    assert info.checksums["SHA256"] == checksums.checksum("SHA256", GOOD)
    assert info.checksums["CRC32"] == checksums.checksum("CRC32", GOOD)
    assert await read(backend, KEY) == GOOD


@pytest.mark.anyio
@pytest.mark.parametrize("case", sorted(MALICIOUS))
async def test_rejected_artifact_stores_nothing_and_keeps_the_previous_one(
    inner: FilesystemBackend, tmp_path: Path, case: str
) -> None:
    backend = wrap(inner)
    await put(backend, KEY, GOOD)
    before = await backend.head_object(CTX, BUCKET, KEY)
    blobs = blob_files(tmp_path)
    data, code = MALICIOUS[case]
    with pytest.raises(S3Error) as caught:
        await put(backend, KEY, data, chunk=777)
    assert caught.value.code == code
    assert caught.value.status == 400
    assert await backend.head_object(CTX, BUCKET, KEY) == before
    assert await read(backend, KEY) == GOOD
    assert blob_files(tmp_path) == blobs
    assert temp_files(tmp_path) == []
    # A fresh key gets nothing either.
    with pytest.raises(S3Error):
        await put(backend, "builds/43.tar.gz", data)
    with pytest.raises(S3Error) as missing:
        await backend.head_object(CTX, BUCKET, "builds/43.tar.gz")
    assert missing.value.code == "NoSuchKey"


class ClaimedSha256(MemoryPayload):
    """A payload whose client claimed a SHA256 (as VerifiedPayload reports one it checked)."""

    def __init__(self, data: bytes, claimed: bytes) -> None:
        super().__init__(data)
        self.claimed = claimed

    def digest(self) -> PayloadDigest:
        digest = super().digest()
        return replace(
            digest,
            checksums={**digest.checksums, "SHA256": checksums.checksum("SHA256", self.claimed)},
        )


@pytest.mark.anyio
async def test_client_sha256_must_match(inner: FilesystemBackend) -> None:
    backend = wrap(inner)
    with pytest.raises(S3Error) as caught:
        await backend.put_object(
            CTX, BUCKET, KEY, ClaimedSha256(GOOD, b"other"), WriteMetadata(), WriteConditions()
        )
    assert caught.value.code == "BadDigest"
    await backend.put_object(
        CTX, BUCKET, KEY, ClaimedSha256(GOOD, GOOD), WriteMetadata(), WriteConditions()
    )


@pytest.mark.anyio
async def test_other_keys_pass_and_validation_off_still_hashes(inner: FilesystemBackend) -> None:
    backend = wrap(inner)
    await put(backend, "notes.txt", b"../not an archive")
    await put(backend, "builds/readme.txt", b"not an artifact key")
    assert "SHA256" not in (await backend.head_object(CTX, BUCKET, "notes.txt")).checksums
    lenient = wrap(inner, SitePolicy(validate_archives=False))
    await put(lenient, KEY, b"garbage")
    info = await lenient.head_object(CTX, BUCKET, KEY)
    assert info.checksums["SHA256"] == checksums.checksum("SHA256", b"garbage")


@pytest.mark.anyio
async def test_staging_area_is_reserved(inner: FilesystemBackend) -> None:
    backend = wrap(inner)
    key = f"{STAGING_PREFIX}abc/builds/1.tar.gz"
    for attempt in (
        put(backend, key, GOOD),
        backend.head_object(CTX, BUCKET, key),
        backend.delete_object(CTX, BUCKET, key),
        backend.create_multipart_upload(CTX, BUCKET, key, WriteMetadata(), None, None),
    ):
        with pytest.raises(S3Error) as caught:
            await attempt
        assert caught.value.code == "InvalidObjectName"


async def multipart(backend: Backend, key: str, data: bytes, parts: int = 3) -> str:
    upload = await backend.create_multipart_upload(
        CTX, BUCKET, key, WriteMetadata({"content-type": "application/gzip"}), "CRC32", None
    )
    size = -(-len(data) // parts)
    for number in range(1, parts + 1):
        piece = data[(number - 1) * size : number * size]
        await backend.upload_part(CTX, BUCKET, key, upload.upload_id, number, MemoryPayload(piece))
    return upload.upload_id


async def complete(backend: Backend, key: str, upload_id: str) -> None:
    _, page = await backend.list_parts(CTX, BUCKET, key, upload_id, 0, 1000)
    parts = [CompletedPart(p.part_number, p.etag) for p in page.parts]
    await backend.complete_multipart_upload(CTX, BUCKET, key, upload_id, parts, WriteConditions())


async def staging_objects(inner: Backend) -> list[str]:
    page = await inner.list_objects(CTX, BUCKET, ListQuery(prefix=STAGING_PREFIX))
    return [o.key for o in page.objects]


@pytest.mark.anyio
async def test_multipart_artifact_valid(inner: FilesystemBackend, tmp_path: Path) -> None:
    backend = wrap(inner)
    data = zstd(make_tar(site([Member("big.bin", bytes(range(256)) * 2000)])))
    key = "builds/7.tar.zst"
    upload_id = await multipart(backend, key, data)
    plain = await backend.create_multipart_upload(
        CTX, BUCKET, "other.bin", WriteMetadata(), None, None
    )
    uploads = await backend.list_multipart_uploads(CTX, BUCKET, UploadsQuery())
    assert [(u.key, u.upload_id) for u in uploads.uploads] == [
        (key, upload_id),
        ("other.bin", plain.upload_id),
    ]
    assert uploads.next_key_marker is None
    first = await backend.list_multipart_uploads(CTX, BUCKET, UploadsQuery(max_uploads=1))
    assert [u.upload_id for u in first.uploads] == [upload_id]
    assert first.next_key_marker == key
    info, _ = await backend.list_parts(CTX, BUCKET, key, upload_id, 0, 10)
    assert (info.key, info.upload_id) == (key, upload_id)

    with pytest.raises(S3Error) as caught:  # nothing visible before completion
        await backend.head_object(CTX, BUCKET, key)
    assert caught.value.code == "NoSuchKey"
    await complete(backend, key, upload_id)
    stored = await backend.head_object(CTX, BUCKET, key)
    assert stored.checksums["SHA256"] == checksums.checksum("SHA256", data)
    assert stored.content_type == "application/gzip"
    assert await read(backend, key) == data
    assert await staging_objects(inner) == []
    listed = await backend.list_objects(CTX, BUCKET, ListQuery())
    assert [o.key for o in listed.objects] == [key]
    remaining = await backend.list_multipart_uploads(CTX, BUCKET, UploadsQuery())
    assert [u.key for u in remaining.uploads] == ["other.bin"]
    await backend.abort_multipart_upload(CTX, BUCKET, "other.bin", plain.upload_id)


@pytest.mark.anyio
async def test_multipart_artifact_invalid(inner: FilesystemBackend) -> None:
    backend = wrap(inner)
    await put(backend, KEY, GOOD)
    before = await backend.head_object(CTX, BUCKET, KEY)
    upload_id = await multipart(backend, KEY, MALICIOUS["dotdot"][0])
    with pytest.raises(S3Error) as caught:
        await complete(backend, KEY, upload_id)
    assert caught.value.code == "UnsafeArchivePath"
    assert await backend.head_object(CTX, BUCKET, KEY) == before
    assert await staging_objects(inner) == []
    assert (await inner.list_multipart_uploads(CTX, BUCKET, UploadsQuery())).uploads == []
    with pytest.raises(S3Error) as unknown:
        await backend.upload_part(CTX, BUCKET, KEY, "not-staged", 1, MemoryPayload(b"x"))
    assert unknown.value.code == "NoSuchUpload"


@pytest.mark.anyio
async def test_multipart_abort(inner: FilesystemBackend) -> None:
    backend = wrap(inner)
    upload_id = await multipart(backend, KEY, GOOD)
    await backend.abort_multipart_upload(CTX, BUCKET, KEY, upload_id)
    assert (await inner.list_multipart_uploads(CTX, BUCKET, UploadsQuery())).uploads == []


@pytest.mark.anyio
async def test_corrupt_blob_fails_the_read_and_is_reported(
    inner: FilesystemBackend, catalog: SqlCatalog, tmp_path: Path
) -> None:
    backend = wrap(inner, catalog=catalog)
    data = gzip(make_tar(site([Member("big.bin", random.Random(7).randbytes(300_000))])))
    await put(backend, KEY, data)
    info = await backend.head_object(CTX, BUCKET, KEY)
    await catalog.upsert(object_record(BUCKET, info, "tester"))
    (blob,) = [p for p in blob_files(tmp_path) if p.stat().st_size == len(data)]
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blob.write_bytes(bytes(raw))

    result = await backend.get_object(CTX, BUCKET, KEY, GetOptions())
    received: list[bytes] = []
    with pytest.raises(CorruptArtifactError) as caught:
        await drain(result.body, received)
    assert len(b"".join(received)) < len(data)  # the client never gets the full length
    assert caught.value.expected == checksums.decode("SHA256", info.checksums["SHA256"]).hex()
    record = await catalog.get(BUCKET, KEY)
    assert record is not None
    assert record.corrupt
    # Ranged reads are not re-hashed (they cannot be).
    assert len(await read(backend, KEY, GetOptions(range=RangeSpec(0, 9)))) == 10

    await catalog.update(BUCKET, KEY, corrupt=False)
    await put(backend, "builds/fine.tar.gz", GOOD)
    await put(inner, "builds/nohash.tar", make_tar(site()))
    summary = VerifySummary()
    results = {r.key: r async for r in verify_artifacts(inner, bucket=BUCKET, catalog=catalog)}
    for result_ in results.values():
        summary.add(result_)
    assert {k: r.status for k, r in results.items()} == {
        KEY: "corrupt",
        "builds/fine.tar.gz": "ok",
        "builds/nohash.tar": "missing-hash",
    }
    assert summary.corrupt_keys == [f"{BUCKET}/{KEY}"]
    record = await catalog.get(BUCKET, KEY)
    assert record is not None
    assert record.corrupt


def test_validation_backend_defines_every_backend_method() -> None:
    own = vars(ValidationBackend)
    assert "__getattr__" not in own
    for name, member in vars(Backend).items():
        if inspect.isfunction(member) and not name.startswith("_"):
            assert name in own, name
            assert inspect.iscoroutinefunction(own[name]), name
            assert list(inspect.signature(own[name]).parameters) == list(
                inspect.signature(member).parameters
            ), name
