"""Re-hash stored artifacts and compare them with their stored SHA256 (``verify`` command).

:func:`verify_artifacts` streams every artifact (``builds/<id>.<ext>``) of the chosen buckets
through SHA256, never holding one in memory, and yields one :class:`VerifyResult` each:
``ok``, ``corrupt`` (hash differs: logged, counted in ``pagewright_artifact_corrupt_total``
and marked corrupt in the catalog when one is given), ``missing-hash`` (the artifact has no
full-object SHA256, e.g. it predates validation or came from a composite multipart upload)
or ``customer-key`` (stored with SSE-C: only its owner's key reads it). Encrypted artifacts
are read decrypted when ``backend`` is a :class:`policy.encryption.EncryptingBackend` (the
``verify`` command and the scrub give one).
Artifacts deleted while the run lists them are skipped. It reads the translator directly, so
the reserved areas of :mod:`policy.validation` are not visited. A :class:`Throttle` bounds
the read rate (the background scrub of :mod:`policy.scrub` uses one).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio

from core.context import RequestContext
from core.errors import S3Error
from core.reserved import is_reserved_key
from policy.metrics import Metrics
from policy.model import Catalog, parse_artifact_key
from policy.validation_metrics import report_corrupt
from policy.validation_streams import sha256_hex
from translators.base import Backend, GetOptions, ListQuery

VerifyStatus = Literal["ok", "corrupt", "missing-hash", "customer-key"]
_CTX = RequestContext(request_id="verify", principal="pagewright-verify")


@dataclass(frozen=True)
class VerifyResult:
    """One artifact's outcome; hashes are hex (``expected`` None when none is stored)."""

    site: str
    key: str
    size: int
    status: VerifyStatus
    expected: str | None
    actual: str | None

    def line(self) -> str:
        detail = ""
        if self.status == "corrupt":
            detail = f" expected={self.expected} actual={self.actual}"
        return f"{self.status:<12} {self.site}/{self.key} ({self.size} bytes){detail}"


@dataclass
class VerifySummary:
    """Counts of a run; ``corrupt_keys`` lists ``site/key`` of every corrupt artifact."""

    ok: int = 0
    corrupt: int = 0
    missing_hash: int = 0
    customer_key: int = 0  # SSE-C artifacts: only their owner's key reads them
    corrupt_keys: list[str] = field(default_factory=list)

    def add(self, result: VerifyResult) -> None:
        if result.status == "ok":
            self.ok += 1
        elif result.status == "corrupt":
            self.corrupt += 1
            self.corrupt_keys.append(f"{result.site}/{result.key}")
        elif result.status == "customer-key":
            self.customer_key += 1
        else:
            self.missing_hash += 1

    def text(self) -> str:
        total = self.ok + self.corrupt + self.missing_hash + self.customer_key
        text = (
            f"verified {total} artifacts: {self.ok} ok, {self.corrupt} corrupt, "
            f"{self.missing_hash} without a stored SHA256"
        )
        if self.customer_key:
            text += f", {self.customer_key} encrypted with a customer key (not readable)"
        return text


async def verify_artifacts(
    backend: Backend,
    *,
    bucket: str | None = None,
    catalog: Catalog | None = None,
    throttle: Throttle | None = None,
) -> AsyncIterator[VerifyResult]:
    """Yield a result per artifact of ``bucket`` (or of every bucket), in key order; reads
    go through ``throttle`` when one is given."""
    buckets = [bucket] if bucket is not None else [b.name for b in await backend.list_buckets(_CTX)]
    for site in buckets:
        async for key in artifact_keys(backend, site):
            result = await verify_artifact(backend, site, key, catalog, throttle)
            if result is not None:
                yield result


async def artifact_keys(backend: Backend, site: str) -> AsyncIterator[str]:
    """Every artifact key of ``site``, in key order (the staging area is skipped)."""
    start_after = ""
    while True:
        page = await backend.list_objects(
            _CTX, site, ListQuery(prefix="builds/", start_after=start_after)
        )
        for listed in page.objects:
            if parse_artifact_key(listed.key) is not None and not is_reserved_key(listed.key):
                yield listed.key
        if page.next_start_after is None:
            return
        start_after = page.next_start_after


async def verify_artifact(
    backend: Backend,
    site: str,
    key: str,
    catalog: Catalog | None = None,
    throttle: Throttle | None = None,
    *,
    metrics: Metrics | None = None,
) -> VerifyResult | None:
    """Re-hash one artifact (None if it vanished); a corrupt one is reported (counted in
    ``metrics`` when given) and, with a catalog, marked corrupt there."""
    try:
        opened = await backend.get_object(_CTX, site, key, GetOptions())
    except S3Error as error:
        if error.code == "NoSuchKey":
            return None
        if error.code == "InvalidRequest":  # an SSE-C artifact needs its owner's key
            info = await backend.head_object(_CTX, site, key)
            if info.encryption is not None and info.encryption.mode == "SSE-C":
                return VerifyResult(site, key, info.size, "customer-key", None, None)
        raise
    expected = sha256_hex(opened.info)
    if expected is None:
        await opened.body.aclose()
        return VerifyResult(site, key, opened.info.size, "missing-hash", None, None)
    sha = hashlib.sha256()
    try:
        async for chunk in opened.body:
            sha.update(chunk)
            if throttle is not None:
                await throttle.take(len(chunk))
    finally:
        await opened.body.aclose()
    actual = sha.hexdigest()
    if actual == expected:
        return VerifyResult(site, key, opened.info.size, "ok", expected, actual)
    await report_corrupt(catalog, site, key, expected, actual, metrics)
    return VerifyResult(site, key, opened.info.size, "corrupt", expected, actual)


class Throttle:
    """Paces reads to ``bytes_per_second`` on average, in bursts of at most one second's
    worth: :meth:`take` sleeps while more was read than the rate allows."""

    def __init__(
        self,
        bytes_per_second: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if bytes_per_second <= 0:
            raise ValueError("the rate must be positive")
        self._rate = float(bytes_per_second)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._rate
        self._stamp = clock()

    async def take(self, size: int) -> None:
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= size
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._rate)
