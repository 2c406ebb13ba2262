"""Lock records: each locked version's lock kept with the data, so ``reindex`` restores it.

A version's retention and legal hold live in the catalog (``policy.object_lock``); a lost
catalog would lose them, and with them the promise that a ``COMPLIANCE`` version cannot be
deleted. So :class:`LockRecords` keeps one small object per locked version in the site's own
bucket, at :func:`record_key` (``.pagewright-site/locks/<SHA-256 of the key>/<version id>``:
S3 keys are any UTF-8 up to 1024 bytes, so the key itself is inside the record, never in
its name). Like the site state record (``policy.site_state``), records live in the reserved
area (S3 clients can neither list, read, write nor delete them), are written through the
translator below every wrapper (never indexed, counted or versioned), are read back by
``reindex`` (``policy.reindex_locks``) and travel with ``migrate`` like any object.

A record holds the version's **whole** lock: its retention and its legal hold, wherever the
catalog keeps that hold (the row's pin for the latest version, else its ``object_locks``
row), so a hold moving between pin and row leaves the record as it is.

Format: JSON ``{"format": "pagewright-object-lock", "version": 1, "key", "version_id",
"mode": "GOVERNANCE" | "COMPLIANCE" | null, "retain_until": ISO 8601 | null,
"legal_hold": bool}``. A version with no retention and no hold has no record.

**Failure rule.** The catalog is the live state and changes first; the record follows.
When a record cannot be written or removed after a lock was set or changed, the request
fails with ``503 ServiceUnavailable`` (:func:`record_failed`) rather than reporting success
for a lock that a lost catalog would lose: the lock already holds (the catalog enforces it),
and repeating the request writes the record again (every lock change is idempotent). We
chose this over writing the record first because a new version's lock can only be recorded
once the version exists (its id comes from the commit), so one order serves every path.
The one exception: a record left behind by a **deleted** version is only logged: it
protects nothing, and ``reindex`` removes records of versions that are gone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import anyio

from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.object_lock import MODES, LockMode, ObjectLock
from core.reserved import SITE_STATE_PREFIX
from core.streams import BytesBody
from policy.record_objects import RecordTooLarge, parse_record, read_record
from translators.base import Backend, ListQuery, WriteConditions, WriteMetadata

log = logging.getLogger(__name__)

LOCKS_PREFIX: Final = SITE_STATE_PREFIX + "locks/"
FORMAT: Final = "pagewright-object-lock"
VERSION: Final = 1
#: A record is a few hundred bytes (a 1024-byte key, JSON-escaped, at most ~6 KiB).
MAX_RECORD_BYTES: Final = 64 * 1024
_CONTEXT = RequestContext(request_id="lock-records", principal="pagewright-lock-records")
_PLAIN_VERSION = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_READ_CONCURRENCY = 16


class LockRecordError(ValueError):
    """A lock record that is not valid JSON of this format and version."""


def record_key(key: str, version_id: str) -> str:
    """Where the record of ``key``'s version ``version_id`` lives (a reserved key)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    name = version_id if _PLAIN_VERSION.fullmatch(version_id) else "~" + version_id.encode().hex()
    return f"{LOCKS_PREFIX}{digest}/{name}"


def record_failed(error: Exception) -> S3Error:
    """The answer to a request whose lock holds but could not be recorded."""
    reason = error.message if isinstance(error, S3Error) else type(error).__name__
    return S3Error(
        "ServiceUnavailable",
        f"The object lock is set but its record could not be stored ({reason}); "
        "repeat the request.",
    )


