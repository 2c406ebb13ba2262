"""PolicyResolver over a real SqlCatalog: defaults, overrides, validation, cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from policy.catalog import SqlCatalog
from policy.model import SitePolicy
from policy.policies import PolicyError, PolicyResolver, validate_overrides


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[SqlCatalog]:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    await catalog.start()
    try:
        yield catalog
    finally:
        await catalog.close()


@pytest.mark.anyio
async def test_overrides_lay_over_defaults(catalog: SqlCatalog) -> None:
    resolver = PolicyResolver(SitePolicy(quota_bytes=100, retention_days=30), catalog)
    assert (await resolver.for_site("site-a")).quota_bytes == 100
    await resolver.set_overrides("site-a", {"quota_bytes": 5, "retention_days": None})
    policy = await resolver.for_site("site-a")
    assert (policy.quota_bytes, policy.retention_days) == (5, None)
    assert (await resolver.for_site("site-b")).quota_bytes == 100


@pytest.mark.anyio
async def test_cache_expires_and_is_invalidated_by_set(catalog: SqlCatalog) -> None:
    now = [0.0]
    resolver = PolicyResolver(SitePolicy(), catalog, ttl_s=5, clock=lambda: now[0])
    assert (await resolver.for_site("site-a")).quota_bytes is None
    await catalog.set_site_overrides("site-a", {"quota_bytes": 7})  # another replica
    assert (await resolver.for_site("site-a")).quota_bytes is None  # cached
    now[0] = 6.0
    assert (await resolver.for_site("site-a")).quota_bytes == 7
    await resolver.set_overrides("site-a", {"quota_bytes": 8})
    assert (await resolver.for_site("site-a")).quota_bytes == 8  # no wait for the TTL


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"quota": 1}, "unknown policy field 'quota'"),
        ({"quota_bytes": "1"}, "must be int"),
        ({"quota_bytes": True}, "not a bool"),
        ({"quota_bytes": -1}, "negative"),
        ({"validate_archives": None}, "cannot be null"),
        ({"validate_archives": 1}, "must be bool"),
        ({"max_compression_ratio": float("nan")}, "finite"),
        ({"max_compression_ratio": float("inf")}, "finite"),
        ({"max_compression_ratio": 1e7}, "at most 1000000"),
        ({"retention_days": 36_501}, "at most 36500"),
        ({"retention_days": 10**6}, "at most 36500"),
        ({"quota_bytes": 2**63}, "at most 9223372036854775807"),
        ({"retention_keep_last": 10**400}, "at most"),
    ],
)
def test_validation(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(PolicyError, match=says):
        validate_overrides(overrides)


def test_float_fields_accept_ints() -> None:
    assert validate_overrides({"max_compression_ratio": 3}) == {"max_compression_ratio": 3.0}
