"""A site's whole lifecycle configuration as S3 clients see it: the stored rules and the
rule that is the artifact retention window (``retention_days``), read and written as one.

See :mod:`policy.lifecycle` for the contract: the rule :data:`policy.lifecycle.RETENTION_RULE_ID`
is never stored as a rule; it is the ``retention_days`` override, so the artifact API,
retention and S3 clients always see one state. A Put or Delete writes the rules and the
override in one catalog transaction, then drops this process's cached site policy (other
replicas see it within the policy cache's TTL).
"""

from __future__ import annotations

from policy.lifecycle import LifecycleRules, split_retention, with_retention
from policy.model import Catalog
from policy.policies import PolicyResolver


class LifecycleStore:
    """Lifecycle configurations over ``catalog``, with ``policies`` (whose cache it keeps fresh)."""

    def __init__(self, catalog: Catalog, policies: PolicyResolver) -> None:
        self._catalog = catalog
        self._policies = policies

    async def configuration(self, site: str) -> LifecycleRules | None:
        """``site``'s configuration (the retention rule first); None: it has none."""
        rules = await self._catalog.bucket_lifecycle(site)
        overrides = await self._policies.overrides(site)
        return with_retention(rules, overrides.get("retention_days"))

    async def store(self, site: str, rules: LifecycleRules | None) -> None:
        """Replace ``site``'s whole configuration with ``rules`` (checked; None: remove it,
        clearing ``retention_days`` too)."""
        others, days = split_retention(rules or ())
        try:
            await self._catalog.replace_lifecycle(site, others or None, days)
        finally:
            self._policies.invalidate(site)
