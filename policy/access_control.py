"""The access decision for every request, S3 and artifact API alike.

:meth:`AccessControl.decide` gathers what applies to one (principal, action, resource) and
asks the one engine (``policy.access.evaluate``), which applies AWS's logic: an explicit Deny
anywhere wins, then any Allow, else the request is denied.

* identity policies: a user's inline policies and the roles granted to it on sites
  (``policy.roles``); a token's or session's roles; root needs none (root may do everything
  a bucket policy does not explicitly deny it);
* the site's bucket policy (not for anonymous requests while the site's public access
  block restricts public buckets);
* the site's or object's ACL, only when the site's object ownership enables ACLs, public
  grants dropped while the block says to ignore public ACLs;
* a session's policy caps everything else.

What the catalog holds is cached for ``cache_seconds`` (default 2) per site and per user, so
a change reaches every replica within that time; changes made through this process are seen
at once (:meth:`AccessControl.forget`). While the catalog is unavailable (a 5xx
``S3Error`` from it), the last value loaded is used for up to ``stale_seconds`` more
(default an hour: stale-if-error), so reads of a site this process has seen keep working
through a catalog outage; a value never loaded, or older than that, fails closed (503).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, Protocol, TypeVar

from core.errors import S3Error
from policy.access import (
    AccessRequest,
    Decision,
    NamedPolicy,
    PolicyDocument,
    evaluate,
    parse_policy,
)
from policy.bucket_access import (
    BUCKET_ACL_ACTIONS,
    OBJECT_ACL_ACTIONS,
    BucketAccess,
    Grant,
    acl_allows,
    default_access,
)
from policy.principals import ROOT, Principal, Role
from policy.roles import role_policy

V = TypeVar("V")
#: How long past its freshness a cached site or user setting serves while the catalog is down.
STALE_IF_ERROR_S = 3600.0
Context = Mapping[str, str | Sequence[str]]


class AccessCatalog(Protocol):
    """What the decision reads of the catalog (``policy.access_store.AccessStore``)."""

    async def bucket_access(self, site: str) -> tuple[BucketAccess, str | None] | None: ...

    async def object_acl(self, site: str, key: str) -> tuple[Grant, ...] | None: ...

    async def set_bucket_access(
        self, site: str, access: BucketAccess, policy: str | None
    ) -> None: ...

    async def remove_bucket_access(self, site: str) -> None: ...

    async def set_object_acl(self, site: str, key: str, acl: tuple[Grant, ...] | None) -> None: ...


class IdentitySource(Protocol):
    """What the decision reads of the identity store (``policy.identities``)."""

    async def user_policy_documents(self, user: str) -> list[tuple[str, str]]:
        """(policy name, JSON document) of each inline policy of ``user``."""
        ...

    async def user_grants(self, user: str) -> list[tuple[str, Role]]:
        """(site, role) of each role granted to ``user``."""
        ...


@dataclass(frozen=True)
class SiteAccess:
    """A site's access configuration with its bucket policy parsed."""

    site: str
    access: BucketAccess
    policy_text: str | None
    policy: PolicyDocument | None


@lru_cache(maxsize=256)
def _parsed_session_policy(text: str) -> PolicyDocument:
    return parse_policy(text, kind="identity")


def _session_cap(text: str | None) -> PolicyDocument | None:
    """A session's policy, parsed once per distinct text (sessions of one role share it),
    not on every request they sign."""
    return None if text is None else _parsed_session_policy(text)


def resource_arn(bucket: str | None, key: str | None) -> str:
    """The ARN policies name a request's resource by."""
    if bucket is None:
        return "*"
    return f"arn:aws:s3:::{bucket}" + ("" if key is None else f"/{key}")


