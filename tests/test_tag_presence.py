"""policy.tag_presence: whether a site has tagged objects, cached per site, forgotten when
this process changes the site's state; and the catalog query it rests on."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.catalog import SqlCatalog
from policy.tag_presence import TaggedSites
from tests.support.clock import Clock
from tests.test_catalog import record


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_site_is_asked_once_per_ttl_and_forgotten_on_a_change(tmp_path: Path) -> None:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    await catalog.start()
    asked: list[str] = []
    real = catalog.any_object_tags

    async def counted(site: str) -> bool:
        asked.append(site)
        return await real(site)

    catalog.any_object_tags = counted  # type: ignore[method-assign]
    clock = Clock(0.0)
    tagged = TaggedSites(catalog, ttl_s=2.0, clock=clock)
    catalog.add_state_listener(tagged.changed)
    try:
        await catalog.upsert(record("site-a", "plain.html"))
        await catalog.upsert(record("site-b", "index.html"))
        assert not await tagged.any("site-a")
        assert not await tagged.any("site-a")
        assert asked == ["site-a"]  # the second answer came from the cache
        # A tag set through this process is seen at once (the state listener).
        assert await catalog.set_object_tags("site-a", "plain.html", {"env": "prod"})
        assert await tagged.any("site-a")
        assert not await tagged.any("site-b")
        # A change made elsewhere (written straight to the catalog here, with no listener
        # told) is seen once the cached answer is older than the TTL.
        catalog._state_listeners.clear()
        await catalog.set_object_tags("site-b", "index.html", {"team": "web"})
        assert not await tagged.any("site-b")
        clock.now = 2.5
        assert await tagged.any("site-b")
        # Tags removed: the site reads as untagged again.
        await catalog.set_object_tags("site-a", "plain.html", {})
        clock.now = 5.0
        assert not await tagged.any("site-a")
    finally:
        await catalog.close()
