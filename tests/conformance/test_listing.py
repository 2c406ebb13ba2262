"""ListObjects: prefix, delimiter roll-up, paging, and 10,000+ keys."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import CTX
from tests.conformance.helpers import list_all, put, put_many
from translators.base import Backend, ListQuery

pytestmark = pytest.mark.anyio

TREE = [
    "a.txt",
    "docs/",
    "docs/index.html",
    "docs/guide/intro.html",
    "docs/guide/setup.html",
    "docs/z.html",
    "img/logo.png",
    "img/icons/x.svg",
    "zeta",
]


@pytest.fixture
async def tree(backend: Backend, bucket: str) -> str:
    for key in TREE:
        await put(backend, bucket, key, key.encode())
    return bucket


async def test_flat_listing(backend: Backend, tree: str) -> None:
    page = await backend.list_objects(CTX, tree, ListQuery())
    assert [o.key for o in page.objects] == sorted(TREE)
    assert page.common_prefixes == []
    assert page.next_start_after is None
    assert page.objects[0].size == len(b"a.txt")


async def test_delimiter_roll_up(backend: Backend, tree: str) -> None:
    page = await backend.list_objects(CTX, tree, ListQuery(delimiter="/"))
    assert [o.key for o in page.objects] == ["a.txt", "zeta"]
    assert page.common_prefixes == ["docs/", "img/"]
    page = await backend.list_objects(CTX, tree, ListQuery(prefix="docs/", delimiter="/"))
    assert [o.key for o in page.objects] == ["docs/", "docs/index.html", "docs/z.html"]
    assert page.common_prefixes == ["docs/guide/"]
    page = await backend.list_objects(CTX, tree, ListQuery(prefix="docs", delimiter="/"))
    assert page.objects == []
    assert page.common_prefixes == ["docs/"]


async def test_multi_character_delimiter(backend: Backend, bucket: str) -> None:
    for key in ["a--b--c", "a--d", "a-e", "f"]:
        await put(backend, bucket, key, b"")
    page = await backend.list_objects(CTX, bucket, ListQuery(delimiter="--"))
    assert [o.key for o in page.objects] == ["a-e", "f"]
    assert page.common_prefixes == ["a--"]


async def test_paging_counts_prefixes(backend: Backend, tree: str) -> None:
    pages = await list_all(backend, tree, ListQuery(delimiter="/", max_keys=1))
    entries = [(p.objects[0].key if p.objects else p.common_prefixes[0]) for p in pages]
    assert entries == ["a.txt", "docs/", "img/", "zeta"]
    assert pages[1].next_start_after == "docs/"


async def test_start_after(backend: Backend, tree: str) -> None:
    page = await backend.list_objects(CTX, tree, ListQuery(start_after="docs/guide/intro.html"))
    assert [o.key for o in page.objects] == [k for k in sorted(TREE) if k > "docs/guide/intro.html"]
    page = await backend.list_objects(CTX, tree, ListQuery(start_after="docs/", delimiter="/"))
    assert page.common_prefixes == ["img/"]
    assert [o.key for o in page.objects] == ["zeta"]
    page = await backend.list_objects(CTX, tree, ListQuery(start_after="zzz"))
    assert (page.objects, page.common_prefixes, page.next_start_after) == ([], [], None)


async def test_max_keys_zero(backend: Backend, tree: str) -> None:
    page = await backend.list_objects(CTX, tree, ListQuery(max_keys=0))
    assert (page.objects, page.common_prefixes, page.next_start_after) == ([], [], None)


async def test_exact_page_boundary_is_not_truncated(backend: Backend, tree: str) -> None:
    page = await backend.list_objects(CTX, tree, ListQuery(max_keys=len(TREE)))
    assert len(page.objects) == len(TREE)
    assert page.next_start_after is None


async def test_ten_thousand_keys(backend: Backend, bucket: str) -> None:
    keys = [f"d{d:02d}/k{k:04d}" for d in range(20) for k in range(500)] + ["top-1", "top-2"]
    await put_many(backend, bucket, keys)

    pages = await list_all(backend, bucket, ListQuery(max_keys=1000))
    assert len(pages) == 11
    listed = [o.key for page in pages for o in page.objects]
    assert listed == sorted(keys)

    pages = await list_all(backend, bucket, ListQuery(delimiter="/", max_keys=7))
    prefixes = [p for page in pages for p in page.common_prefixes]
    assert prefixes == [f"d{d:02d}/" for d in range(20)]
    assert [o.key for page in pages for o in page.objects] == ["top-1", "top-2"]

    pages = await list_all(backend, bucket, ListQuery(prefix="d07/", max_keys=120))
    assert [o.key for page in pages for o in page.objects] == [f"d07/k{k:04d}" for k in range(500)]