class TtlCache(Generic[V]):
    """A small time-bounded cache of async loads (:class:`AccessControl`'s, and
    ``policy.cors_settings``'); at most 10,000 keys, all dropped when full. A load failing
    for want of the catalog (5xx) falls back on a value up to ``stale_seconds`` older than
    ``seconds``."""

    def __init__(
        self, seconds: float, clock: Callable[[], float], stale_seconds: float = 0.0
    ) -> None:
        self._seconds = seconds
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, V]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._seconds:
            return entry[1]
        try:
            value = await load()
        except S3Error as error:
            if (
                error.status >= 500
                and entry is not None
                and now - entry[0] < self._seconds + self._stale_seconds
            ):
                return entry[1]
            raise
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value

    def forget(self, key: str | None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


class AccessControl:
    """Decides requests over ``catalog`` (site settings) and ``identities`` (users' policies
    and grants; None: only root and tokens' roles exist)."""

    def __init__(
        self,
        catalog: AccessCatalog,
        identities: IdentitySource | None,
        *,
        cache_seconds: float = 2.0,
        stale_seconds: float = STALE_IF_ERROR_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._identities = identities
        self._sites: TtlCache[SiteAccess] = TtlCache(cache_seconds, clock, stale_seconds)
        self._users: TtlCache[tuple[NamedPolicy, ...]] = TtlCache(
            cache_seconds, clock, stale_seconds
        )

    def forget(self, *, site: str | None = None, user: str | None = None) -> None:
        """Drop cached state of ``site`` and/or ``user`` (after this process changed it)."""
        if site is not None:
            self._sites.forget(site)
        if user is not None:
            self._users.forget(user)

    async def site(self, site: str) -> SiteAccess:
        """``site``'s configuration and parsed bucket policy (defaults when never stored)."""

        async def load() -> SiteAccess:
            stored = await self._catalog.bucket_access(site)
            if stored is None:
                return SiteAccess(site, default_access(ROOT.name), None, None)
            access, text = stored
            document = None if text is None else parse_policy(text, kind="resource", bucket=site)
            return SiteAccess(site, access, text, document)

        return await self._sites.get(site, load)

    async def store_site(self, site: str, access: BucketAccess, policy_text: str | None) -> None:
        """Keep ``access`` and ``policy_text`` (validated by the caller) as ``site``'s."""
        await self._catalog.set_bucket_access(site, access, policy_text)
        self._sites.forget(site)

    async def remove_site(self, site: str) -> None:
        """Forget a deleted site's configuration, bucket policy and object ACLs."""
        await self._catalog.remove_bucket_access(site)
        self._sites.forget(site)

    async def object_acl(self, site: str, key: str) -> tuple[Grant, ...] | None:
        """The object's ACL (None: its owner's private default)."""
        return await self._catalog.object_acl(site, key)

    async def set_object_acl(self, site: str, key: str, acl: tuple[Grant, ...] | None) -> None:
        await self._catalog.set_object_acl(site, key, acl)

    async def identity_policies(self, principal: Principal) -> tuple[NamedPolicy, ...]:
        """Every identity policy of ``principal``: inline, granted roles, carried roles."""
        carried = tuple(
            NamedPolicy(f"role:{site}/{role.value}", role_policy(site, role))
            for site, role in sorted(principal.site_roles.items())
        )
        if principal.kind != "user" or self._identities is None:
            return carried
        identities = self._identities

        async def load() -> tuple[NamedPolicy, ...]:
            inline = [
                NamedPolicy(f"user:{principal.name}/{name}", parse_policy(text, kind="identity"))
                for name, text in await identities.user_policy_documents(principal.name)
            ]
            granted = [
                NamedPolicy(f"role:{site}/{role.value}", role_policy(site, role))
                for site, role in await identities.user_grants(principal.name)
            ]
            return tuple(inline + granted)

        return carried + await self._users.get(principal.name, load)

    async def decide(
        self,
        principal: Principal,
        action: str,
        bucket: str | None,
        key: str | None,
        context: Context,
    ) -> Decision:
        """Whether ``principal`` may do ``action`` on ``bucket``/``key`` (None: the service
        or the whole site) given the request's condition ``context``."""
        identity = await self.identity_policies(principal)
        resource: list[NamedPolicy] = []
        acl_grant = False
        if bucket is not None:
            site = await self.site(bucket)
            access = site.access
            restricted = principal.kind == "anonymous" and access.blocks("restrict_public_buckets")
            if site.policy is not None and not restricted:
                resource.append(NamedPolicy(f"bucket-policy:{bucket}", site.policy))
            acl_grant = await self._acl_allows(site, principal, action, key)
        session_cap = _session_cap(principal.session_policy)
        request = AccessRequest(principal, action, resource_arn(bucket, key), context)
        return evaluate(
            request,
            identity,
            resource,
            acl_allows=acl_grant,
            session_cap=session_cap,
            acl_name=f"acl:{bucket}",
        )

    async def decide_on(
        self, principal: Principal, action: str, resource: str, context: Context
    ) -> Decision:
        """Whether ``principal`` may do ``action`` on a resource outside every site (an IAM
        user's ARN): identity policies alone decide, root aside."""
        identity = await self.identity_policies(principal)
        session_cap = _session_cap(principal.session_policy)
        request = AccessRequest(principal, action, resource, context)
        return evaluate(request, identity, (), session_cap=session_cap)

    async def _acl_allows(
        self, site: SiteAccess, principal: Principal, action: str, key: str | None
    ) -> bool:
        access = site.access
        if not access.acls_enabled:
            return False
        ignore = access.blocks("ignore_public_acls")
        if key is not None and action in OBJECT_ACL_ACTIONS:
            acl = await self._catalog.object_acl(site.site, key)
            grants = acl if acl is not None else ()
            return (
                acl_allows(grants, action, principal, ignore_public=ignore, on_object=True)
                is not None
            )
        if action in BUCKET_ACL_ACTIONS:
            granted = acl_allows(
                access.acl, action, principal, ignore_public=ignore, on_object=False
            )
            return granted is not None
        return False
