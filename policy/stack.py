"""The one wiring function: the policy wrappers stacked around a translator.

Order, outermost first (each a Backend wrapping the next):

0. ``FreeSpaceBackend`` (only over a translator with a local volume, when a floor is set):
   writes are refused under the free-space floor before anything else is done for them.
1. ``RetentionBackend``: after an artifact upload commits, applies the site's retention.
2. ``QuotaBackend``: size limits, and quota reservations taken before a body is read and
   released only once the catalog row exists — so it must sit outside ``CatalogBackend``.
2b. ``ObjectLockBackend`` (policy.object_lock): refuses deleting a locked version and gives
   new versions their lock; it reads and keeps the catalog row's pin (the latest version's
   legal hold), so it sits outside ``CatalogBackend``, and inside ``QuotaBackend`` so that
   retention's deletes meet it too.
3. ``CatalogBackend``: records every committed write and delete in the catalog; with a
   remote (PostgreSQL) catalog, refuses writes with 503 while it is down
   (policy.catalog_gate), and one that cannot be reached at start is started again in the
   background while the gateway serves, not ready (policy.catalog_start).
4. ``ValidationBackend``: archive rules and SHA256 on artifact uploads (its staging writes
   for multipart artifacts stay below the catalog, so they are never indexed or counted),
   and the re-hash of whole artifact downloads.
4b. ``EncryptingBackend`` (policy.encryption): server-side encryption at rest. It sees
   plaintext above and stores ciphertext below, so everything above it (validation's
   archive checks and re-hash, the catalog's sizes and checksums, quotas) works on the
   plaintext a client sent, and everything below (the start gate, the breaker, spans,
   timing, the translator) only ever handles the stored form.
5. ``StartingBackend`` (policy.backend_start): a backend that could not start refuses every
   call with 503 while it is started again in the background; the gateway serves meanwhile,
   not ready.
6. ``CircuitBreakerBackend`` (only over a remote translator: S3, Azure, GCS): fails fast
   with 503 + ``Retry-After`` while the backend is down (policy.circuit_breaker). It sits
   outside the per-call wrappers around the translator (spans, timing), so calls it
   refuses are not recorded as backend calls.
7. ``BackendSpans`` (only when tracing is on): a ``backend.<method>`` span per translator
   call (policy.backend_spans).
8. ``MeasuredBackend``: times and counts every translator call (policy.metrics_backend).
9. the translator (filesystem, S3, Azure, GCS).

Around all of them, ``CompletedUploadsBackend`` (policy.completed_uploads) answers a
CompleteMultipartUpload repeated after it succeeded from a record it keeps in the bare
translator, before any wrapper inside sees the repeat.

Retention deletes through ``QuotaBackend`` and what it wraps, so the catalog and quotas follow.

Beside the stack: on the bare translator, :class:`policy.site_state.SiteStateStore`, which
the catalog tells of every change of a site's catalog-only state and which keeps a copy in
the site's bucket, and :class:`policy.lock_records.LockRecords`, where ``ObjectLocks`` keeps
each locked version's record, and the background :class:`policy.scrub.Scrubber` (off unless
``scrub_interval_s`` > 0); and a ``LeaseKeeper`` that holds this process's lease on its quota
reservations and reclaims those of processes gone and of multipart uploads finished
(policy.leases); and the :class:`policy.rate_limits.RateLimiter` the gateway asks before
a request reaches the stack (its Redis connections are closed with the stack). The
:class:`policy.metrics.Metrics` every part counts in is the stack's ``metrics``; on it, the
translator's free space is read at scrape time (policy.metrics_volume) and each job's
configured interval is exported.

The periodic passes (retention, the scrub, reclaiming reservations, sweeping leftovers,
aborting abandoned uploads, applying sites' lifecycle rules) run as jobs of a
:class:`policy.jobs.JobScheduler`, one replica at a time across replicas sharing the catalog
(policy.housekeeping builds the job set).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from anyio.abc import TaskGroup

from core.errors import S3Error
from policy.backend_spans import BackendSpans
from policy.backend_start import StartingBackend
from policy.catalog import SqlCatalog
from policy.catalog_backend import CatalogBackend
from policy.catalog_gate import CatalogGate
from policy.catalog_start import CatalogStart
from policy.circuit_breaker import (
    DEFAULT_FAILURES,
    DEFAULT_RESET_SECONDS,
    REMOTE_BACKENDS,
    CircuitBreaker,
    CircuitBreakerBackend,
)
from policy.completed_uploads import CompletedUploadsBackend
from policy.encryption import EncryptingBackend
from policy.encryption_meta import EncryptionDefaults
from policy.free_space import FreeSpaceBackend, FreeSpaceGuard
from policy.housekeeping import JobSettings, standard_jobs
from policy.jobs import DEFAULT_JOB_LEASE_S, JobScheduler
from policy.leases import DEFAULT_LEASE_S, LeaseKeeper
from policy.lifecycle_job import LifecycleJob
from policy.lock_records import LockRecords
from policy.metrics import Metrics
from policy.metrics_backend import MeasuredBackend
from policy.metrics_job_runs import CatalogJobRuns
from policy.metrics_volume import VolumeSpaceCollector
from policy.model import SitePolicy
from policy.object_lock import ObjectLockBackend, ObjectLocks
from policy.policies import PolicyResolver
from policy.quota import QuotaBackend
from policy.rate_limits import RateLimitConfig, RateLimiter, open_store
from policy.retention import RetentionBackend, RetentionService
from policy.scrub import Scrubber
from policy.site_state import SiteStateStore
from policy.sse_crypto import Keyring
from policy.validation import ValidationBackend
from translators.base import Backend, LocalVolume

log = logging.getLogger("pagewright.stack")
RETENTION_INTERVAL_S = 3600.0


class StartupError(Exception):
    """A part of the stack could not start; the message names the part and the reason."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part} could not start: {reason}")
        self.part = part
        self.reason = reason


