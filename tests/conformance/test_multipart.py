"""Multipart uploads: create, parts, list, complete (and its errors), abort, GET by part."""

from __future__ import annotations

import hashlib

import anyio
import pytest

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.errors import S3Error
from tests.conformance.conftest import CTX, Harness
from tests.conformance.helpers import read
from tests.conformance.payload import MemoryPayload
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    PartInfo,
    UploadInfo,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


async def start(
    backend: Backend,
    bucket: str,
    key: str = "mp",
    algorithm: ChecksumAlgorithm | None = None,
    kind: ChecksumType | None = None,
    metadata: WriteMetadata | None = None,
) -> UploadInfo:
    return await backend.create_multipart_upload(
        CTX, bucket, key, metadata or WriteMetadata(), algorithm, kind
    )


async def part(
    backend: Backend,
    bucket: str,
    upload: UploadInfo,
    number: int,
    data: bytes,
    algorithms: tuple[str, ...] = ("CRC32",),
) -> PartInfo:
    return await backend.upload_part(
        CTX,
        bucket,
        upload.key,
        upload.upload_id,
        number,
        MemoryPayload(data, algorithms=algorithms),
    )


async def complete(
    backend: Backend, bucket: str, upload: UploadInfo, parts: list[PartInfo] | list[CompletedPart]
) -> object:
    named = [
        p if isinstance(p, CompletedPart) else CompletedPart(p.part_number, p.etag) for p in parts
    ]
    return await backend.complete_multipart_upload(
        CTX, bucket, upload.key, upload.upload_id, named, WriteConditions()
    )


def expected_etag(*datas: bytes) -> str:
    joined = b"".join(hashlib.md5(d).digest() for d in datas)
    return f"{hashlib.md5(joined).hexdigest()}-{len(datas)}"


def block(seed: int, size: int) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


async def test_three_parts_out_of_order_with_exact_minimum(harness: Harness, bucket: str) -> None:
    backend, size = harness.backend, harness.min_part_size
    data = [block(1, size), block(2, size), block(3, 12345)]
    metadata = WriteMetadata({"content-type": "text/plain"}, {"origin": "multipart"})
    upload = await start(backend, bucket, metadata=metadata)
    parts = {n: await part(backend, bucket, upload, n, data[n - 1]) for n in (3, 1, 2)}
    assert parts[1].etag == hashlib.md5(data[0]).hexdigest()
    info = await complete(backend, bucket, upload, [parts[1], parts[2], parts[3]])
    whole = b"".join(data)
    head = await backend.head_object(CTX, bucket, "mp")
    assert head.etag == expected_etag(*data) == getattr(info, "etag", None)
    assert head.size == len(whole)
    assert head.headers == metadata.headers
    assert head.user_metadata == metadata.user_metadata
    assert [(p.part_number, p.size) for p in head.parts] == [(1, size), (2, size), (3, 12345)]
    assert await read(backend, bucket, "mp") == whole
    assert await read(backend, bucket, "mp", part_number=2) == data[1]
    assert await read(backend, bucket, "mp", part_number=3) == data[2]
    result = await backend.get_object(CTX, bucket, "mp", GetOptions(part_number=3))
    assert result.range is not None
    assert (result.range.start, result.range.end) == (2 * size, len(whole) - 1)
    await result.body.aclose()
    with pytest.raises(S3Error) as caught:
        await backend.get_object(CTX, bucket, "mp", GetOptions(part_number=4))
    assert caught.value.code == "InvalidPartNumber"
    uploads = await backend.list_multipart_uploads(CTX, bucket, UploadsQuery())
    assert uploads.uploads == []


@pytest.mark.parametrize("data", [b"", b"x"])
async def test_tiny_single_part_objects(backend: Backend, bucket: str, data: bytes) -> None:
    upload = await start(backend, bucket)
    only = await part(backend, bucket, upload, 1, data)
    await complete(backend, bucket, upload, [only])
    head = await backend.head_object(CTX, bucket, "mp")
    assert (head.size, head.etag) == (len(data), expected_etag(data))
    assert await read(backend, bucket, "mp") == data


async def test_reuploaded_part_replaces(backend: Backend, bucket: str) -> None:
    upload = await start(backend, bucket)
    await part(backend, bucket, upload, 1, b"first version")
    second = await part(backend, bucket, upload, 1, b"second")
    _, page = await backend.list_parts(CTX, bucket, "mp", upload.upload_id, 0, 100)
    assert [(p.part_number, p.etag, p.size) for p in page.parts] == [(1, second.etag, 6)]
    await complete(backend, bucket, upload, [second])
    assert await read(backend, bucket, "mp") == b"second"


