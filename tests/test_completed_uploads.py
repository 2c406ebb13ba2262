"""A CompleteMultipartUpload repeated after it succeeded (policy.completed_uploads), on the
memory translator in-process; over HTTP in tests/test_api_multipart.py, and on real servers
(filesystem, S3 over moto_server) in tests/e2e/test_boto3_defaults.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.streams import BytesBody
from policy.completed_uploads import (
    RECORD_PREFIX,
    CompletedUpload,
    CompletedUploadsBackend,
    record_key,
)
from policy.housekeeping import sweep_leftovers
from translators.base import CompletedPart, GetOptions, ListQuery, WriteConditions, WriteMetadata
from translators.memory.backend import MemoryBackend

CTX = RequestContext(request_id="test", principal="tester")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _storage() -> MemoryBackend:
    storage = MemoryBackend(min_part_size=1)
    await storage.start()
    await storage.create_bucket(CTX, "site")
    return storage


async def _upload(
    backend: MemoryBackend | CompletedUploadsBackend,
) -> tuple[str, list[CompletedPart]]:
    upload = await backend.create_multipart_upload(CTX, "site", "k", WriteMetadata(), "CRC32", None)
    parts = []
    for number, body in ((1, b"first"), (2, b"second")):
        part = await backend.upload_part(
            CTX, "site", "k", upload.upload_id, number, HashingPayload(BytesBody(body), len(body))
        )
        parts.append(CompletedPart(number, part.etag))
    return upload.upload_id, parts


@pytest.mark.anyio
async def test_a_repeat_is_answered_as_the_first_completion_on_any_replica() -> None:
    storage = await _storage()
    first, second = (
        CompletedUploadsBackend(storage, storage),
        CompletedUploadsBackend(storage, storage),
    )
    upload_id, parts = await _upload(first)
    done = await first.complete_multipart_upload(
        CTX, "site", "k", upload_id, parts, WriteConditions()
    )
    # The object is overwritten meanwhile: the repeat still reports what the first reply did.
    await storage.delete_object(CTX, "site", "k")
    for replica in (first, second):
        again = await replica.complete_multipart_upload(
            CTX, "site", "k", upload_id, parts, WriteConditions()
        )
        assert (again.etag, again.size, again.checksums, again.checksum_type) == (
            done.etag,
            done.size,
            done.checksums,
            done.checksum_type,
        )
    with pytest.raises(S3Error) as excinfo:
        await storage.head_object(CTX, "site", "k")
    assert excinfo.value.code == "NoSuchKey"  # nothing was written again


@pytest.mark.anyio
async def test_other_parts_keys_or_ids_stay_no_such_upload() -> None:
    storage = await _storage()
    backend = CompletedUploadsBackend(storage, storage)
    upload_id, parts = await _upload(backend)
    await backend.complete_multipart_upload(CTX, "site", "k", upload_id, parts, WriteConditions())
    attempts = [
        ("k", upload_id, parts[:1]),
        ("k", upload_id, [CompletedPart(1, parts[0].etag), CompletedPart(2, parts[0].etag)]),
        ("k", upload_id, [CompletedPart(1, "not-hex"), parts[1]]),
        ("other", upload_id, parts),
        ("k", upload_id + "0", parts),
    ]
    for key, uid, named in attempts:
        with pytest.raises(S3Error) as excinfo:
            await backend.complete_multipart_upload(CTX, "site", key, uid, named, WriteConditions())
        assert excinfo.value.code == "NoSuchUpload", (key, uid, named)


@pytest.mark.anyio
async def test_the_record_expires() -> None:
    storage = await _storage()
    backend = CompletedUploadsBackend(storage, storage, record_seconds=60)
    upload_id, parts = await _upload(backend)
    await backend.complete_multipart_upload(CTX, "site", "k", upload_id, parts, WriteConditions())
    opened = await storage.get_object(CTX, "site", record_key(upload_id), GetOptions())
    data = b"".join([chunk async for chunk in opened.body])
    record = CompletedUpload.from_json(data)
    old = CompletedUpload(
        **{**record.__dict__, "completed_at": datetime.now(UTC) - timedelta(seconds=61)}
    ).to_json()
    await storage.put_object(
        CTX,
        "site",
        record_key(upload_id),
        HashingPayload(BytesBody(old), len(old)),
        WriteMetadata(),
        WriteConditions(),
    )
    with pytest.raises(S3Error) as excinfo:
        await backend.complete_multipart_upload(
            CTX, "site", "k", upload_id, parts, WriteConditions()
        )
    assert excinfo.value.code == "NoSuchUpload"


@pytest.mark.anyio
async def test_an_unreadable_record_is_ignored() -> None:
    storage = await _storage()
    backend = CompletedUploadsBackend(storage, storage)
    upload_id, parts = await _upload(backend)
    await backend.complete_multipart_upload(CTX, "site", "k", upload_id, parts, WriteConditions())
    junk = b"{not json"
    await storage.put_object(
        CTX,
        "site",
        record_key(upload_id),
        HashingPayload(BytesBody(junk), len(junk)),
        WriteMetadata(),
        WriteConditions(),
    )
    with pytest.raises(S3Error) as excinfo:
        await backend.complete_multipart_upload(
            CTX, "site", "k", upload_id, parts, WriteConditions()
        )
    assert excinfo.value.code == "NoSuchUpload"


@pytest.mark.anyio
async def test_records_live_in_the_staging_area_and_are_swept() -> None:
    storage = await _storage()
    backend = CompletedUploadsBackend(storage, storage)
    upload_id, parts = await _upload(backend)
    await backend.complete_multipart_upload(CTX, "site", "k", upload_id, parts, WriteConditions())
    listed = await storage.list_objects(CTX, "site", ListQuery(prefix=RECORD_PREFIX))
    assert [o.key for o in listed.objects] == [record_key(upload_id)]
    assert await sweep_leftovers(storage, older_than=timedelta(hours=6)) == 0
    assert await sweep_leftovers(storage, older_than=timedelta(seconds=-1)) == 1
    with pytest.raises(S3Error) as excinfo:
        await backend.complete_multipart_upload(
            CTX, "site", "k", upload_id, parts, WriteConditions()
        )
    assert excinfo.value.code == "NoSuchUpload"


@pytest.mark.anyio
async def test_a_repeat_of_an_encrypted_upload_names_its_encryption() -> None:
    """The record keeps how the object was encrypted, so the repeated Complete's answer
    carries the same SSE headers as the first (the handler writes them from it)."""
    import os

    from core.sse import EncryptionInfo, EncryptionRequest
    from policy.encryption import EncryptingBackend
    from policy.sse_crypto import Keyring

    storage = await _storage()
    sealed = EncryptingBackend(storage, Keyring([os.urandom(32)], ("site-key",)))
    backend = CompletedUploadsBackend(sealed, storage)
    metadata = WriteMetadata(encryption=EncryptionRequest("aws:kms", kms_key_id="site-key"))
    upload = await backend.create_multipart_upload(CTX, "site", "k", metadata, None, None)
    part = await backend.upload_part(
        CTX, "site", "k", upload.upload_id, 1, HashingPayload(BytesBody(b"sealed"), 6)
    )
    parts = [CompletedPart(1, part.etag)]
    done = await backend.complete_multipart_upload(
        CTX, "site", "k", upload.upload_id, parts, WriteConditions()
    )
    assert done.encryption == EncryptionInfo("aws:kms", kms_key_id="site-key")
    again = await backend.complete_multipart_upload(
        CTX, "site", "k", upload.upload_id, parts, WriteConditions()
    )
    assert (again.etag, again.encryption) == (done.etag, done.encryption)
    customer = EncryptionInfo("SSE-C", customer_key_md5="bWQ1IG9mIHRoZSBrZXk=")
    record = CompletedUpload("k", "u", "e-1", 1, {}, None, datetime.now(UTC), customer)
    assert CompletedUpload.from_json(record.to_json()) == record