@asynccontextmanager
async def _starting(part: str) -> AsyncIterator[None]:
    """Turn a failure of the block into a :class:`StartupError` naming ``part``."""
    try:
        yield
    except Exception as exc:
        reason = exc.message if isinstance(exc, S3Error) else str(exc)
        raise StartupError(part, reason) from exc


@dataclass
class Stack:
    """The wrapped backend and the services the handlers and the artifact API use."""

    backend: Backend
    catalog: SqlCatalog
    policies: PolicyResolver
    retention: RetentionService
    retention_interval_s: float = RETENTION_INTERVAL_S
    site_state: SiteStateStore | None = None
    scrubber: Scrubber | None = None
    scrub_interval_s: float = 0.0
    leases: LeaseKeeper | None = None
    space: FreeSpaceGuard | None = None  # the free-space floor, when one applies
    limiter: RateLimiter | None = None  # None: the gateway applies only per-site limits
    metrics: Metrics = field(default_factory=Metrics)  # what the stack and the gateway count
    starting: StartingBackend | None = None  # the backend's start, retried until it succeeds
    breaker: CircuitBreaker | None = None  # around a remote translator
    jobs: JobScheduler | None = None  # None: retention and the scrub loop in this process
    catalog_start: CatalogStart | None = None  # a remote catalog's start, retried until it is up
    locks: ObjectLocks | None = None  # sites' object lock configuration and versions' locks

    async def run(self, task_group: TaskGroup) -> None:
        """Start the catalog, then the backend, take the reservation lease and reclaim what
        dead processes left, then start the periodic passes (the lease's renewal, and the
        jobs; without a scheduler: retention, leases and, when configured, the scrub). A part
        that fails raises :class:`StartupError` naming it, except the backend and a remote
        catalog that cannot be reached: each is started again in the background while the
        gateway serves, not ready (policy.backend_start, policy.catalog_start); the lease
        and the periodic passes wait for the catalog."""
        async with _starting("the catalog"):
            if self.catalog_start is None:
                await self.catalog.start()
            else:
                await self.catalog_start.start()  # an unreachable database is kept, not raised
        async with _starting(f"the {self.backend.name} backend"):
            await self.backend.start()  # a StartingBackend inside keeps its failure
        if self.starting is not None and not self.starting.started:
            log.error(
                "the %s backend could not start (%s): serving, not ready, until it does",
                self.backend.name,
                self.starting.last_error,
            )
            task_group.start_soon(self.starting.keep_starting)
        if self.catalog_start is not None and not self.catalog_start.started:
            log.error(
                "the catalog database could not start (%s): serving, not ready, until it does",
                self.catalog_start.last_error,
            )
            task_group.start_soon(
                self.catalog_start.keep_starting, partial(self._start_passes, task_group, True)
            )
            return
        await self._start_passes(task_group, False)

    async def _start_passes(self, task_group: TaskGroup, late: bool) -> None:
        """Take the reservation lease, then start the periodic passes. ``late``: the catalog
        started in the background, the gateway already serving, so a lease not taken now is
        logged (its renewal takes it) rather than raised."""
        if self.leases is not None:
            if late:
                try:
                    await self.leases.start()
                except Exception:
                    log.exception("leases: taking the lease failed; its renewal retries")
            else:
                async with _starting("the reservation lease"):
                    await self.leases.start()
            if self.jobs is None:
                task_group.start_soon(self.leases.run_periodically)
            else:
                task_group.start_soon(self.leases.renew_periodically)
        if self.jobs is not None:
            task_group.start_soon(self.jobs.run)
            return
        task_group.start_soon(self.retention.run_periodically, self.retention_interval_s)
        if self.scrubber is not None and self.scrub_interval_s > 0:
            task_group.start_soon(self.scrubber.run_periodically, self.scrub_interval_s)

    async def close(self) -> None:
        catalog_up = self.catalog_start is None or self.catalog_start.started
        try:
            if self.leases is not None and catalog_up:  # no lease was taken otherwise
                await self.leases.close()
            await self.backend.close()
        finally:
            if self.limiter is not None:
                await self.limiter.close()


