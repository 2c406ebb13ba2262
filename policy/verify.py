"""Re-hash stored artifacts and compare them with their stored SHA256 (``verify`` command).

:func:`verify_artifacts` streams every artifact (``builds/<id>.<ext>``) of the chosen buckets
through SHA256, never holding one in memory, and yields one :class:`VerifyResult` each:
``ok``, ``corrupt`` (hash differs: logged, counted in ``pagewright_artifact_corrupt_total``
and marked corrupt in the catalog when one is given) or ``missing-hash`` (the artifact has no
full-object SHA256, e.g. it predates validation or came from a composite multipart upload).
Artifacts deleted while the run lists them are skipped. It reads the translator directly, so
the staging area of :mod:`policy.validation` is not visited.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from gateway.errors import S3Error
from policy.model import Catalog, parse_artifact_key
from policy.validation import STAGING_PREFIX, report_corrupt, sha256_hex
from translators.base import Backend, GetOptions, ListQuery, RequestContext

VerifyStatus = Literal["ok", "corrupt", "missing-hash"]
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
    corrupt_keys: list[str] = field(default_factory=list)

    def add(self, result: VerifyResult) -> None:
        if result.status == "ok":
            self.ok += 1
        elif result.status == "corrupt":
            self.corrupt += 1
            self.corrupt_keys.append(f"{result.site}/{result.key}")
        else:
            self.missing_hash += 1

    def text(self) -> str:
        total = self.ok + self.corrupt + self.missing_hash
        return (
            f"verified {total} artifacts: {self.ok} ok, {self.corrupt} corrupt, "
            f"{self.missing_hash} without a stored SHA256"
        )


async def verify_artifacts(
    backend: Backend,
    *,
    bucket: str | None = None,
    catalog: Catalog | None = None,
) -> AsyncIterator[VerifyResult]:
    """Yield a result per artifact of ``bucket`` (or of every bucket), in key order."""
    buckets = [bucket] if bucket is not None else [b.name for b in await backend.list_buckets(_CTX)]
    for site in buckets:
        start_after = ""
        while True:
            page = await backend.list_objects(
                _CTX, site, ListQuery(prefix="builds/", start_after=start_after)
            )
            for listed in page.objects:
                if parse_artifact_key(listed.key) is None or listed.key.startswith(STAGING_PREFIX):
                    continue
                result = await _verify_one(backend, site, listed.key, catalog)
                if result is not None:
                    yield result
            if page.next_start_after is None:
                break
            start_after = page.next_start_after


async def _verify_one(
    backend: Backend, site: str, key: str, catalog: Catalog | None
) -> VerifyResult | None:
    try:
        opened = await backend.get_object(_CTX, site, key, GetOptions())
    except S3Error as error:
        if error.code == "NoSuchKey":
            return None
        raise
    expected = sha256_hex(opened.info)
    if expected is None:
        await opened.body.aclose()
        return VerifyResult(site, key, opened.info.size, "missing-hash", None, None)
    sha = hashlib.sha256()
    try:
        async for chunk in opened.body:
            sha.update(chunk)
    finally:
        await opened.body.aclose()
    actual = sha.hexdigest()
    if actual == expected:
        return VerifyResult(site, key, opened.info.size, "ok", expected, actual)
    await report_corrupt(catalog, site, key, expected, actual)
    return VerifyResult(site, key, opened.info.size, "corrupt", expected, actual)
