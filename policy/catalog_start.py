"""A remote catalog that could not start does not stop the gateway: it starts in the background.

:class:`CatalogStart` wraps the start of a PostgreSQL catalog (connect, then migrate:
``SqlCatalog.start``). :meth:`CatalogStart.start` tries once, the first time it is called
(later calls return at once); when the database cannot be reached or refuses the
connection (``OperationalError``, ``InterfaceError``, ``OSError``) the failure is kept in
:attr:`last_error` and the gateway serves anyway, not ready, while
:meth:`CatalogStart.keep_starting` retries with a doubling delay (from ``first_delay_s``
up to ``max_delay_s``) until the catalog starts, then awaits ``then`` (the stack takes
its reservation lease and starts its background passes). Any other failure of that
first try (an unusable URL, a migration that cannot apply) is raised, so the gateway
exits: a fault of the deployment, not an outage that ends by itself. In the background
every failure is retried.

Until it has started, every unit of work of the catalog is refused with 503
``ServiceUnavailable`` and ``Retry-After`` (``CatalogDatabase.run``), so writes (the
catalog gate), users' keys, API keys and sites' settings are all answered 503, never 500
and never 403. Only what needs no catalog goes on (probes, root's ``ListBuckets``): a
site's access settings live in the catalog and none is loaded yet, so even root's reads
of a site are refused (fail closed: a bucket policy may deny root). :attr:`state` is
``starting`` or ``started``, for the readiness report; the jobs and the reservation lease
wait for the start (``policy.stack``).

Used for PostgreSQL only: a SQLite catalog is a local file, and one that cannot be opened
stops the gateway as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.exc import InterfaceError, OperationalError

from policy.background_start import FIRST_DELAY_S, MAX_DELAY_S, BackgroundStart

log = logging.getLogger("pagewright.catalog_start")


class Startable(Protocol):
    """What is started (``policy.catalog.SqlCatalog``): connect and migrate, idempotent."""

    async def start(self) -> None: ...


class CatalogStart(BackgroundStart):
    """Starts ``catalog`` once, then in the background until it starts (see the module
    docstring)."""

    def __init__(
        self,
        catalog: Startable,
        *,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        super().__init__(
            catalog.start,
            _outage,
            what="the catalog database",
            log=log,
            first_delay_s=first_delay_s,
            max_delay_s=max_delay_s,
        )
        self.catalog = catalog
        self.tried = False

    async def start(self) -> None:
        """Try to start the catalog, the first time only; an outage is kept in
        :attr:`last_error`, any other failure raised."""
        if not self.tried:
            self.tried = True
            await self.try_start()

    async def keep_starting(self, then: Callable[[], Awaitable[None]] | None = None) -> None:
        """Retry :meth:`try_start` with a doubling delay until it succeeds, then await
        ``then``. Here every failure is retried (one that is not an outage is logged)."""
        await super().keep_starting()
        log.warning("the catalog database started: the gateway can take writes")
        if then is not None:
            await then()


def _outage(error: Exception) -> str | None:
    """The message of a database that cannot be reached or refuses the connection; None
    for any other failure."""
    if isinstance(error, (OperationalError, InterfaceError, OSError)):
        return str(getattr(error, "orig", None) or error).strip()
    return None
