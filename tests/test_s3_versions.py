"""The S3 translator's versioning beyond the conformance suite (tests/conformance/
test_versioning): in ``prefix`` mapping gateway buckets share one backend bucket, versioned
once any of them is, yet a never-versioned gateway bucket keeps no noncurrent versions and
its objects read as ``null``; the gateway's bookkeeping keeps no history there; the sweep
keeps the manifest a noncurrent version still names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from core.context import RequestContext
from tests.conformance.helpers import put, read
from tests.conformance.payload import MemoryPayload
from translators.base import CompletedPart, GetOptions, WriteConditions, WriteMetadata
from translators.config import BackendSpec
from translators.s3.backend import S3Backend
from translators.versioning import NULL_VERSION, VersionsQuery

#: Needs a real server (see tests/conftest.py).
pytestmark = [pytest.mark.server, pytest.mark.anyio]
CTX = RequestContext(request_id="versions", principal="tester")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def backend(moto: Any) -> AsyncIterator[S3Backend]:
    spec = BackendSpec(
        "s3", f"pw-ver-{uuid.uuid4().hex[:8]}", prefix="root", options={"create": "true"}
    )
    made = S3Backend.from_spec(spec, moto.env)
    await made.start()
    yield made
    await made.close()


def _backend_entries(backend: S3Backend, prefix: str) -> list[tuple[str, bool]]:
    """(name, is delete marker) of every backend entry under ``<root>/prefix``."""
    client: Any = backend.store.client
    listed = client.list_object_versions(
        Bucket=backend.namespace.container, Prefix=f"root/{prefix}"
    )
    return sorted(
        [(str(v["Key"]), False) for v in listed.get("Versions", [])]
        + [(str(m["Key"]), True) for m in listed.get("DeleteMarkers", [])]
    )


async def _multipart(backend: S3Backend, bucket: str, key: str, body: bytes) -> str | None:
    upload = await backend.create_multipart_upload(CTX, bucket, key, WriteMetadata(), None, None)
    part = await backend.upload_part(CTX, bucket, key, upload.upload_id, 1, MemoryPayload(body))
    done = await backend.complete_multipart_upload(
        CTX, bucket, key, upload.upload_id, [CompletedPart(1, part.etag)], WriteConditions()
    )
    return done.version_id


async def test_unversioned_bucket_in_a_versioned_backend_bucket(backend: S3Backend) -> None:
    await backend.create_bucket(CTX, "versioned")
    await backend.create_bucket(CTX, "plain")
    await backend.put_bucket_versioning(CTX, "versioned", "Enabled")  # the backend's too
    assert await backend.get_bucket_versioning(CTX, "plain") is None
    for body in (b"one", b"two", b"three"):
        info = await put(backend, "plain", "k", body)
        assert info.version_id is None
    await _multipart(backend, "plain", "k", b"parts")
    assert await read(backend, "plain", "k") == b"parts"
    assert (await backend.head_object(CTX, "plain", "k")).version_id is None
    assert _backend_entries(backend, "plain/") == [("root/plain/k", False)]
    page = await backend.list_versions(CTX, "plain", VersionsQuery())
    assert [(v.key, v.version_id) for v in page.versions] == [("k", NULL_VERSION)]

    await backend.delete_object(CTX, "plain", "k")
    assert _backend_entries(backend, "plain/") == []

    # Enabled later, the object written before reads as the null version.
    await put(backend, "plain", "k", b"before")
    await backend.put_bucket_versioning(CTX, "plain", "Enabled")
    after = await put(backend, "plain", "k", b"after")
    assert after.version_id not in (None, NULL_VERSION)
    assert (await backend.head_version(CTX, "plain", "k", NULL_VERSION)).info is not None
    result = await backend.get_version(CTX, "plain", "k", NULL_VERSION, GetOptions())
    assert b"".join([chunk async for chunk in result.body]) == b"before"
    await backend.put_bucket_versioning(CTX, "plain", "Suspended")
    await put(backend, "plain", "k", b"suspended")
    page = await backend.list_versions(CTX, "plain", VersionsQuery())
    assert [v.version_id for v in page.versions] == [NULL_VERSION, after.version_id]
    assert len(_backend_entries(backend, "plain/")) == 2
    assert _backend_entries(backend, ".pagewright/nulls/plain/")

    # Deleting the bucket takes its null mappings along.
    for version in await _history(backend, "plain"):
        await backend.delete_version(CTX, "plain", "k", version)
    await backend.delete_bucket(CTX, "plain")
    assert _backend_entries(backend, ".pagewright/nulls/plain/") == []


async def test_bookkeeping_keeps_no_history(backend: S3Backend) -> None:
    await backend.create_bucket(CTX, "site")
    await backend.put_bucket_versioning(CTX, "site", "Enabled")
    await backend.put_bucket_versioning(CTX, "site", "Suspended")
    await backend.put_bucket_versioning(CTX, "site", "Enabled")
    await _multipart(backend, "site", "k", b"parts")
    bookkeeping = _backend_entries(backend, ".pagewright/")
    assert [name for name, _ in bookkeeping if "/buckets/" in name] == [
        "root/.pagewright/buckets/site"
    ]
    assert not [name for name, marker in bookkeeping if marker]
    assert not [name for name, _ in bookkeeping if "/uploads/" in name or "/parts/" in name]

    await backend.delete_version(CTX, "site", "k", None)
    await backend.delete_version(CTX, "site", "k", (await _history(backend, "site"))[0])
    await backend.delete_version(CTX, "site", "k", (await _history(backend, "site"))[0])
    await backend.delete_bucket(CTX, "site")
    assert not [n for n, _ in _backend_entries(backend, ".pagewright/buckets/")]


async def _history(backend: S3Backend, bucket: str) -> list[str]:
    page = await backend.list_versions(CTX, bucket, VersionsQuery())
    return [v.version_id for v in page.versions]


async def test_sweep_keeps_the_manifest_of_a_noncurrent_version(backend: S3Backend) -> None:
    await backend.create_bucket(CTX, "site")
    await backend.put_bucket_versioning(CTX, "site", "Enabled")
    old = await _multipart(backend, "site", "k", b"parts")
    assert old is not None
    etag = (await backend.head_object(CTX, "site", "k")).etag
    assert etag.endswith("-1")
    await put(backend, "site", "k", b"plain")
    await anyio.sleep(1.1)  # S3 times have one-second precision
    cutoff = datetime.now(UTC)
    assert await backend.sweep(cutoff, limit=1000) == 0
    assert (await backend.head_version(CTX, "site", "k", old)).info.etag == etag  # type: ignore[union-attr]

    await backend.delete_version(CTX, "site", "k", old)
    assert await backend.sweep(cutoff, limit=1000) == 1


async def test_reads_trust_the_versioning_state_briefly_writes_never(moto: Any) -> None:
    """A GET/HEAD reuses the state it read for ``READ_STATE_TTL`` seconds (no second backend
    request per read); a change on this replica is seen at once, one made by another replica
    within that time, and a write always reads it fresh (its effect depends on it)."""
    from translators.s3.versions import READ_STATE_TTL

    spec = BackendSpec(
        "s3", f"pw-ver-{uuid.uuid4().hex[:8]}", prefix="root", options={"create": "true"}
    )
    here, other = S3Backend.from_spec(spec, moto.env), S3Backend.from_spec(spec, moto.env)
    await here.start()
    await other.start()
    now = [1000.0]
    here._versions._clock = lambda: now[0]
    try:
        bucket = f"b{uuid.uuid4().hex[:8]}"
        await here.create_bucket(CTX, bucket)
        await put(here, bucket, "k", b"one")
        assert (await here.head_object(CTX, bucket, "k")).version_id is None
        await other.put_bucket_versioning(CTX, bucket, "Enabled")
        assert (await here.head_object(CTX, bucket, "k")).version_id is None  # remembered
        written = await put(here, bucket, "k", b"two")  # a write reads the state fresh
        assert written.version_id not in (None, NULL_VERSION)
        now[0] += READ_STATE_TTL + 0.1
        assert (await here.head_object(CTX, bucket, "k")).version_id == written.version_id
        await here.put_bucket_versioning(CTX, bucket, "Suspended")  # this replica: at once
        suspended = await put(here, bucket, "k", b"three")
        assert suspended.version_id == NULL_VERSION
        assert (await here.head_object(CTX, bucket, "k")).version_id == NULL_VERSION
    finally:
        await here.close()
        await other.close()
