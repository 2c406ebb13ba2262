"""CatalogBackend: the backend is written first, then the catalog learns of it."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.context import RequestContext
from core.errors import S3Error
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend, object_record
from policy.catalog_gate import CatalogGate
from tests.conformance.payload import MemoryPayload
from translators.base import CompletedPart, ObjectInfo, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend

pytestmark = pytest.mark.anyio

CTX = RequestContext(request_id="test", principal="alice")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def wrapped(tmp_path: Path) -> AsyncIterator[CatalogBackend]:
    backend = CatalogBackend(
        FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False),
        SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}"),
    )
    await backend.start()
    await backend.create_bucket(CTX, "site-a")
    yield backend
    await backend.close()


async def put(
    backend: CatalogBackend, key: str, data: bytes, meta: dict[str, str] | None = None
) -> ObjectInfo:
    return await backend.put_object(
        CTX,
        "site-a",
        key,
        MemoryPayload(data, algorithms=("SHA256",)),
        WriteMetadata({"content-type": "application/gzip"}, meta or {}),
        WriteConditions(),
    )


async def test_put_records_the_artifact(wrapped: CatalogBackend) -> None:
    data = b"artifact bytes"
    info = await put(
        wrapped,
        "builds/1.2-rc.tar.gz",
        data,
        {"creator": "ci", "status": "ready", "action": "deploy", "branch": "main"},
    )
    row = await wrapped.catalog.get("site-a", "builds/1.2-rc.tar.gz")
    assert row is not None
    assert (row.size, row.etag, row.created_at) == (len(data), info.etag, info.last_modified)
    assert (row.build_id, row.compression, row.content_type) == (
        "1.2-rc",
        "gzip",
        "application/gzip",
    )
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    # The creator is the authenticated principal, never the client's x-amz-meta-creator.
    assert (row.creator, row.status, row.action) == ("alice", "ready", "deploy")
    assert row.user_metadata["branch"] == "main"
    assert row.user_metadata["creator"] == "alice"
    stored = await wrapped.head_object(CTX, "site-a", "builds/1.2-rc.tar.gz")
    assert stored.user_metadata["creator"] == "alice"

    await put(wrapped, "index.html", b"<html>", {"creator": "mallory"})
    plain = await wrapped.catalog.get("site-a", "index.html")
    assert plain is not None
    assert (plain.creator, plain.build_id, plain.is_artifact) == ("alice", None, False)
    # On an ordinary object the header is plain user metadata, kept as sent.
    assert plain.user_metadata == {"creator": "mallory"}


async def test_multipart_delete_and_delete_bucket(wrapped: CatalogBackend) -> None:
    upload = await wrapped.create_multipart_upload(
        CTX, "site-a", "builds/7.tar", WriteMetadata(user_metadata={"creator": "ci"}), None, None
    )
    parts = [
        await wrapped.upload_part(CTX, "site-a", "builds/7.tar", upload.upload_id, n, body)
        for n, body in ((1, MemoryPayload(b"a" * 10)), (2, MemoryPayload(b"b" * 5)))
    ]
    await wrapped.complete_multipart_upload(
        CTX,
        "site-a",
        "builds/7.tar",
        upload.upload_id,
        [CompletedPart(p.part_number, p.etag) for p in parts],
        WriteConditions(),
    )
    row = await wrapped.catalog.get("site-a", "builds/7.tar")
    assert row is not None
    assert (row.size, row.creator, row.build_id, row.etag.endswith("-2")) == (
        15,
        "alice",
        "7",
        True,
    )

    await wrapped.delete_object(CTX, "site-a", "builds/7.tar")
    assert await wrapped.catalog.get("site-a", "builds/7.tar") is None

    await put(wrapped, "x", b"x")
    await wrapped.delete_object(CTX, "site-a", "x")
    await wrapped.delete_bucket(CTX, "site-a")
    assert (await wrapped.catalog.usage("site-a")).objects == 0


async def test_failed_backend_write_records_nothing(wrapped: CatalogBackend) -> None:
    with pytest.raises(S3Error, match="NoSuchBucket"):
        await wrapped.put_object(
            CTX, "site-z", "k", MemoryPayload(b"x"), WriteMetadata(), WriteConditions()
        )
    assert await wrapped.catalog.get("site-z", "k") is None
    await put(wrapped, "k", b"1")
    with pytest.raises(S3Error, match="PreconditionFailed"):
        await wrapped.put_object(
            CTX,
            "site-a",
            "k",
            MemoryPayload(b"22"),
            WriteMetadata(),
            WriteConditions(if_none_match="*"),
        )
    row = await wrapped.catalog.get("site-a", "k")
    assert row is not None
    assert row.size == 1


async def test_catalog_failure_does_not_fail_the_write(
    wrapped: CatalogBackend, caplog: pytest.LogCaptureFixture
) -> None:
    await wrapped.catalog.close()  # every catalog call now raises
    with caplog.at_level(logging.ERROR, logger="policy.catalog_backend"):
        info = await put(wrapped, "builds/9.tar", b"data")
        await wrapped.delete_object(CTX, "site-a", "nothing")
    assert info.size == 4
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 2
    assert "reindex" in messages[0]
    stored = await wrapped.inner.head_object(CTX, "site-a", "builds/9.tar")
    assert stored.etag == info.etag
    await wrapped.catalog.start()  # for the fixture's close


async def test_writes_the_catalog_missed_are_recorded_once_it_answers_again(
    tmp_path: Path,
) -> None:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    gate = CatalogGate(catalog.check_ready, fresh_s=3600)  # admitted unprobed after an answer
    backend = CatalogBackend(
        FilesystemBackend(tmp_path / "storage", min_part_size=1, fsync=False), catalog, gate
    )
    await backend.start()
    await backend.create_bucket(CTX, "site-a")
    await put(backend, "builds/1.tar", b"one")
    await catalog.close()  # the catalog goes while a delete and a put are under way
    await backend.delete_object(CTX, "site-a", "builds/1.tar")
    with pytest.raises(S3Error) as refused:  # the next write is refused: the catalog is down
        await put(backend, "builds/2.tar", b"two")
    assert refused.value.status == 503
    assert backend.unrecorded == {("site-a", "builds/1.tar"): "alice"}
    await catalog.start()
    await put(backend, "builds/3.tar", b"three")  # the first write admitted catches up
    assert await catalog.get("site-a", "builds/1.tar") is None
    assert backend.unrecorded == {}
    await catalog.close()
    missed = await put(backend, "builds/4.tar", b"four")
    await catalog.start()
    await backend.delete_object(CTX, "site-a", "builds/3.tar")
    row = await catalog.get("site-a", "builds/4.tar")
    assert row is not None
    assert (row.etag, row.size, row.creator) == (missed.etag, 4, "alice")
    assert await catalog.get("site-a", "builds/3.tar") is None
    await backend.close()


def test_composite_checksums_are_not_the_object_sha256() -> None:
    digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    info = ObjectInfo(
        key="builds/1.tar",
        size=1,
        etag="e-2",
        last_modified=datetime.now(UTC),
        checksums={"SHA256": digest},
        checksum_type="COMPOSITE",
    )
    assert object_record("site-a", info, "p").sha256 is None
    full = object_record("site-a", ObjectInfo(**{**info.__dict__, "checksum_type": None}), "p")
    assert full.sha256 == hashlib.sha256(b"x").hexdigest()
    broken = ObjectInfo(**{**info.__dict__, "checksums": {"SHA256": "!!"}, "checksum_type": None})
    assert object_record("site-a", broken, "p").sha256 is None
