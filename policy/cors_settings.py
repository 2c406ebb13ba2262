"""Sites' CORS rules as the request path reads them: cached, since preflights are hot.

:class:`CorsSettings` reads a site's rules from the catalog and keeps them for
``cache_seconds`` (default 2, like ``policy.access_control``'s site settings), so a change
reaches every replica within that time and is seen at once by the replica that made it
(:meth:`CorsSettings.store` forgets its copy). While the catalog is unavailable (a 5xx
``S3Error``) the last rules loaded serve for up to ``stale_seconds`` more; rules never
loaded fail (503), which the caller turns into "no CORS" rather than a failed request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from policy.access_control import STALE_IF_ERROR_S, TtlCache
from policy.cors import CorsRules


class CorsCatalog(Protocol):
    """What is read and written of the catalog (``policy.catalog.SqlCatalog``)."""

    async def bucket_cors(self, site: str) -> CorsRules | None: ...

    async def set_bucket_cors(self, site: str, rules: CorsRules | None) -> None: ...


class CorsSettings:
    """Each site's CORS rules over ``catalog``, cached (see the module docstring)."""

    def __init__(
        self,
        catalog: CorsCatalog,
        *,
        cache_seconds: float = 2.0,
        stale_seconds: float = STALE_IF_ERROR_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._rules: TtlCache[CorsRules | None] = TtlCache(cache_seconds, clock, stale_seconds)

    async def rules(self, site: str) -> CorsRules | None:
        """``site``'s rules; None: it has no CORS configuration."""
        return await self._rules.get(site, lambda: self._catalog.bucket_cors(site))

    async def store(self, site: str, rules: CorsRules | None) -> None:
        """Keep ``rules`` (checked by the caller; None: none) as ``site``'s."""
        await self._catalog.set_bucket_cors(site, rules)
        self._rules.forget(site)

    def forget(self, site: str) -> None:
        """Drop the cached rules of ``site`` (deleted on this replica)."""
        self._rules.forget(site)
