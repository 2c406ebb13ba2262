"""Server-side encryption over every translator: the gateway's
:class:`policy.encryption.EncryptingBackend` around each one stores ciphertext (read back
through the bare translator) and reads back the plaintext, whole, by range and by part."""

from __future__ import annotations

import hashlib
import os

import pytest

from core.ranges import RangeSpec
from core.sse import CustomerKey, EncryptionRequest
from policy.encryption import EncryptingBackend
from policy.sse_crypto import CHUNK, Keyring, cipher_size
from tests.conformance.conftest import CTX, Harness
from tests.conformance.helpers import put, read
from tests.conformance.payload import MemoryPayload
from translators.base import CompletedPart, GetOptions, WriteMetadata

pytestmark = pytest.mark.anyio

KEYRING = Keyring([os.urandom(32)], ("site-key",))
CUSTOMER = CustomerKey(os.urandom(32), "")
CUSTOMER = CustomerKey(CUSTOMER.key, CustomerKey.md5_of(CUSTOMER.key))


def data_of(size: int) -> bytes:
    return (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]


@pytest.mark.parametrize("mode", ["AES256", "aws:kms", "SSE-C"])
async def test_encrypted_object(harness: Harness, bucket: str, mode: str) -> None:
    encrypted = EncryptingBackend(harness.backend, KEYRING)
    request = EncryptionRequest(mode, customer_key=CUSTOMER) if mode == "SSE-C" else None  # type: ignore[arg-type]
    request = request or EncryptionRequest(mode)  # type: ignore[arg-type]
    data = data_of(3 * CHUNK + 100)
    info = await put(encrypted, bucket, "obj", data, metadata=WriteMetadata(encryption=request))
    assert info.size == len(data)
    assert info.encryption is not None
    assert info.encryption.mode == mode
    raw = await read(harness.backend, bucket, "obj")
    assert len(raw) == cipher_size(len(data))
    assert data[:32] not in raw
    key = CUSTOMER if mode == "SSE-C" else None
    whole = await encrypted.get_object(CTX, bucket, "obj", GetOptions(customer_key=key))
    assert b"".join([c async for c in whole.body]) == data
    for first, last in [(0, 0), (CHUNK - 1, CHUNK), (2 * CHUNK + 5, 3 * CHUNK + 99)]:
        ranged = await encrypted.get_object(
            CTX, bucket, "obj", GetOptions(RangeSpec(first, last), customer_key=key)
        )
        assert b"".join([c async for c in ranged.body]) == data[first : last + 1]
    head = await encrypted.head_object(CTX, bucket, "obj")
    assert head.size == len(data)
    assert "pagewright-sse" not in head.user_metadata


async def test_encrypted_multipart(
    harness: Harness, bucket: str, request: pytest.FixtureRequest
) -> None:
    backend = await harness.relaxed_parts() if harness.relaxed_parts else harness.backend
    if backend is not harness.backend:
        await backend.create_bucket(CTX, bucket)
    encrypted = EncryptingBackend(backend, KEYRING)
    size = 5 * 1024 * 1024 if harness.relaxed_parts is None else CHUNK + 3
    parts = [data_of(size), data_of(size + 1)[::-1], data_of(100)]
    upload = await encrypted.create_multipart_upload(
        CTX, bucket, "mp", WriteMetadata(encryption=EncryptionRequest("AES256")), "CRC32", None
    )
    completed = []
    # Part numbers with gaps: each part's number is in its chunks' associated data (rclone
    # serve s3 streams parts into one file, in order, so it takes no gaps).
    gaps = request.node.callspec.params["harness"] != "s3-rclone"
    for number, data in zip((1, 3, 7) if gaps else (1, 2, 3), parts, strict=True):
        part = await encrypted.upload_part(
            CTX, bucket, "mp", upload.upload_id, number, MemoryPayload(data)
        )
        assert part.size == len(data)
        assert part.etag == hashlib.md5(data).hexdigest()
        completed.append(CompletedPart(number, part.etag))
    from translators.base import WriteConditions

    info = await encrypted.complete_multipart_upload(
        CTX, bucket, "mp", upload.upload_id, completed, WriteConditions()
    )
    whole = b"".join(parts)
    assert info.size == len(whole)
    raw = await read(backend, bucket, "mp")
    assert whole[:32] not in raw
    assert await read(encrypted, bucket, "mp") == whole
    edge = len(parts[0])
    for first, last in [(edge - 3, edge + 3), (edge + 10, len(whole) - 1)]:
        got = await read(encrypted, bucket, "mp", byte_range=RangeSpec(first, last))
        assert got == whole[first : last + 1]
    assert await read(encrypted, bucket, "mp", part_number=2) == parts[1]  # by position
    if backend is not harness.backend:
        await backend.delete_object(CTX, bucket, "mp")
