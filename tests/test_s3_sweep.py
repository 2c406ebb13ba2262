"""The S3 translator's sweep beyond the conformance suite (tests/conformance/test_durability):
a native upload counts as last written when its newest part was, and the notes of a gateway
bucket whose backend bucket is gone (``bucket`` mapping) are swept too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from core.context import RequestContext
from tests.conformance.helpers import read
from tests.conformance.payload import MemoryPayload
from tests.support.emulators import Emulator, running, start_moto
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


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running(start_moto, tmp_path_factory.mktemp("moto")) as emulator:
        yield emulator


@pytest.fixture
async def backend(moto: Emulator) -> AsyncIterator[S3Backend]:
    spec = BackendSpec(
        "s3",
        "pw-sweep",
        mapping="bucket",
        container_prefix="pw-sweep-",
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