def build_stack(
    translator: Backend,
    catalog_url: str,
    defaults: SitePolicy,
    max_object_size: int,
    retention_interval_s: float = RETENTION_INTERVAL_S,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    scrub_interval_s: float = 0.0,
    scrub_rate_bytes: int = 8 * 1024 * 1024,
    min_free_bytes: int = 0,
    rate_limits: RateLimitConfig | None = None,
    metrics: Metrics | None = None,
    breaker_failures: int = DEFAULT_FAILURES,
    breaker_reset_s: float = DEFAULT_RESET_SECONDS,
    jobs: JobSettings | None = None,
    job_lease_s: float = DEFAULT_JOB_LEASE_S,
    traced: bool = False,
    keyring: Keyring | None = None,
) -> Stack:
    """Wrap ``translator`` in the policy layers, in the order the module docstring states.

    ``scrub_interval_s`` > 0 scrubs every artifact that often at ``scrub_rate_bytes``/s;
    ``min_free_bytes``: the free-space floor of a translator with a local volume (0: none);
    ``rate_limits``: the process-wide rate limits and where buckets live (default: none, in
    this process); ``metrics``: where the stack counts (default: a registry of its own);
    ``jobs``: the background jobs' intervals (default: retention every
    ``retention_interval_s``, the scrub every ``scrub_interval_s``, the rest at their
    defaults), run under leases of ``job_lease_s`` (policy.jobs); ``traced``: a span per
    translator call (tracing is on); ``breaker_failures`` consecutive failures of a remote
    translator open its circuit breaker for ``breaker_reset_s`` seconds; ``keyring``: the
    keys of server-side encryption (None: encrypted writes are refused with 501).
    """
    metrics = metrics or Metrics()
    catalog = SqlCatalog(catalog_url)
    locks = ObjectLocks(catalog, records=LockRecords(translator))
    site_state = SiteStateStore(translator, catalog, locks.configuration)
    catalog.add_state_listener(site_state.save)
    policies = PolicyResolver(defaults, catalog)
    measured = MeasuredBackend(translator, metrics)
    guarded: Backend = BackendSpans(measured) if traced else measured
    breaker = None
    if translator.name in REMOTE_BACKENDS:
        breaker = CircuitBreaker(translator.name, breaker_failures, breaker_reset_s)
        guarded = CircuitBreakerBackend(guarded, breaker)
    starting = StartingBackend(guarded)
    defaults_of = EncryptionDefaults(policies.for_site)
    encrypted = EncryptingBackend(starting, keyring, defaults_of)
    validated = ValidationBackend(encrypted, policies.for_site, catalog, metrics=metrics)
    # A remote catalog's outage refuses writes (503) rather than acknowledging unrecorded
    # ones; one unreachable at start is started in the background.
    remote_catalog = catalog.dialect != "sqlite"
    gate = CatalogGate(catalog.check_ready) if remote_catalog else None
    catalog_start = CatalogStart(catalog) if remote_catalog else None
    indexed = CatalogBackend(
        validated,
        catalog,
        gate,
        start_catalog=None if catalog_start is None else catalog_start.start,
    )
    locked = ObjectLockBackend(indexed, locks)
    limited = QuotaBackend(locked, catalog, policies, max_object_size=max_object_size)
    retention = RetentionService(limited, catalog, policies, metrics)
    backend: Backend = RetentionBackend(limited, retention)
    volume = translator if isinstance(translator, LocalVolume) else None
    metrics.registry.register(VolumeSpaceCollector(volume, min_free_bytes))
    space = None
    if min_free_bytes > 0 and volume is not None:
        space = FreeSpaceGuard(volume, min_free_bytes)
        backend = FreeSpaceBackend(backend, space)
    backend = CompletedUploadsBackend(backend, translator)
    # The scrub reads plaintext (its hashes are the plaintext's), straight from the translator.
    scrubber = Scrubber(EncryptingBackend(translator, keyring), catalog, scrub_rate_bytes, metrics)
    leases = LeaseKeeper(catalog, backend, lease_s)
    limits = rate_limits or RateLimitConfig()
    limiter = RateLimiter(limits, open_store(limits), policies.for_site)
    job_settings = jobs or JobSettings(retention_s=retention_interval_s, scrub_s=scrub_interval_s)
    scheduler = JobScheduler(
        catalog.database,
        standard_jobs(
            job_settings,
            backend=backend,
            translator=translator,
            retention=retention,
            scrubber=scrubber,
            leases=leases,
            lifecycle=LifecycleJob(backend, catalog, policies),
        ),
        lease_s=job_lease_s,
    )
    for job in scheduler.jobs.values():
        metrics.schedule_job(job.name, job.interval_s)
    scheduler.add_listener(lambda run: metrics.job(run.name)(run.ok, run.duration_s))
    metrics.before_scrape(CatalogJobRuns(scheduler.statuses, metrics).refresh)
    return Stack(
        backend,
        catalog,
        policies,
        retention,
        retention_interval_s,
        site_state=site_state,
        scrubber=scrubber,
        scrub_interval_s=scrub_interval_s,
        leases=leases,
        space=space,
        limiter=limiter,
        metrics=metrics,
        starting=starting,
        breaker=breaker,
        jobs=scheduler,
        catalog_start=catalog_start,
        locks=locks,
    )
