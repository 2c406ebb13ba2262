"""The one wiring function: the policy wrappers stacked around a translator.

Order, outermost first (each a Backend wrapping the next):

0. ``FreeSpaceBackend`` (only over a translator with a local volume, when a floor is set):
   writes are refused under the free-space floor before anything else is done for them.
1. ``RetentionBackend``: after an artifact upload commits, applies the site's retention.
2. ``QuotaBackend``: size limits, and quota reservations taken before a body is read and
   released only once the catalog row exists — so it must sit outside ``CatalogBackend``.
3. ``CatalogBackend``: records every committed write and delete in the catalog.
4. ``ValidationBackend``: archive rules and SHA256 on artifact uploads (its staging writes
   for multipart artifacts stay below the catalog, so they are never indexed or counted),
   and the re-hash of whole artifact downloads.
5. the translator (filesystem, S3, Azure, GCS).

Retention deletes through the whole stack, so the catalog and quotas follow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from anyio.abc import TaskGroup

from gateway.services import Services
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.free_space import FreeSpaceBackend, FreeSpaceGuard
from policy.model import SitePolicy
from policy.policies import PolicyResolver
from policy.quota import QuotaBackend
from policy.retention import RetentionBackend, RetentionService
from policy.validation import ValidationBackend
from translators.base import Backend, LocalVolume

log = logging.getLogger("pagewright.stack")
RETENTION_INTERVAL_S = 3600.0


@dataclass
class Stack:
    """The wrapped backend and the services the handlers and the artifact API use."""

    backend: Backend
    catalog: SqlCatalog
    policies: PolicyResolver
    retention: RetentionService
    retention_interval_s: float = RETENTION_INTERVAL_S
    space: FreeSpaceGuard | None = None  # the free-space floor, when one applies

    @property
    def services(self) -> Services:
        return Services(self.policies)

    async def run(self, task_group: TaskGroup) -> None:
        """Start the backend (and the catalog with it) and the periodic retention pass."""
        await self.backend.start()
        task_group.start_soon(self.retention.run_periodically, self.retention_interval_s)

    async def close(self) -> None:
        await self.backend.close()


def build_stack(
    translator: Backend,
    catalog_url: str,
    defaults: SitePolicy,
    max_object_size: int,
    retention_interval_s: float = RETENTION_INTERVAL_S,
    min_free_bytes: int = 0,
) -> Stack:
    """Wrap ``translator`` in the policy layers, in the order the module docstring states.

    ``min_free_bytes``: the free-space floor of a translator with a local volume (0: none).
    """
    catalog = SqlCatalog(catalog_url)
    policies = PolicyResolver(defaults, catalog)
    validated = ValidationBackend(translator, policies.for_site, catalog)
    indexed = CatalogBackend(validated, catalog)
    limited = QuotaBackend(indexed, catalog, policies, max_object_size=max_object_size)
    retention = RetentionService(limited, catalog, policies)
    backend: Backend = RetentionBackend(limited, retention)
    space = None
    if min_free_bytes > 0 and isinstance(translator, LocalVolume):
        space = FreeSpaceGuard(translator, min_free_bytes)
        backend = FreeSpaceBackend(backend, space)
    return Stack(backend, catalog, policies, retention, retention_interval_s, space)
