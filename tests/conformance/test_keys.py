"""Keys are opaque: look-alike paths coexist, round-trip, list, and never escape storage."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import CTX, Harness
from tests.conformance.helpers import list_all, put, read
from translators.base import ListQuery

pytestmark = pytest.mark.anyio

KEYS = [
    "a",
    "a/b",
    "a//b",
    "a/b/",
    "dir/",
    "dir",
    "../x",
    "../../../../etc/passwd",
    "/leading",
    "./dot",
    ".",
    "..",
    "a\\b",
    "x" * 1024,
    "é" * 512,  # 1,024 bytes of UTF-8
    "日本語/キー",
    "emoji-😀",
    "space key ",
    "percent%20_underscore",
    "new\nline",
    "A",
    "\u00e9",  # é precomposed
    "e\u0301",  # é decomposed: a different key
]


async def test_opaque_keys_coexist(harness: Harness, bucket: str) -> None:
    backend = harness.backend
    for index, key in enumerate(KEYS):
        await put(backend, bucket, key, f"{index}:{key}".encode())
    for index, key in enumerate(KEYS):
        assert await read(backend, bucket, key) == f"{index}:{key}".encode()
        assert (await backend.head_object(CTX, bucket, key)).key == key
    pages = await list_all(backend, bucket, ListQuery(max_keys=5))
    listed = [info.key for page in pages for info in page.objects]
    assert listed == sorted(KEYS, key=lambda key: key.encode())
    if harness.outside_root is not None:
        assert harness.outside_root() == []


async def test_keys_sort_by_utf8_bytes(harness: Harness, bucket: str) -> None:
    keys = ["\uffff", "😀", "z", "Z", "\u00e9", "ab", "a", "\u007f", "\u0080"]
    for key in keys:
        await put(harness.backend, bucket, key, b"")
    page = await harness.backend.list_objects(CTX, bucket, ListQuery())
    assert [info.key for info in page.objects] == sorted(keys, key=lambda key: key.encode())


async def test_prefix_with_like_wildcards_is_literal(harness: Harness, bucket: str) -> None:
    for key in ["a%b/1", "a_b/1", "axb/1", "A%B/1", "a%b"]:
        await put(harness.backend, bucket, key, b"")
    page = await harness.backend.list_objects(CTX, bucket, ListQuery(prefix="a%b"))
    assert [info.key for info in page.objects] == ["a%b", "a%b/1"]
    page = await harness.backend.list_objects(CTX, bucket, ListQuery(prefix="a_"))
    assert [info.key for info in page.objects] == ["a_b/1"]
