"""The GCS translator in ``bucket`` mapping (a GCS bucket per gateway bucket): bodies too
large to send inline and multipart uploads are staged in the configured bucket, and GCS
composes only within one bucket, so they reach their own bucket by a rewrite, with the
object's metadata and the write's condition."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest

from core.context import RequestContext
from core.errors import S3Error
from tests.conformance.helpers import put, read
from tests.conformance.payload import MemoryPayload
from tests.support.emulators import Emulator
from translators.base import CompletedPart, WriteConditions, WriteMetadata
from translators.config import parse_backend_url
from translators.gcs.backend import GCSBackend

#: Needs a real server (see tests/conftest.py).
pytestmark = [pytest.mark.server, pytest.mark.anyio]
CTX = RequestContext(request_id="gcs-bucket-mapping", principal="tester")
MiB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def backend(fake_gcs: Emulator) -> AsyncIterator[GCSBackend]:
    spec = parse_backend_url(f"gcs://pw-{uuid.uuid4().hex[:12]}?create=true&mapping=bucket")
    made = GCSBackend.from_spec(spec, fake_gcs.env)
    await made.start()
    await made.create_bucket(CTX, f"site-{uuid.uuid4().hex[:8]}")
    yield made
    await made.close()


async def only_bucket(backend: GCSBackend) -> str:
    return (await backend.list_buckets(CTX))[0].name


async def test_a_staged_put_lands_in_its_own_bucket(backend: GCSBackend) -> None:
    bucket = await only_bucket(backend)
    body = bytes(range(256)) * (9 * MiB // 256)  # over the inline limit: staged
    metadata = WriteMetadata({"content-type": "application/gzip"}, {"build": "42"})
    written = await put(backend, bucket, "builds/1.tar.gz", body, metadata=metadata)
    assert written.etag == hashlib.md5(body).hexdigest()
    assert await read(backend, bucket, "builds/1.tar.gz") == body
    head = await backend.head_object(CTX, bucket, "builds/1.tar.gz")
    assert (head.etag, head.size, head.user_metadata) == (written.etag, len(body), {"build": "42"})
    assert head.headers["content-type"] == "application/gzip"
    native = backend.store.client.bucket(backend.namespace.container_for(bucket))
    assert native.get_blob("builds/1.tar.gz") is not None  # in the gateway bucket's own
    # The write's condition holds across the rewrite.
    with pytest.raises(S3Error) as refused:
        await put(
            backend, bucket, "builds/1.tar.gz", body, conditions=WriteConditions(if_none_match="*")
        )
    assert refused.value.code == "PreconditionFailed"
    assert await read(backend, bucket, "builds/1.tar.gz") == body


async def test_a_multipart_upload_completes_into_its_own_bucket(backend: GCSBackend) -> None:
    bucket = await only_bucket(backend)
    upload = await backend.create_multipart_upload(
        CTX, bucket, "big", WriteMetadata({"content-type": "text/plain"}, {}), None, None
    )
    chunks = [b"a" * (5 * MiB), b"b" * 1024]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        part = await backend.upload_part(
            CTX, bucket, "big", upload.upload_id, number, MemoryPayload(chunk)
        )
        parts.append(CompletedPart(number, part.etag))
    done = await backend.complete_multipart_upload(
        CTX, bucket, "big", upload.upload_id, parts, WriteConditions()
    )
    assert done.etag.endswith("-2")
    assert await read(backend, bucket, "big") == b"".join(chunks)
    head = await backend.head_object(CTX, bucket, "big")
    assert (head.etag, head.headers["content-type"]) == (done.etag, "text/plain")
    # No scratch object is left beside the staged parts.
    staging = backend.store.client.bucket(backend.namespace.container)
    leftovers = [b.name for b in staging.list_blobs(prefix="") if "/tmp/" in b.name]
    assert leftovers == []
