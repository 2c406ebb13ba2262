"""Conditional writes: If-None-Match: * and If-Match, checked at commit."""

from __future__ import annotations

import pytest

from core.errors import S3Error
from tests.conformance.helpers import put, read
from translators.base import Backend, WriteConditions

pytestmark = pytest.mark.anyio


async def test_if_none_match_star(backend: Backend, bucket: str) -> None:
    create_only = WriteConditions(if_none_match="*")
    await put(backend, bucket, "k", b"first", conditions=create_only)
    with pytest.raises(S3Error) as caught:
        await put(backend, bucket, "k", b"second", conditions=create_only)
    assert (caught.value.code, caught.value.status) == ("PreconditionFailed", 412)
    assert await read(backend, bucket, "k") == b"first"


async def test_if_match(backend: Backend, bucket: str) -> None:
    first = await put(backend, bucket, "k", b"first")
    with pytest.raises(S3Error) as caught:
        await put(backend, bucket, "k", b"x", conditions=WriteConditions(if_match="0" * 32))
    assert caught.value.code == "PreconditionFailed"
    second = await put(backend, bucket, "k", b"second", conditions=WriteConditions(first.etag))
    assert await read(backend, bucket, "k") == b"second"
    with pytest.raises(S3Error):
        await put(backend, bucket, "k", b"third", conditions=WriteConditions(first.etag))
    await put(backend, bucket, "k", b"third", conditions=WriteConditions(second.etag))
    assert await read(backend, bucket, "k") == b"third"


async def test_if_match_on_missing_key(backend: Backend, bucket: str) -> None:
    with pytest.raises(S3Error) as caught:
        await put(backend, bucket, "absent", b"x", conditions=WriteConditions(if_match="abc"))
    assert caught.value.code == "NoSuchKey"
