"""Rate limits: per principal, per site, and on authentication failures per source address.

Limits are token buckets (:mod:`policy.rate_buckets`) for requests per second and bytes per
second, each with a burst:

* per principal: the same limit for every principal, from the settings
  (:class:`RateLimitConfig`); each principal has buckets of its own across all sites;
* per site: the site's policy (``site_requests_per_second``... in
  :class:`policy.model.SitePolicy`: the ``[policy]`` defaults with the site's overrides), one
  set of buckets per site shared by every principal.

A request costs one request token and, for an upload, its declared length in byte tokens
(charged up front, before the body is read; downloads are not charged). A decision charges
the principal's and the site's buckets together or not at all.

Authentication failures are counted per source address in fixed windows: after
``auth_failure_limit`` failures in ``auth_failure_window_seconds`` from one address, every
request from it is refused until the window ends (a success does not reset the count).

With a Redis URL the buckets live in Redis (shared by replicas; an outage falls back to
per-process limits, see :mod:`policy.rate_redis`), else in this process. While the catalog
cannot tell a site's policy, that site's limits are skipped (logged once), never the
request. No limit configured (all zero, the default) costs nothing: no bucket is touched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.errors import S3Error
from policy.model import SitePolicy
from policy.rate_buckets import ALLOWED, Admission, BucketStore, Charge, MemoryBuckets, Rate

log = logging.getLogger("pagewright.rate_limits")


@dataclass(frozen=True)
class RateLimitConfig:
    """The process-wide rate-limit settings. Zero (or None) is no limit."""

    principal_requests_per_second: float = 0.0
    principal_request_burst: int = 0
    principal_bytes_per_second: int = 0
    principal_byte_burst: int = 0
    auth_failure_limit: int = 0
    auth_failure_window_seconds: float = 300.0
    redis_url: str = ""
    redis_key_prefix: str = "pagewright:rl:"


def open_store(config: RateLimitConfig) -> BucketStore:
    """Redis (with the per-process fallback) when ``config`` names one, else this process."""
    if not config.redis_url:
        return MemoryBuckets()
    # The Redis client (~20 MiB once imported) is loaded only when it is configured.
    from policy.rate_redis import open_buckets

    return open_buckets(config.redis_url, config.redis_key_prefix)


SitePolicies = Callable[[str], Awaitable[SitePolicy]]


class RateLimiter:
    """The decisions the gateway asks for: :meth:`admit` after authentication,
    :meth:`check_source` before it and :meth:`auth_failed` when it fails.

    ``site_policy`` resolves a site's effective policy (``PolicyResolver.for_site``)."""

    def __init__(
        self, config: RateLimitConfig, store: BucketStore, site_policy: SitePolicies
    ) -> None:
        self.config = config
        self.store = store
        self._site_policy = site_policy
        self._principal_requests = Rate.of(
            config.principal_requests_per_second, config.principal_request_burst
        )
        self._principal_bytes = Rate.of(
            config.principal_bytes_per_second, config.principal_byte_burst
        )
        self._policies_unavailable = False

    async def admit(self, principal: str, site: str | None, cost_bytes: int = 0) -> Admission:
        """Charge one request and ``cost_bytes`` to ``principal``'s buckets and, when the
        request addresses a site, to ``site``'s. Refused: nothing is charged."""
        charges: list[Charge] = []
        self._add(
            charges, f"p:{principal}:requests", "principal requests", self._principal_requests, 1
        )
        self._add(
            charges, f"p:{principal}:bytes", "principal bytes", self._principal_bytes, cost_bytes
        )
        policy = await self._policy_of(site) if site is not None else None
        if site is not None and policy is not None:
            requests = Rate.of(policy.site_requests_per_second, policy.site_request_burst)
            transfer = Rate.of(policy.site_bytes_per_second, policy.site_byte_burst)
            self._add(charges, f"s:{site}:requests", "site requests", requests, 1)
            self._add(charges, f"s:{site}:bytes", "site bytes", transfer, cost_bytes)
        if not charges:
            return ALLOWED
        return await self.store.take(charges)

    async def _policy_of(self, site: str) -> SitePolicy | None:
        """``site``'s policy, or None while the catalog is unavailable: its limits are then
        not applied (a catalog outage must not refuse requests that need no catalog)."""
        try:
            policy = await self._site_policy(site)
        except S3Error as error:
            if error.status < 500:
                raise
            if not self._policies_unavailable:
                log.warning(
                    "rate limits: site policies are unavailable (%s); per-site "
                    "limits are not applied until they are back",
                    error.message,
                )
            self._policies_unavailable = True
            return None
        self._policies_unavailable = False
        return policy

    async def check_source(self, address: str | None) -> Admission:
        """Refused while ``address`` has failed authentication ``auth_failure_limit`` times
        in its current window (until the window ends). An unknown address ("" or None) is
        never refused."""
        limit = self.config.auth_failure_limit
        if limit <= 0 or not address:
            return ALLOWED
        count, left = await self.store.failures(_source_key(address))
        if count >= limit:
            return Admission.refused(left, "authentication failures")
        return ALLOWED

    async def auth_failed(self, address: str | None) -> None:
        """Count one failed authentication from ``address``."""
        if self.config.auth_failure_limit > 0 and address:
            await self.store.add_failure(
                _source_key(address), self.config.auth_failure_window_seconds
            )

    async def close(self) -> None:
        """Release the store (the Redis connections)."""
        await self.store.close()

    @staticmethod
    def _add(charges: list[Charge], key: str, name: str, rate: Rate | None, cost: float) -> None:
        if rate is not None and cost > 0:
            charges.append(Charge(key, name, rate, cost))


def _source_key(address: str) -> str:
    return f"a:{address}:auth-failures"


def unlimited(site_policy: SitePolicies) -> RateLimiter:
    """A limiter with no process-wide limit, in this process (per-site policies still apply)."""
    return RateLimiter(RateLimitConfig(), MemoryBuckets(), site_policy)
