"""Long-lived components handlers need besides the Backend, set once by the app's wiring."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.post_auth import FormAuthenticator
from policy.access_control import AccessControl
from policy.cors_settings import CorsSettings
from policy.identities import IdentityStore
from policy.model import Catalog
from policy.object_lock import ObjectLocks
from policy.policies import PolicyResolver
from policy.tag_presence import TaggedSites


@dataclass(frozen=True)
class Services:
    """What the wiring built for handlers: ``policies`` resolves and stores site policies;
    ``access`` decides requests and keeps sites' access configuration (bucket policies,
    ACLs, public access blocks, object ownership); ``identities`` holds users and their
    site roles (None: no identity store, only root and tokens); ``cors`` holds sites' CORS
    rules and ``forms`` checks POST Object forms' signatures; ``catalog`` keeps catalog-only
    object and bucket state such as tags (None: not wired, as in tests that call handlers
    directly; tagging is then 501); ``tagged`` tells whether a site has any tagged object
    (cached; None: ask the catalog for each read's tag count); ``locks`` holds sites' object
    lock configuration and versions' locks (None: object lock is 501)."""

    policies: PolicyResolver
    access: AccessControl
    identities: IdentityStore | None = None
    cors: CorsSettings | None = None
    forms: FormAuthenticator | None = None
    catalog: Catalog | None = None
    tagged: TaggedSites | None = None
    locks: ObjectLocks | None = None
