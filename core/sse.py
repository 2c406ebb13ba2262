"""Server-side encryption as values: what a request asks for and what an object reports.

The gateway parses the ``x-amz-server-side-encryption*`` headers into these
(:mod:`gateway.sse_headers`), the encryption wrapper (:mod:`policy.encryption`) acts on them,
and a handler renders an object's :class:`EncryptionInfo` back as S3's response headers.
A :class:`CustomerKey` holds a secret: its ``repr`` never shows the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final, Literal

#: The modes: SSE-S3 (``AES256``), SSE-KMS (``aws:kms``) and SSE-C (customer keys).
SseMode = Literal["AES256", "aws:kms", "SSE-C"]
AES256: Final = "AES256"
AWS_KMS: Final = "aws:kms"
SSE_C: Final = "SSE-C"
#: The one algorithm SSE-C accepts.
CUSTOMER_ALGORITHM: Final = "AES256"
#: The reserved user-metadata entry of an object the gateway stored encrypted
#: (``policy.encryption``): its stored bytes are ciphertext, while its ETag and checksums
#: are the plaintext's, so they cannot be checked against the stored bytes.
STORED_ENCRYPTION_KEY: Final = "pagewright-sse"


@dataclass(frozen=True)
class CustomerKey:
    """An SSE-C key: 32 raw bytes and the base64 MD5 the client sent (already checked)."""

    key: bytes = field(repr=False)
    md5: str

    def matches(self, md5: str) -> bool:
        """Whether this key is the one whose base64 MD5 is ``md5`` (constant time)."""
        return hmac.compare_digest(self.md5.encode(), md5.encode())

    @staticmethod
    def md5_of(key: bytes) -> str:
        return base64.b64encode(hashlib.md5(key, usedforsecurity=False).digest()).decode()


@dataclass(frozen=True)
class EncryptionRequest:
    """How a write asks its object to be encrypted: ``mode`` and, for SSE-KMS, the key id
    (None: the key ring's default), for SSE-C the customer's key."""

    mode: SseMode
    kms_key_id: str | None = None
    customer_key: CustomerKey | None = None


@dataclass(frozen=True)
class EncryptionInfo:
    """How a stored object is encrypted, as S3 reports it: ``mode``, the KMS key id of an
    SSE-KMS object, the base64 key MD5 of an SSE-C object."""

    mode: SseMode
    kms_key_id: str | None = None
    customer_key_md5: str | None = None
