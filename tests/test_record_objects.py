"""policy.record_objects: small JSON records read whole, within their bound."""

from __future__ import annotations

import json

import pytest

from core.errors import S3Error
from policy.record_objects import RecordTooLarge, parse_record, read_record
from tests.conformance.conftest import CTX
from tests.conformance.helpers import put
from translators.memory.backend import MemoryBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_record_is_read_whole_and_a_missing_one_is_none() -> None:
    backend = MemoryBackend()
    await backend.create_bucket(CTX, "site")
    await put(backend, "site", "r.json", b'{"a": 1}')
    assert await read_record(backend, CTX, "site", "r.json", 64) == b'{"a": 1}'
    assert await read_record(backend, CTX, "site", "absent.json", 64) is None
    with pytest.raises(S3Error) as caught:
        await read_record(backend, CTX, "no-such-site", "r.json", 64)
    assert caught.value.code == "NoSuchBucket"
    missing = ("NoSuchKey", "NoSuchBucket")
    assert await read_record(backend, CTX, "no-such-site", "r.json", 64, missing=missing) is None


async def test_a_record_over_its_bound_is_refused() -> None:
    backend = MemoryBackend()
    await backend.create_bucket(CTX, "site")
    await put(backend, "site", "big.json", b"x" * 65)
    with pytest.raises(RecordTooLarge, match="65 bytes, over 64"):
        await read_record(backend, CTX, "site", "big.json", 64)
    assert await read_record(backend, CTX, "site", "big.json", 65) == b"x" * 65


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not JSON"),
        (b"\xff", "not JSON"),
        (b"[]", "not a fmt record"),
        (json.dumps({"format": "other", "version": 1}).encode(), "not a fmt record"),
        (json.dumps({"format": "fmt", "version": 2}).encode(), "version 2, expected 1"),
    ],
)
def test_only_a_record_of_its_format_and_version_parses(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_record(data, "fmt", 1)


def test_a_record_of_its_format_and_version_parses() -> None:
    document = {"format": "fmt", "version": 1, "x": [1]}
    assert parse_record(json.dumps(document).encode(), "fmt", 1) == document