async def test_etags_may_be_quoted(backend: Backend, bucket: str) -> None:
    upload = await start(backend, bucket)
    only = await part(backend, bucket, upload, 1, b"abc")
    await complete(backend, bucket, upload, [CompletedPart(1, f'"{only.etag}"')])
    assert await read(backend, bucket, "mp") == b"abc"


async def test_skipped_and_unused_parts(harness: Harness, bucket: str) -> None:
    backend, size = harness.backend, harness.min_part_size
    upload = await start(backend, bucket)
    one = await part(backend, bucket, upload, 1, block(1, size))
    await part(backend, bucket, upload, 2, b"unused")
    three = await part(backend, bucket, upload, 3, b"tail")
    await complete(backend, bucket, upload, [one, three])
    assert await read(backend, bucket, "mp") == block(1, size) + b"tail"
    if harness.stored_files is not None:
        assert len(harness.stored_files()) == 1


async def test_completion_errors(harness: Harness, bucket: str) -> None:
    backend = harness.backend
    upload = await start(backend, bucket)
    small = await part(backend, bucket, upload, 1, b"too small")
    last = await part(backend, bucket, upload, 2, b"last")

    cases: list[tuple[list[CompletedPart], str]] = [
        ([], "MalformedXML"),
        ([CompletedPart(2, last.etag), CompletedPart(1, small.etag)], "InvalidPartOrder"),
        ([CompletedPart(1, small.etag), CompletedPart(1, small.etag)], "InvalidPartOrder"),
        ([CompletedPart(1, "0" * 32)], "InvalidPart"),
        ([CompletedPart(5, small.etag)], "InvalidPart"),
        (
            [CompletedPart(1, small.etag, {"CRC32": checksums.checksum("CRC32", b"")})],
            "InvalidPart",
        ),
        ([CompletedPart(1, small.etag), CompletedPart(2, last.etag)], "EntityTooSmall"),
    ]
    for parts, code in cases:
        with pytest.raises(S3Error) as caught:
            await complete(backend, bucket, upload, parts)
        assert caught.value.code == code, parts
    with pytest.raises(S3Error) as caught:
        await complete(backend, bucket, upload, [small, last])
    assert caught.value.fields["ProposedSize"] == str(len(b"too small"))
    assert caught.value.fields["MinSizeAllowed"] == str(harness.min_part_size)
    # Failed completions leave the upload usable.
    matching = CompletedPart(1, small.etag, {"CRC32": small.checksums["CRC32"]})
    await complete(backend, bucket, upload, [matching])
    assert await read(backend, bucket, "mp") == b"too small"


async def test_abort(harness: Harness, bucket: str) -> None:
    backend = harness.backend
    upload = await start(backend, bucket)
    await part(backend, bucket, upload, 1, b"data")
    await backend.abort_multipart_upload(CTX, bucket, "mp", upload.upload_id)
    for operation in (
        backend.list_parts(CTX, bucket, "mp", upload.upload_id, 0, 10),
        backend.upload_part(CTX, bucket, "mp", upload.upload_id, 2, MemoryPayload(b"x")),
        backend.abort_multipart_upload(CTX, bucket, "mp", upload.upload_id),
    ):
        with pytest.raises(S3Error) as caught:
            await operation
        assert caught.value.code == "NoSuchUpload"
    if harness.stored_files is not None:
        assert harness.stored_files() == []


async def test_upload_belongs_to_its_key(backend: Backend, bucket: str) -> None:
    upload = await start(backend, bucket, key="one")
    with pytest.raises(S3Error) as caught:
        await backend.upload_part(CTX, bucket, "two", upload.upload_id, 1, MemoryPayload(b"x"))
    assert caught.value.code == "NoSuchUpload"


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        ("CRC32", "FULL_OBJECT"),
        ("CRC32C", "COMPOSITE"),
        ("SHA256", "COMPOSITE"),
        ("CRC64NVME", None),
    ],
)
async def test_object_checksum(
    harness: Harness, bucket: str, algorithm: ChecksumAlgorithm, kind: ChecksumType | None
) -> None:
    backend, size = harness.backend, harness.min_part_size
    data = [block(7, size), b"tail bytes"]
    upload = await start(backend, bucket, algorithm=algorithm, kind=kind)
    resolved = kind or checksums.default_type(algorithm)
    assert upload.checksum_algorithm == algorithm
    parts = [
        await part(backend, bucket, upload, n, d, (algorithm,))
        for n, d in ((1, data[0]), (2, data[1]))
    ]
    await complete(backend, bucket, upload, parts)
    head = await backend.head_object(CTX, bucket, "mp")
    if resolved == "FULL_OBJECT":
        expected = checksums.checksum(algorithm, b"".join(data))
    else:
        expected = checksums.composite(algorithm, [checksums.checksum(algorithm, d) for d in data])
    assert head.checksums == {algorithm: expected}
    assert head.checksum_type == resolved


