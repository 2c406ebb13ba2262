"""The readiness probe (``GET /_pagewright/readyz``): can this gateway serve requests now?

Checks, run together, each bounded by :data:`CHECK_TIMEOUT_S`, each with a ``state``:

* ``backend``: the storage answers and takes writes (``Backend.check_ready``): ``ok``,
  ``starting`` (it could not start yet, policy.backend_start) or ``unavailable`` (it fails,
  or its circuit breaker is open: then ``breaker`` holds the breaker's state);
* ``catalog``: the catalog database answers and could take a write
  (``SqlCatalog.check_ready``): ``ok``, ``starting`` (a remote catalog that could not
  start yet, policy.catalog_start) or ``unavailable``;
* ``redis`` (only with shared rate-limit buckets): ``ok``, or
  ``degraded: per-process limits`` while Redis is out. It never fails readiness: the
  gateway keeps serving with limits of its own (policy.rate_failover);
* ``free_space`` (only with a free-space floor, i.e. the filesystem backend): the volume has
  at least ``min_free_bytes`` free: ``ok`` or ``low``.

The report is JSON: ``{"ready", "backend", "checks": {name: {"ok", "state", "error"?,
...}}, "failed": [names]}``; the app answers 200 when every check passed, else 503.
Messages name the fault, never a path, host or credential (those go to the log).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import anyio

from core.errors import S3Error
from policy.rate_failover import FailoverBuckets
from policy.stack import Stack

#: A check that has not answered by then has failed (a hung database, an unreachable host).
CHECK_TIMEOUT_S: Final = 5.0


async def _run(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            return {"ok": True, "state": "ok", **await check()}
    except S3Error as error:
        return {"ok": False, "state": "unavailable", "error": error.message}
    except TimeoutError:
        return {
            "ok": False,
            "state": "unavailable",
            "error": f"No answer within {CHECK_TIMEOUT_S:g} seconds.",
        }


class _Starting(Protocol):
    """A start retried in the background (policy.background_start)."""

    @property
    def started(self) -> bool: ...


def _once_started(
    starting: _Starting | None, what: str, check_ready: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The check of a part that may still be starting: ``starting`` while ``starting`` has
    not started (``what`` names the part), else ``check_ready``."""

    async def check() -> dict[str, Any]:
        if starting is not None and not starting.started:
            return {"ok": False, "state": "starting", "error": f"{what} has not started yet."}
        await check_ready()
        return {}

    return check


async def report(stack: Stack) -> tuple[bool, dict[str, Any]]:
    """Run every check of ``stack``; (all passed, the JSON document)."""

    checks: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "backend": _once_started(
            stack.starting, f"The {stack.backend.name} backend", stack.backend.check_ready
        ),
        "catalog": _once_started(
            stack.catalog_start, "The catalog database", stack.catalog.check_ready
        ),
    }
    guard = stack.space
    if guard is not None:

        async def free_space() -> dict[str, Any]:
            space = guard.space()
            details = {"free_bytes": space.free, "min_free_bytes": guard.min_free_bytes}
            if space.free < guard.min_free_bytes:
                return {
                    **details,
                    "ok": False,
                    "state": "low",
                    "error": "The storage volume has less free space than min_free_bytes.",
                }
            return details

        checks["free_space"] = free_space

    store = stack.limiter.store if stack.limiter is not None else None
    if isinstance(store, FailoverBuckets):
        buckets = store

        async def redis() -> dict[str, Any]:
            return {"state": "degraded: per-process limits" if buckets.degraded else "ok"}

        checks["redis"] = redis

    results: dict[str, dict[str, Any]] = {}

    async def run(name: str, check: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        results[name] = await _run(check)

    async with anyio.create_task_group() as group:
        for name, check in checks.items():
            group.start_soon(run, name, check)
    ordered = {name: results[name] for name in checks}
    if stack.breaker is not None:
        ordered["backend"]["breaker"] = str(stack.breaker.state)
    failed = [name for name, result in ordered.items() if not result["ok"]]
    document = {
        "ready": not failed,
        "backend": stack.backend.name,
        "checks": ordered,
        "failed": failed,
    }
    return not failed, document