@dataclass(frozen=True)
class LockRecord:
    """One version's whole lock (see the module docstring)."""

    key: str
    version_id: str
    lock: ObjectLock

    def to_json(self) -> bytes:
        until = self.lock.retain_until
        document = {
            "format": FORMAT,
            "version": VERSION,
            "key": self.key,
            "version_id": self.version_id,
            "mode": self.lock.mode,
            "retain_until": None if until is None else until.isoformat(),
            "legal_hold": bool(self.lock.legal_hold),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LockRecord:
        """Parse a record; :class:`LockRecordError` unless it is one of this format."""
        try:
            document = parse_record(data, FORMAT, VERSION)
        except ValueError as error:
            raise LockRecordError(str(error)) from None
        try:
            return cls(_text(document, "key"), _text(document, "version_id"), _lock(document))
        except (KeyError, TypeError, ValueError) as error:
            raise LockRecordError(f"malformed record: {error}") from None


def _text(document: dict[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string")
    return value


def _lock(document: dict[str, Any]) -> ObjectLock:
    mode, until, hold = document["mode"], document["retain_until"], document["legal_hold"]
    if (mode is None) != (until is None):
        raise ValueError("mode and retain_until go together")
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    if not isinstance(hold, bool):
        raise TypeError("legal_hold must be a boolean")
    moment = None if until is None else datetime.fromisoformat(str(until))
    if moment is not None and moment.tzinfo is None:
        raise ValueError("retain_until has no time zone")
    return ObjectLock(cast("LockMode | None", mode), moment, hold)


def _empty(lock: ObjectLock) -> bool:
    return lock.mode is None and lock.retain_until is None and not lock.legal_hold


class LockRecords:
    """The lock records of every site in ``backend`` (the translator, below every wrapper)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def write(self, site: str, key: str, version_id: str, lock: ObjectLock) -> None:
        """Record ``lock`` as the version's whole lock (an empty one removes the record).
        A failure raises :func:`record_failed`'s 503 (see the module docstring)."""
        try:
            if _empty(lock):
                await self._remove(site, key, version_id)
                return
            data = LockRecord(key, version_id, lock).to_json()
            await self._backend.put_object(
                _CONTEXT,
                site,
                record_key(key, version_id),
                HashingPayload(BytesBody(data), len(data), ("SHA256",)),
                WriteMetadata({"content-type": "application/json"}),
                WriteConditions(),
            )
        except Exception as error:
            log.error(
                "could not store an object lock record; reindex would not restore the lock",
                extra={"site": site, "key": key, "version_id": version_id},
            )
            raise record_failed(error) from error

    async def forget(self, site: str, key: str, version_id: str) -> None:
        """Remove the record of a deleted version; a failure is only logged."""
        try:
            await self._remove(site, key, version_id)
        except Exception:
            log.exception(
                "could not remove the lock record of a deleted version (reindex removes it)",
                extra={"site": site, "key": key, "version_id": version_id},
            )

    async def _remove(self, site: str, key: str, version_id: str) -> None:
        await self.remove_stored(site, record_key(key, version_id))

    async def remove_stored(self, site: str, name: str) -> None:
        """Remove the record stored at ``name`` (a key under :data:`LOCKS_PREFIX`)."""
        try:
            await self._backend.delete_object(_CONTEXT, site, name)
        except S3Error as error:
            if error.code != "NoSuchKey":
                raise

    async def names(self, site: str) -> AsyncIterator[str]:
        """The key of every record stored in ``site``'s bucket, in key order."""
        start_after = ""
        while True:
            page = await self._backend.list_objects(
                _CONTEXT, site, ListQuery(prefix=LOCKS_PREFIX, start_after=start_after)
            )
            for found in page.objects:
                yield found.key
            if page.next_start_after is None:
                return
            start_after = page.next_start_after

    async def read_many(
        self, site: str, names: list[str]
    ) -> dict[str, LockRecord | LockRecordError]:
        """The records stored at ``names`` (a few read at a time), or why one is unreadable;
        records that vanished meanwhile are left out. Backend errors propagate."""
        found: dict[str, LockRecord | LockRecordError] = {}
        limiter = anyio.CapacityLimiter(_READ_CONCURRENCY)

        async def read(name: str) -> None:
            async with limiter:
                try:
                    record = await self._read(site, name)
                except LockRecordError as error:
                    found[name] = error
                else:
                    if record is not None:
                        found[name] = record

        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(read, name)
        return found

    async def _read(self, site: str, name: str) -> LockRecord | None:
        try:
            data = await read_record(self._backend, _CONTEXT, site, name, MAX_RECORD_BYTES)
        except RecordTooLarge as error:
            raise LockRecordError(str(error)) from None
        if data is None:
            return None
        record = LockRecord.from_json(data)
        if record_key(record.key, record.version_id) != name:
            raise LockRecordError(f"{name} holds the record of another version")
        return record
