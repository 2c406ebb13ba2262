"""Buckets: create, head, list, delete, and NoSuchBucket on every operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from core.errors import S3Error
from tests.conformance.conftest import CTX
from tests.conformance.helpers import put
from tests.conformance.payload import MemoryPayload
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    ListQuery,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)

pytestmark = pytest.mark.anyio


async def test_create_head_list_delete(backend: Backend) -> None:
    await backend.create_bucket(CTX, "bucket-one")
    info = await backend.head_bucket(CTX, "bucket-one")
    assert info.name == "bucket-one"
    assert info.created.tzinfo is not None
    assert "bucket-one" in [b.name for b in await backend.list_buckets(CTX)]
    with pytest.raises(S3Error) as caught:
        await backend.create_bucket(CTX, "bucket-one")
    assert caught.value.code == "BucketAlreadyOwnedByYou"
    await backend.delete_bucket(CTX, "bucket-one")
    assert "bucket-one" not in [b.name for b in await backend.list_buckets(CTX)]


async def test_delete_non_empty_bucket(backend: Backend, bucket: str) -> None:
    await put(backend, bucket, "k", b"x")
    with pytest.raises(S3Error) as caught:
        await backend.delete_bucket(CTX, bucket)
    assert (caught.value.code, caught.value.status) == ("BucketNotEmpty", 409)
    await backend.delete_object(CTX, bucket, "k")
    await backend.delete_bucket(CTX, bucket)


async def test_pending_uploads_do_not_block_delete(backend: Backend, bucket: str) -> None:
    upload = await backend.create_multipart_upload(CTX, bucket, "k", WriteMetadata(), None, None)
    await backend.upload_part(CTX, bucket, "k", upload.upload_id, 1, MemoryPayload(b"abc"))
    await backend.delete_bucket(CTX, bucket)
    with pytest.raises(S3Error) as caught:
        await backend.head_bucket(CTX, bucket)
    assert caught.value.code == "NoSuchBucket"


def _operations(backend: Backend) -> list[Callable[[], Awaitable[Any]]]:
    missing, meta, cond = "no-such-bucket", WriteMetadata(), WriteConditions()
    return [
        lambda: backend.head_bucket(CTX, missing),
        lambda: backend.delete_bucket(CTX, missing),
        lambda: backend.head_object(CTX, missing, "k"),
        lambda: backend.get_object(CTX, missing, "k", GetOptions()),
        lambda: backend.put_object(CTX, missing, "k", MemoryPayload(b"x"), meta, cond),
        lambda: backend.delete_object(CTX, missing, "k"),
        lambda: backend.list_objects(CTX, missing, ListQuery()),
        lambda: backend.create_multipart_upload(CTX, missing, "k", meta, None, None),
        lambda: backend.upload_part(CTX, missing, "k", "nope", 1, MemoryPayload(b"x")),
        lambda: backend.list_parts(CTX, missing, "k", "nope", 0, 10),
        lambda: backend.list_multipart_uploads(CTX, missing, UploadsQuery()),
        lambda: backend.complete_multipart_upload(
            CTX, missing, "k", "nope", [CompletedPart(1, "x")], cond
        ),
        lambda: backend.abort_multipart_upload(CTX, missing, "k", "nope"),
    ]


async def test_no_such_bucket_everywhere(backend: Backend) -> None:
    for index, operation in enumerate(_operations(backend)):
        with pytest.raises(S3Error) as caught:
            await operation()
        assert caught.value.code == "NoSuchBucket", index
