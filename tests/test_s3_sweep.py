"""The S3 translator's sweep beyond the conformance suite (tests/conformance/test_durability):
a native upload counts as last written when its newest part was, the notes of a gateway
bucket whose backend bucket is gone (``bucket`` mapping) are swept too, and so are the
manifests of multipart objects deleted or overwritten since."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from core.context import RequestContext
from tests.conformance.helpers import read
from tests.conformance.payload import MemoryPayload
from tests.support.emulators import Emulator
from translators.base import CompletedPart, WriteConditions, WriteMetadata
from translators.config import BackendSpec
from translators.s3.backend import S3Backend
from translators.s3.codec import native_upload_hash

#: Needs a real server (see tests/conftest.py).
pytestmark = [pytest.mark.server, pytest.mark.anyio]
CTX = RequestContext(request_id="sweep", principal="tester")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def backend(moto: Emulator) -> AsyncIterator[S3Backend]:
    unique = uuid.uuid4().hex[:8]  # each test its own backend buckets
    spec = BackendSpec(
        "s3",
        f"pw-sweep-{unique}",
        mapping="bucket",
        container_prefix=f"pw-sweep{unique}-",
        options={"create": "true"},
    )
    made = S3Backend.from_spec(spec, moto.env)
    await made.start()
    yield made
    await made.close()


async def test_parts_keep_an_old_upload_alive_and_gone_buckets_lose_their_notes(
    backend: S3Backend,
) -> None:
    client: Any = backend.store.client
    namespace = backend.namespace
    await backend.create_bucket(CTX, "live")
    live = await backend.create_multipart_upload(
        CTX, "live", "pending", WriteMetadata(), None, None
    )
    part = await backend.upload_part(CTX, "live", "pending", live.upload_id, 1, MemoryPayload(b"l"))
    # A streamed PutObject that is still sending: initiated long ago, its last part recent.
    where = namespace.object("live", "streaming")
    native = client.create_multipart_upload(Bucket=where.container, Key=where.name)["UploadId"]
    # The note of an upload in a gateway bucket deleted since (its backend bucket is gone).
    gone = namespace.system("uploads", "gone", f"{native_upload_hash('x')}.00{'0' * 24}").name
    client.put_object(Bucket=namespace.container, Key=gone, Body=b"")
    await anyio.sleep(1.1)  # S3 times have one-second precision
    cutoff = datetime.now(UTC)
    await anyio.sleep(1.1)
    client.upload_part(
        Bucket=where.container, Key=where.name, UploadId=native, PartNumber=1, Body=b"s"
    )

    assert await backend.sweep(cutoff, limit=1000) == 1  # the note of the gone bucket
    listed = client.list_objects_v2(Bucket=namespace.container, Prefix=gone).get("Contents", [])
    assert listed == []
    uploads = client.list_multipart_uploads(Bucket=where.container, Prefix=where.name)
    assert [u["UploadId"] for u in uploads.get("Uploads", [])] == [native]

    assert await backend.sweep(datetime.now(UTC) + timedelta(minutes=1), limit=1000) == 1
    uploads = client.list_multipart_uploads(Bucket=where.container, Prefix=where.name)
    assert uploads.get("Uploads", []) == []
    await backend.complete_multipart_upload(
        CTX, "live", "pending", live.upload_id, [CompletedPart(1, part.etag)], WriteConditions()
    )
    assert await read(backend, "live", "pending") == b"l"


async def _multipart_object(backend: S3Backend, bucket: str, key: str, body: bytes) -> None:
    upload = await backend.create_multipart_upload(CTX, bucket, key, WriteMetadata(), None, None)
    part = await backend.upload_part(CTX, bucket, key, upload.upload_id, 1, MemoryPayload(body))
    await backend.complete_multipart_upload(
        CTX, bucket, key, upload.upload_id, [CompletedPart(1, part.etag)], WriteConditions()
    )


async def test_manifests_of_deleted_and_overwritten_objects_are_swept(
    backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest whose object is gone or names another manifest goes; the live object's
    manifest and one that does not say whose it is stay; a small per-sweep budget resumes
    where the last sweep stopped."""
    from translators.s3 import sweep as sweep_module

    client: Any = backend.store.client
    namespace = backend.namespace
    await backend.create_bucket(CTX, "site")
    for key in ("deleted", "overwritten", "live"):
        await _multipart_object(backend, "site", key, key.encode())
    await backend.delete_object(CTX, "site", "deleted")
    await backend.put_object(
        CTX, "site", "overwritten", MemoryPayload(b"plain"), WriteMetadata(), WriteConditions()
    )
    legacy = backend.store.manifest_location("0" * 32)
    client.put_object(Bucket=legacy.container, Key=legacy.name, Body=b'{"e":"x-1","s":1}')
    area = backend.store.manifest_location("").name

    def manifests() -> set[str]:
        listed = client.list_objects_v2(Bucket=namespace.container, Prefix=area)
        return {str(item["Key"]) for item in listed.get("Contents", [])}

    assert len(manifests()) == 4
    await anyio.sleep(1.1)  # S3 times have one-second precision
    cutoff = datetime.now(UTC)
    monkeypatch.setattr(sweep_module, "MANIFESTS_PER_SWEEP", 1)
    removed = [await backend.sweep(cutoff, limit=1000) for _ in range(5)]
    assert sum(removed) == 2
    assert max(removed) == 1  # one examined per sweep: the cursor moved on each time
    assert manifests() == {legacy.name, next(iter(manifests() - {legacy.name}))}
    assert len(manifests()) == 2
    assert await read(backend, "site", "live") == b"live"
    info = await backend.head_object(CTX, "site", "live")
    assert info.etag.endswith("-1")
    assert await read(backend, "site", "overwritten") == b"plain"
