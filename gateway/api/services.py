"""What the artifact API needs, handed over in one object by the app's wiring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.settings import Settings
from policy.access_control import AccessControl
from policy.jobs import JobScheduler
from policy.metrics import Metrics
from policy.model import Catalog
from policy.object_lock import ObjectLocks
from policy.oidc import TokenVerifier
from policy.policies import PolicyResolver
from policy.rate_limits import RateLimiter
from policy.retention import RetentionService
from translators.base import Backend


class ApiKeyLookup(Protocol):
    """API-key lookup (``policy.api_keys.ApiKeyStore`` implements it)."""

    async def principal_for_api_key(self, secret: str) -> str | None:
        """The principal of a live API key (recording its use), or None."""
        ...


@dataclass(frozen=True)
class ApiServices:
    """The API's dependencies.

    ``backend`` must be the fully wrapped stack (catalog, validation, quota, retention
    wrappers around the translator): deletes and downloads go through it so the catalog and
    quotas follow and reads are verified. ``catalog`` answers listings; ``api_keys`` API keys;
    ``policies`` resolves and stores per-site overrides; ``retention`` plans and applies
    retention; ``access`` decides every request; ``limiter`` (when given) applies the rate
    limits (gateway.api.limits). The API starts and closes none of them: the wiring owns
    their lifecycle. ``token_verifier`` accepts OIDC tokens as Bearer credentials (None: API
    keys only). ``metrics``: where requests, denials and refusals are counted (None: not).
    """

    catalog: Catalog
    backend: Backend
    policies: PolicyResolver
    retention: RetentionService
    settings: Settings
    access: AccessControl
    api_keys: ApiKeyLookup
    limiter: RateLimiter | None = None
    token_verifier: TokenVerifier | None = None
    metrics: Metrics | None = None
    jobs: JobScheduler | None = None  # the background jobs (None: GET /jobs answers 503)
    locks: ObjectLocks | None = None  # object lock: a pin there is a recorded legal hold