async def test_list_uploads_paging(backend: Backend, bucket: str) -> None:
    made = []
    for key in ["b", "a", "c/1", "c/2", "a", "b"]:
        made.append(await start(backend, bucket, key=key))
    expected = sorted(
        ((u.key, u.upload_id) for u in made),
        key=lambda pair: (
            pair[0].encode(),
            made.index(next(u for u in made if u.upload_id == pair[1])),
        ),
    )
    seen: list[tuple[str, str]] = []
    query = UploadsQuery(max_uploads=2)
    while True:
        page = await backend.list_multipart_uploads(CTX, bucket, query)
        assert len(page.uploads) <= 2
        seen += [(u.key, u.upload_id) for u in page.uploads]
        if page.next_key_marker is None:
            break
        query = UploadsQuery(
            key_marker=page.next_key_marker,
            upload_id_marker=page.next_upload_id_marker or "",
            max_uploads=2,
        )
    assert seen == expected

    page = await backend.list_multipart_uploads(CTX, bucket, UploadsQuery(delimiter="/"))
    assert page.common_prefixes == ["c/"]
    assert [u.key for u in page.uploads] == ["a", "a", "b", "b"]
    page = await backend.list_multipart_uploads(CTX, bucket, UploadsQuery(key_marker="a"))
    assert [u.key for u in page.uploads] == ["b", "b", "c/1", "c/2"]
    page = await backend.list_multipart_uploads(CTX, bucket, UploadsQuery(prefix="c/"))
    assert [u.key for u in page.uploads] == ["c/1", "c/2"]


async def test_hundred_small_parts_complete(harness: Harness, bucket: str) -> None:
    """Completing more parts than one composition step takes (GCS composes 32 at a time)."""
    if harness.relaxed_parts is None:
        pytest.skip("this backend enforces S3's 5 MiB minimum part size natively")
    backend = await harness.relaxed_parts()
    await backend.create_bucket(CTX, bucket)
    upload = await start(backend, bucket)
    numbers = list(range(1, 101))
    listed = [
        await part(backend, bucket, upload, number, number.to_bytes(2, "big"), ())
        for number in numbers
    ]
    await complete(backend, bucket, upload, listed)
    data = b"".join(n.to_bytes(2, "big") for n in numbers)
    head = await backend.head_object(CTX, bucket, "mp")
    assert head.etag == expected_etag(*(n.to_bytes(2, "big") for n in numbers))
    assert len(head.parts) == 100
    assert await read(backend, bucket, "mp") == data
    assert await read(backend, bucket, "mp", part_number=99) == (99).to_bytes(2, "big")


async def test_many_parts(harness: Harness, bucket: str) -> None:
    """Many parts (``harness.many_parts``: S3's maximum, 10,000, where that is cheap) upload,
    list in pages, and abort cleanly."""
    backend = harness.backend
    upload = await start(backend, bucket)
    numbers = list(range(1, harness.many_parts + 1))

    async def send(numbers: list[int]) -> None:
        for number in numbers:
            await part(backend, bucket, upload, number, number.to_bytes(2, "big"), ())

    async with anyio.create_task_group() as group:
        for lane in range(32):
            group.start_soon(send, numbers[lane::32])

    listed: list[PartInfo] = []
    marker = 0
    while True:
        _, page = await backend.list_parts(CTX, bucket, "mp", upload.upload_id, marker, 1000)
        assert len(page.parts) <= 1000
        listed += page.parts
        if page.next_part_number_marker is None:
            break
        marker = page.next_part_number_marker
    assert [p.part_number for p in listed] == numbers
    await backend.abort_multipart_upload(CTX, bucket, "mp", upload.upload_id)
    if harness.stored_files is not None:
        assert harness.stored_files() == []
