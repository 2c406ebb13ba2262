"""The metadata side of server-side encryption (:mod:`policy.encryption`): the reserved
entry an encrypted object or upload carries (:class:`Sealed`), the plaintext view of what a
translator reports (:func:`plain_view`), S3's SSE-C key checks (:func:`check_customer_key`)
and a site's default encryption (:class:`EncryptionDefaults`)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final

from core import checksums
from core.errors import S3Error
from core.reserved import SITE_STATE_PREFIX
from core.sse import (
    AES256,
    AWS_KMS,
    SSE_C,
    STORED_ENCRYPTION_KEY,
    CustomerKey,
    EncryptionInfo,
    EncryptionRequest,
)
from policy.model import SitePolicy
from policy.sse_crypto import Stream, TamperedError, mode_of, plain_size
from translators.base import ObjectInfo, PartInfo, UploadInfo

#: The reserved user-metadata entry holding an encrypted object's sealed data key.
META_KEY: Final = STORED_ENCRYPTION_KEY
#: The marker object of a bucket that has held an encrypted object (its listings then show
#: plaintext sizes: policy.encryption_listing).
MARKER_KEY: Final = SITE_STATE_PREFIX + "encrypted"
#: Where an encrypted multipart upload's sealed data key is kept while it is in progress
#: (policy.encryption_uploads).
UPLOAD_RECORDS: Final = SITE_STATE_PREFIX + "sse-uploads/"

#: The bucket default for a site: what a write asking for nothing is encrypted with.
DefaultLookup = Callable[[str], Awaitable[EncryptionRequest | None]]


async def no_default(bucket: str) -> EncryptionRequest | None:
    return None


class EncryptionDefaults:
    """A :data:`DefaultLookup` reading a site's ``default_encryption`` and
    ``default_kms_key_id`` from its policy (``policy_of``: ``PolicyResolver.for_site``)."""

    def __init__(self, policy_of: Callable[[str], Awaitable[SitePolicy]]) -> None:
        self._policy_of = policy_of

    async def __call__(self, bucket: str) -> EncryptionRequest | None:
        policy = await self._policy_of(bucket)
        if policy.default_encryption == AES256:
            return EncryptionRequest(AES256)
        if policy.default_encryption == AWS_KMS:
            return EncryptionRequest(AWS_KMS, kms_key_id=policy.default_kms_key_id)
        return None


class Sealed:
    """An object's encryption as stored: the parsed :data:`META_KEY` entry."""

    def __init__(self, raw: str) -> None:
        try:
            data = json.loads(raw)
            self.mode = mode_of(str(data["m"]))
            self.kek_id = str(data["k"])
            self.wrapped = base64.b64decode(str(data["w"]), validate=True)
            self.kms_key_id: str | None = data.get("kms")
            self.customer_md5: str | None = data.get("c")
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise TamperedError("unreadable encryption metadata") from None

    @staticmethod
    def dump(
        mode: str, kek_id: str, wrapped: bytes, kms_key_id: str | None, customer_md5: str | None
    ) -> str:
        data: dict[str, str] = {"v": "1", "m": mode, "k": kek_id}
        data["w"] = base64.b64encode(wrapped).decode()
        if kms_key_id is not None:
            data["kms"] = kms_key_id
        if customer_md5 is not None:
            data["c"] = customer_md5
        return json.dumps(data, separators=(",", ":"))

    def info(self) -> EncryptionInfo:
        return EncryptionInfo(self.mode, self.kms_key_id, self.customer_md5)


def sealed_entry(user_metadata: dict[str, str]) -> Sealed | None:
    raw = user_metadata.get(META_KEY)
    return None if raw is None else Sealed(raw)


def without_meta(user_metadata: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in user_metadata.items() if k != META_KEY}


def stored_streams(info: ObjectInfo) -> list[Stream]:
    """The stored streams of ``info`` (as the translator reports it)."""
    if info.parts:
        return [Stream(p.part_number, plain_size(p.size), p.size) for p in info.parts]
    return [Stream(0, plain_size(info.size), info.size)]


def plain_view(info: ObjectInfo, sealed: Sealed | None = None) -> ObjectInfo:
    """``info`` as a client sees it: for an encrypted object (its reserved entry, or
    ``sealed`` when the translator's answer lacks the metadata) the plaintext sizes, the
    recombined FULL_OBJECT checksum and its encryption; the reserved entry removed."""
    sealed = sealed or sealed_entry(info.user_metadata)
    if sealed is None:
        return info
    parts = tuple(replace(p, size=plain_size(p.size)) for p in info.parts)
    size = sum(p.size for p in parts) if parts else plain_size(info.size)
    sums = info.checksums
    if parts and info.checksum_type == "FULL_OBJECT" and len(sums) == 1:
        algorithm = next(iter(sums))
        if all(algorithm in p.checksums for p in parts):
            sums = {
                algorithm: checksums.combine_full_object(
                    algorithm, [(p.checksums[algorithm], p.size) for p in parts]
                )
            }
    return replace(
        info,
        size=size,
        parts=parts,
        checksums=dict(sums),
        user_metadata=without_meta(info.user_metadata),
        encryption=sealed.info(),
    )


def upload_view(upload: UploadInfo, sealed: Sealed | None) -> UploadInfo:
    if sealed is None:
        return upload
    metadata = replace(upload.metadata, user_metadata=without_meta(upload.metadata.user_metadata))
    return replace(upload, metadata=metadata, encryption=sealed.info())


def part_view(part: PartInfo) -> PartInfo:
    return replace(part, size=plain_size(part.size))


def check_customer_key(info: EncryptionInfo | None, key: CustomerKey | None) -> None:
    """Whether a read or part upload may use ``key`` on an object or upload encrypted as
    ``info``: S3's errors when an SSE-C key is missing, wrong, or not applicable."""
    if info is not None and info.mode == SSE_C:
        if key is None:
            raise S3Error(
                "InvalidRequest",
                "The object was stored using a form of Server Side Encryption. The correct "
                "parameters must be provided to retrieve the object.",
            )
        if not key.matches(info.customer_key_md5 or ""):
            raise S3Error(
                "AccessDenied",
                "The provided customer key does not match the key the object was stored with.",
            )
    elif key is not None:
        raise S3Error(
            "InvalidRequest", "The encryption parameters are not applicable to this object."
        )


def encryption_of(info: EncryptionInfo | None, key: CustomerKey | None) -> EncryptionRequest | None:
    """The request that stores a copy encrypted as ``info`` says (SSE-C: with ``key``)."""
    if info is None:
        return None
    if info.mode == SSE_C:
        return EncryptionRequest(SSE_C, customer_key=key)
    return EncryptionRequest(info.mode, kms_key_id=info.kms_key_id)
