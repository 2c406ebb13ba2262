"""A CompleteMultipartUpload repeated after it succeeded answers as the first one did.

SDKs retry a Complete whose reply was lost (a timeout, a dropped connection). The upload is
gone by then, so the retry would get ``NoSuchUpload`` for an upload that succeeded; S3
instead answers it 200 with the object's ETag for a while. The gateway keeps that promise,
for every translator and across replicas sharing the storage:

* When a completion succeeds, a small JSON record (key, upload id, ETag, size, checksums,
  completion time) is written into the bucket's reserved staging area,
  ``.pagewright-staging/completed/<sha256 of the upload id>``, through the bare translator
  (so it is never indexed or counted against a quota). Every translator can hold an object,
  and every replica reads the same storage, whatever the catalog.
* A Complete the stack answers ``NoSuchUpload`` is looked up there. It is answered with the
  recorded object (its ETag, size and checksums, as the first reply had them) when the
  record names the same key and upload id, is at most :data:`RECORD_SECONDS` old (one hour),
  and the request names the same parts: the multipart ETag of the part ETags it gives is the
  recorded ETag. It answers so even if the key was written or deleted since, as S3 does;
  nothing is written again. Otherwise the ``NoSuchUpload`` stands.
* Records are hidden from clients like every reserved key, removed with their bucket
  (policy.validation), and deleted by the ``sweep-staging`` job once they are over six hours
  old (policy.housekeeping), so the area holds at most a few hours of completions.

Writing the record is best effort: when it fails (logged), the completion still succeeds,
and a retry gets ``NoSuchUpload`` as it would without this wrapper.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast, get_args

from core.checksums import ChecksumType
from core.context import RequestContext
from core.digest import HashingPayload, multipart_etag
from core.errors import S3Error
from core.reserved import STAGING_PREFIX
from core.sse import EncryptionInfo, SseMode
from core.streams import BytesBody
from policy.forwarding import BACKEND_METHODS, ForwardingBackend
from policy.record_objects import RecordTooLarge, read_record
from translators.base import (
    Backend,
    CompletedPart,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
)
from translators.multipart import unquote_etag

log = logging.getLogger("pagewright.completed_uploads")

#: How long after its completion a repeated Complete is answered from the record.
RECORD_SECONDS: Final = 3600
RECORD_PREFIX: Final = f"{STAGING_PREFIX}completed/"
#: A record is a few hundred bytes; anything much larger is not one.
MAX_RECORD_BYTES: Final = 64 * 1024


def record_key(upload_id: str) -> str:
    """Where the record of the completed upload ``upload_id`` lives in its bucket."""
    return RECORD_PREFIX + hashlib.sha256(upload_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class CompletedUpload:
    """The record of one completed upload: what its Complete answered."""

    key: str
    upload_id: str
    etag: str
    size: int
    checksums: dict[str, str]
    checksum_type: ChecksumType | None
    completed_at: datetime
    encryption: EncryptionInfo | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "key": self.key,
                "upload_id": self.upload_id,
                "etag": self.etag,
                "size": self.size,
                "checksums": self.checksums,
                "checksum_type": self.checksum_type,
                "completed_at": self.completed_at.isoformat(),
                "encryption": None if self.encryption is None else asdict(self.encryption),
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CompletedUpload:
        """The record in ``data``; ``ValueError``, ``KeyError`` or ``TypeError`` if it is
        not one."""
        raw: dict[str, Any] = json.loads(data)
        completed_at = datetime.fromisoformat(str(raw["completed_at"]))
        if completed_at.tzinfo is None:
            raise ValueError("completed_at has no time zone")
        sealed = raw.get("encryption")
        encryption = None
        if sealed is not None:
            mode = str(sealed["mode"])
            if mode not in get_args(SseMode):
                raise ValueError(f"unknown encryption mode {mode!r}")
            encryption = EncryptionInfo(
                cast(SseMode, mode),
                _optional(sealed.get("kms_key_id")),
                _optional(sealed.get("customer_key_md5")),
            )
        return cls(
            key=str(raw["key"]),
            upload_id=str(raw["upload_id"]),
            etag=str(raw["etag"]),
            size=int(raw["size"]),
            checksums={str(a): str(v) for a, v in dict(raw["checksums"]).items()},
            checksum_type=cast(ChecksumType | None, raw["checksum_type"]),
            completed_at=completed_at,
            encryption=encryption,
        )

    def info(self) -> ObjectInfo:
        """The object as the first Complete described it."""
        return ObjectInfo(
            key=self.key,
            size=self.size,
            etag=self.etag,
            last_modified=self.completed_at,
            checksums=dict(self.checksums),
            checksum_type=self.checksum_type,
            encryption=self.encryption,
        )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


class CompletedUploadsBackend(
    ForwardingBackend, passes_through=BACKEND_METHODS - {"complete_multipart_upload"}
):
    """Answers a repeated CompleteMultipartUpload from the record of the first (module
    docstring). ``records`` is the bare translator the records are kept in."""

    def __init__(
        self, inner: Backend, records: Backend, *, record_seconds: float = RECORD_SECONDS
    ) -> None:
        super().__init__(inner)
        self.records = records
        self.record_seconds = record_seconds

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        try:
            info = await self.inner.complete_multipart_upload(
                ctx, bucket, key, upload_id, parts, conditions
            )
        except S3Error as error:
            if error.code != "NoSuchUpload":
                raise
            record = await self._load(ctx, bucket, upload_id)
            if record is None or not self._repeats(record, key, upload_id, parts):
                raise
            return record.info()
        await self._save(ctx, bucket, upload_id, info)
        return info

    def _repeats(
        self, record: CompletedUpload, key: str, upload_id: str, parts: list[CompletedPart]
    ) -> bool:
        age = datetime.now(UTC) - record.completed_at
        if not (
            record.key == key
            and record.upload_id == upload_id
            and timedelta(0) <= age <= timedelta(seconds=self.record_seconds)
        ):
            return False
        try:
            return multipart_etag(unquote_etag(part.etag) for part in parts) == record.etag
        except ValueError:  # an ETag that is no hex MD5 names no part of this upload
            return False

    async def _save(
        self, ctx: RequestContext, bucket: str, upload_id: str, info: ObjectInfo
    ) -> None:
        record = CompletedUpload(
            key=info.key,
            upload_id=upload_id,
            etag=info.etag,
            size=info.size,
            checksums=dict(info.checksums),
            checksum_type=info.checksum_type,
            completed_at=datetime.now(UTC),
            encryption=info.encryption,
        )
        data = record.to_json()
        try:
            await self.records.put_object(
                ctx,
                bucket,
                record_key(upload_id),
                HashingPayload(BytesBody(data), len(data), ()),
                WriteMetadata({"content-type": "application/json"}),
                WriteConditions(),
            )
        except Exception:
            log.exception(
                "could not record a completed upload: a retry of its Complete would get "
                "NoSuchUpload",
                extra={"bucket": bucket, "upload_id": upload_id},
            )

    async def _load(
        self, ctx: RequestContext, bucket: str, upload_id: str
    ) -> CompletedUpload | None:
        """The record of ``upload_id`` in ``bucket``, or None (absent or unreadable)."""
        try:
            data = await read_record(
                self.records,
                ctx,
                bucket,
                record_key(upload_id),
                MAX_RECORD_BYTES,
                missing=("NoSuchKey", "NoSuchBucket"),
            )
        except RecordTooLarge:
            return None
        if data is None:
            return None
        try:
            return CompletedUpload.from_json(data)
        except (ValueError, KeyError, TypeError):
            log.warning(
                "an unreadable completed-upload record was ignored",
                extra={"bucket": bucket, "upload_id": upload_id},
            )
            return None
