"""Whether a site has any tagged object, as the read path asks it: cached.

Every GetObject and HeadObject of a tagged object answers ``x-amz-tagging-count``, which
needs the object's catalog row; most sites tag nothing, and a catalog read on every read of
theirs would be the price of a header they never get. :class:`TaggedSites` answers "does
this site have any tagged object?" from one indexed probe (``ix_objects_site_tagged``),
kept ``ttl_s`` seconds (2, like the access settings' cache): a site with no tags costs its
readers nothing more. A change of a site's catalog-only state made through this process
(tags included: ``SqlCatalog.add_state_listener``) drops its entry at once; one made
through another replica is seen within ``ttl_s``, the time a new tag's count may be missing
from that replica's replies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

from policy.access_control import TtlCache

DEFAULT_TTL_S: Final = 2.0


class TagCatalog(Protocol):
    async def any_object_tags(self, site: str) -> bool: ...


class TaggedSites:
    """Cached "has any tagged object" per site over ``catalog`` (module docstring), in the
    access settings' :class:`~policy.access_control.TtlCache`."""

    def __init__(
        self,
        catalog: TagCatalog,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._known: TtlCache[bool] = TtlCache(ttl_s, clock)

    async def any(self, site: str) -> bool:
        """Whether ``site`` has a tagged object (at most ``ttl_s`` old); a catalog error
        propagates (``S3Error``)."""
        return await self._known.get(site, lambda: self._catalog.any_object_tags(site))

    async def changed(self, site: str) -> None:
        """A state listener: ``site``'s state changed through this process."""
        self._known.forget(site)
