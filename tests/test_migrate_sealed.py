"""``migrate`` copies objects the gateway stored encrypted in their stored form: the target
decrypts to the same bytes under the same keys, with the same ETags and checksums, and a
multipart one keeps its part numbers (file -> file)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from commands.migrate_run import MigrateOptions, NoProgress, migrate
from core.sse import CustomerKey, EncryptionRequest
from policy.encryption import EncryptingBackend
from policy.sse_crypto import Keyring
from tests.conformance.payload import MemoryPayload
from tests.test_migrate import CTX, _bytes, _opened, _put
from translators.base import CompletedPart, GetOptions, WriteConditions, WriteMetadata

KEYRING = Keyring([os.urandom(32)], ("site-key",))
_RAW = os.urandom(32)
CUSTOMER = CustomerKey(_RAW, CustomerKey.md5_of(_RAW))


def test_encrypted_objects_migrate_in_their_stored_form(tmp_path: Path) -> None:
    single = _bytes(300_000, 1)
    parts = [_bytes(70_000, 2), _bytes(5, 3), _bytes(90_000, 4)]

    async def go() -> None:
        src = await _opened(tmp_path / "source", min_part_size=1)
        dst = await _opened(tmp_path / "target", min_part_size=1)
        try:
            sealed_src = EncryptingBackend(src, KEYRING)
            await src.create_bucket(CTX, "site")
            s3 = WriteMetadata(encryption=EncryptionRequest("AES256"))
            customer = WriteMetadata(encryption=EncryptionRequest("SSE-C", customer_key=CUSTOMER))
            await _put(sealed_src, "site", "sse-s3", single, ("CRC32",), s3)
            await _put(sealed_src, "site", "sse-c", single, ("SHA256",), customer)
            kms = WriteMetadata(encryption=EncryptionRequest("aws:kms"))
            upload = await sealed_src.create_multipart_upload(
                CTX, "site", "mp", kms, "CRC32", "FULL_OBJECT"
            )
            completed = []
            for number, data in zip((2, 5, 9), parts, strict=True):
                part = await sealed_src.upload_part(
                    CTX, "site", "mp", upload.upload_id, number, MemoryPayload(data)
                )
                completed.append(CompletedPart(number, part.etag, dict(part.checksums)))
            await sealed_src.complete_multipart_upload(
                CTX, "site", "mp", upload.upload_id, completed, WriteConditions()
            )
            summary = await migrate(src, dst, MigrateOptions(), NoProgress())
            assert summary.failed == 0
            sealed_dst = EncryptingBackend(dst, KEYRING)
            for key, data, options in [
                ("sse-s3", single, GetOptions()),
                ("sse-c", single, GetOptions(customer_key=CUSTOMER)),
                ("mp", b"".join(parts), GetOptions()),
            ]:
                before = await sealed_src.head_object(CTX, "site", key)
                after = await sealed_dst.head_object(CTX, "site", key)
                assert (after.size, after.etag, after.checksums, after.encryption) == (
                    before.size,
                    before.etag,
                    before.checksums,
                    before.encryption,
                )
                got = await sealed_dst.get_object(CTX, "site", key, options)
                assert b"".join([c async for c in got.body]) == data
        finally:
            await src.close()
            await dst.close()

    asyncio.run(go())
