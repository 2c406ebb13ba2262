"""PutObject, GetObject (ranges, parts), HeadObject, DeleteObject, metadata, checksums."""

from __future__ import annotations

import hashlib

import pytest

from core import checksums
from core.errors import S3Error
from core.ranges import ByteRange, RangeSpec
from tests.conformance.conftest import CTX
from tests.conformance.helpers import put, read
from translators.base import Backend, GetOptions, WriteMetadata

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 40  # 10,240 bytes


async def test_put_get_head_round_trip(backend: Backend, bucket: str) -> None:
    info = await put(backend, bucket, "hello.txt", DATA)
    assert info.etag == hashlib.md5(DATA).hexdigest()
    assert info.size == len(DATA)
    assert await read(backend, bucket, "hello.txt") == DATA
    head = await backend.head_object(CTX, bucket, "hello.txt")
    assert (head.key, head.size, head.etag) == ("hello.txt", len(DATA), info.etag)
    assert head.parts == ()


async def test_large_object_streams_in_bounded_chunks(backend: Backend, bucket: str) -> None:
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)
    await put(backend, bucket, "big", data)
    result = await backend.get_object(CTX, bucket, "big", GetOptions())
    chunks = [chunk async for chunk in result.body]
    assert b"".join(chunks) == data
    assert len(chunks) > 1
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024


async def test_empty_object(backend: Backend, bucket: str) -> None:
    info = await put(backend, bucket, "empty", b"")
    assert info.etag == hashlib.md5(b"").hexdigest()
    assert await read(backend, bucket, "empty") == b""
    assert (await backend.head_object(CTX, bucket, "empty")).size == 0


async def test_metadata_round_trip(backend: Backend, bucket: str) -> None:
    metadata = WriteMetadata(
        headers={
            "content-type": "text/html; charset=utf-8",
            "content-encoding": "gzip",
            "content-disposition": 'attachment; filename="a b.txt"',
            "content-language": "fr-CA",
            "cache-control": "public, max-age=60",
            "expires": "Wed, 21 Oct 2026 07:28:00 GMT",
        },
        user_metadata={"author": "Zoë", "Mixed-Case": "Value  with  spaces", "empty": ""},
    )
    await put(backend, bucket, "page.html", DATA, metadata=metadata)
    for info in (
        await backend.head_object(CTX, bucket, "page.html"),
        (await backend.get_object(CTX, bucket, "page.html", GetOptions())).info,
    ):
        assert info.headers == metadata.headers
        assert info.user_metadata == metadata.user_metadata
        assert info.content_type == "text/html; charset=utf-8"


async def test_default_content_type(backend: Backend, bucket: str) -> None:
    await put(backend, bucket, "k", b"x")
    assert (await backend.head_object(CTX, bucket, "k")).content_type == "binary/octet-stream"


async def test_checksums_are_stored(backend: Backend, bucket: str) -> None:
    algorithms = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
    info = await put(backend, bucket, "sums", DATA, algorithms=algorithms)
    expected = {name: checksums.checksum(name, DATA) for name in algorithms}
    assert info.checksums == expected
    head = await backend.head_object(CTX, bucket, "sums")
    assert head.checksums == expected
    assert head.checksum_type == "FULL_OBJECT"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (RangeSpec(0, 0), ByteRange(0, 0)),
        (RangeSpec(10, 19), ByteRange(10, 19)),
        (RangeSpec(100, None), ByteRange(100, len(DATA) - 1)),
        (RangeSpec(None, 5), ByteRange(len(DATA) - 5, len(DATA) - 1)),
        (RangeSpec(None, len(DATA) + 50), ByteRange(0, len(DATA) - 1)),
        (RangeSpec(len(DATA) - 1, len(DATA) + 1000), ByteRange(len(DATA) - 1, len(DATA) - 1)),
    ],
)
async def test_ranges(backend: Backend, bucket: str, spec: RangeSpec, expected: ByteRange) -> None:
    await put(backend, bucket, "r", DATA)
    result = await backend.get_object(CTX, bucket, "r", GetOptions(range=spec))
    assert result.range == expected
    body = b"".join([chunk async for chunk in result.body])
    assert body == DATA[expected.start : expected.end + 1]
    assert result.info.size == len(DATA)


@pytest.mark.parametrize(
    ("size", "spec"),
    [
        (10, RangeSpec(10, None)),
        (10, RangeSpec(50, 60)),
        (10, RangeSpec(None, 0)),
        (0, RangeSpec(0, 0)),
        (0, RangeSpec(None, 5)),
    ],
)
async def test_unsatisfiable_ranges(
    backend: Backend, bucket: str, size: int, spec: RangeSpec
) -> None:
    await put(backend, bucket, "r", DATA[:size])
    with pytest.raises(S3Error) as caught:
        await backend.get_object(CTX, bucket, "r", GetOptions(range=spec))
    assert (caught.value.code, caught.value.status) == ("InvalidRange", 416)
    assert caught.value.headers["Content-Range"] == f"bytes */{size}"


async def test_part_number_of_a_simple_object(backend: Backend, bucket: str) -> None:
    await put(backend, bucket, "p", DATA)
    assert await read(backend, bucket, "p", part_number=1) == DATA
    with pytest.raises(S3Error) as caught:
        await backend.get_object(CTX, bucket, "p", GetOptions(part_number=2))
    assert (caught.value.code, caught.value.status) == ("InvalidPartNumber", 416)


async def test_reader_keeps_its_version_across_overwrite_and_delete(
    backend: Backend, bucket: str
) -> None:
    old = b"old" * 200_000
    await put(backend, bucket, "v", old)
    result = await backend.get_object(CTX, bucket, "v", GetOptions())
    first = await result.body.__aiter__().__anext__()
    await put(backend, bucket, "v", b"new")
    await backend.delete_object(CTX, bucket, "v")
    rest = [chunk async for chunk in result.body]
    assert first + b"".join(rest) == old


async def test_overwrite_replaces(backend: Backend, bucket: str) -> None:
    await put(backend, bucket, "k", b"one")
    info = await put(backend, bucket, "k", b"two!")
    assert await read(backend, bucket, "k") == b"two!"
    assert (await backend.head_object(CTX, bucket, "k")).etag == info.etag


async def test_body_closes_early(backend: Backend, bucket: str) -> None:
    await put(backend, bucket, "k", DATA * 200)
    for _ in range(50):
        result = await backend.get_object(CTX, bucket, "k", GetOptions())
        await result.body.aclose()
        assert [chunk async for chunk in result.body] == []


async def test_delete(backend: Backend, bucket: str) -> None:
    await put(backend, bucket, "k", b"x")
    await backend.delete_object(CTX, bucket, "k")
    await backend.delete_object(CTX, bucket, "k")
    with pytest.raises(S3Error) as caught:
        await backend.head_object(CTX, bucket, "k")
    assert caught.value.code == "NoSuchKey"
    with pytest.raises(S3Error) as caught:
        await backend.get_object(CTX, bucket, "k", GetOptions())
    assert caught.value.code == "NoSuchKey"
    assert caught.value.fields["Key"] == "k"
