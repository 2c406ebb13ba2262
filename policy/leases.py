"""Quota reservations that no live process owns are reclaimed (:class:`LeaseKeeper`).

Every gateway process holds a lease in the catalog, renewed every quarter of its lifetime;
its single-write reservations (policy.quota) live while the lease does. A lease is dead
once it expired, or at once when its process ran on this machine and is gone: the lease
records the machine (kernel boot id and PID namespace) and the process (PID and start
time), so a process on the same machine, such as the gateway restarted after a
``kill -9``, can tell. Replicas elsewhere (sharing PostgreSQL) wait for the expiry.

A multipart upload's reservation lives as long as the upload: one whose upload the backend
no longer knows (completed or aborted by a process that died before releasing) is released.

The keeper renews and reclaims at start-up, before the gateway serves, then periodically;
at shutdown it drops its lease. A live process whose lease could not be renewed for a
whole lifetime (the database unreachable) loses its reservations: its uploads in flight
then go uncounted, never blocked. So do single writes of gateways too old to take leases
(their reservations have no owner), should replicas of two versions share a catalog.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import anyio

from core.context import RequestContext
from core.errors import S3Error
from policy.model import Catalog
from translators.base import Backend

log = logging.getLogger("pagewright.leases")

#: Default lease lifetime: a process that stops renewing loses its reservations after it.
DEFAULT_LEASE_S: Final = 120.0
#: How often multipart reservations are checked against their uploads (a backend call each).
UPLOAD_CHECK_INTERVAL_S: Final = 3600.0
_GONE: Final = frozenset({"NoSuchUpload", "NoSuchBucket"})
_CTX: Final = RequestContext(request_id="lease-keeper", principal="pagewright")


def this_process() -> tuple[str | None, str | None]:
    """(node, process) identifying the running process: ``<boot id>/<pid namespace>`` and
    ``<pid>/<start time>``; (None, None) without Linux's /proc."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
        pid = os.getpid()
        started = _start_time(pid)
    except OSError:
        return None, None
    if started is None:
        return None, None
    return f"{boot_id}/{namespace}", f"{pid}/{started}"


def process_alive(process: str) -> bool:
    """Whether the process ``<pid>/<start time>`` (of this node) still runs; a reused PID
    has another start time."""
    pid, _, started = process.partition("/")
    if not pid.isdigit():
        return True  # not ours to judge: let the lease expire
    try:
        return _start_time(int(pid)) == started
    except OSError:
        return False


def _start_time(pid: int) -> str | None:
    # Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


class LeaseKeeper:
    """Holds this process's lease in ``catalog`` and reclaims what dead owners left.

    ``backend`` answers whether a multipart upload still exists (``list_parts``).
    """

    def __init__(self, catalog: Catalog, backend: Backend, lease_s: float = DEFAULT_LEASE_S):
        self._catalog = catalog
        self._backend = backend
        self._lease = timedelta(seconds=lease_s)
        self._node, self._process = this_process()
        self._uploads_checked = -UPLOAD_CHECK_INTERVAL_S

    @property
    def renew_interval_s(self) -> float:
        return self._lease.total_seconds() / 4

    async def start(self) -> None:
        """Take the lease, then reclaim what dead processes left (before serving)."""
        await self.renew()
        await self.reclaim()

    async def renew(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        await self._catalog.renew_lease(self._node, self._process, now + self._lease)

    async def reclaim(self, now: datetime | None = None) -> int:
        """Drop the reservations this process could not release during a catalog outage,
        and single-write reservations of expired leases and of processes of this node that
        are gone; returns how many were dropped."""
        now = now or datetime.now(UTC)
        pending = await self._catalog.release_pending()
        if pending:
            log.info("released %d quota reservations held over a catalog outage", pending)
        own = self._catalog.lease_id
        dead = {
            lease.id
            for lease in await self._catalog.leases()
            if lease.id != own
            and self._node is not None
            and lease.node == self._node
            and lease.process is not None
            and not process_alive(lease.process)
        }
        dropped = await self._catalog.reclaim_reservations(now, dead)
        if dropped:
            log.info("reclaimed %d quota reservations of gateway processes gone", dropped)
        return dropped + pending

    async def reclaim_uploads(self) -> int:
        """Release the reservations of multipart uploads that no longer exist."""
        released = 0
        for reservation in await self._catalog.upload_reservations():
            try:
                await self._backend.list_parts(
                    _CTX, reservation.site, reservation.key, reservation.upload_id, 0, 1
                )
            except S3Error as error:
                if error.code not in _GONE:
                    log.warning("leases: cannot check upload %s: %s", reservation.id, error)
                    continue
                await self._catalog.release(reservation.id)
                released += 1
        if released:
            log.info("released %d quota reservations of finished multipart uploads", released)
        return released

    async def reclaim_all(self) -> int:
        """One reclaiming pass (the ``reclaim-reservations`` job, policy.jobs): dead
        processes' reservations, then, if this process has not looked for an hour, those of
        finished multipart uploads. How many were dropped or released."""
        dropped = await self.reclaim()
        if time.monotonic() - self._uploads_checked >= UPLOAD_CHECK_INTERVAL_S:
            self._uploads_checked = time.monotonic()
            dropped += await self.reclaim_uploads()
        return dropped

    async def renew_periodically(self) -> None:
        """Renew this process's lease every quarter lease until cancelled (reclaiming runs
        as a job then); a failing renewal is logged and the loop goes on."""
        while True:
            await anyio.sleep(self.renew_interval_s)
            try:
                await self.renew()
            except Exception:
                log.exception("leases: renewing the lease failed")

    async def run_periodically(self) -> None:
        """Renew and reclaim every quarter lease (uploads hourly, the first time at once)
        until cancelled; a failing pass is logged and the loop goes on."""
        while True:
            try:
                if time.monotonic() - self._uploads_checked >= UPLOAD_CHECK_INTERVAL_S:
                    self._uploads_checked = time.monotonic()
                    await self.reclaim_uploads()
                await anyio.sleep(self.renew_interval_s)
                await self.renew()
                await self.reclaim()
            except Exception:
                log.exception("leases: periodic pass failed")

    async def close(self) -> None:
        """Drop the lease (what this process still holds becomes reclaimable)."""
        try:
            await self._catalog.drop_lease()
        except Exception:
            log.exception("leases: dropping the lease failed")
