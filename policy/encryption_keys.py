"""Per-object data keys of server-side encryption (:mod:`policy.encryption`): sealing a new
one for a write and opening the sealed one of a stored object or upload.

:class:`DataKeys` wraps a random data key under a key-encryption key (a KEK of the key ring
for SSE-S3 and SSE-KMS, the client's key for SSE-C) and gives the reserved metadata entry
that keeps it (:class:`~policy.encryption_meta.Sealed`); opening unwraps it again. Without a
key ring every SSE-S3/SSE-KMS seal is refused (501), and so is every open of such an object
(500); SSE-C needs no key ring.
"""

from __future__ import annotations

from core.errors import S3Error
from core.sse import SSE_C, CustomerKey, EncryptionInfo, EncryptionRequest
from policy.encryption_meta import Sealed, check_customer_key
from policy.sse_crypto import (
    CUSTOMER_KEK_ID,
    Keyring,
    TamperedError,
    new_data_key,
    unwrap_key,
    wrap_key,
)


class DataKeys:
    """Seals and opens data keys with ``keyring`` (None: the gateway has no master key)."""

    def __init__(self, keyring: Keyring | None) -> None:
        self.keyring = keyring

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise S3Error(
                "NotImplemented",
                "Server-side encryption is not available: the gateway has no master key.",
            )
        return self.keyring

    def seal(self, request: EncryptionRequest) -> tuple[bytes, str, EncryptionInfo]:
        """A new data key, its :data:`~policy.encryption_meta.META_KEY` entry and the
        encryption reported, for a write asking ``request``.

        Raises ``S3Error``: ``InvalidRequest`` for SSE-C without the client's key,
        ``NotImplemented`` without a key ring, and the key ring's errors for a KMS key id
        it does not hold.
        """
        data_key = new_data_key()
        if request.mode == SSE_C:
            customer = request.customer_key
            if customer is None:
                raise S3Error(
                    "InvalidRequest",
                    "The object is stored with a customer-provided key: the request must "
                    "include the appropriate encryption parameters.",
                )
            wrapped = wrap_key(customer.key, CUSTOMER_KEK_ID, data_key)
            entry = Sealed.dump(SSE_C, CUSTOMER_KEK_ID, wrapped, None, customer.md5)
            return data_key, entry, EncryptionInfo(SSE_C, customer_key_md5=customer.md5)
        kek, kms_key_id = self._keyring().current(request.mode, request.kms_key_id)
        wrapped = wrap_key(kek.key, kek.id, data_key)
        entry = Sealed.dump(request.mode, kek.id, wrapped, kms_key_id, None)
        return data_key, entry, EncryptionInfo(request.mode, kms_key_id)

    def open(self, sealed: Sealed, key: CustomerKey | None) -> bytes:
        """The data key of an object sealed as ``sealed``, read with SSE-C key ``key``.

        Raises ``S3Error``: S3's SSE-C key checks (:func:`check_customer_key`),
        ``AccessDenied`` for an SSE-C key that does not open it, ``InternalError`` for a KEK
        the key ring does not hold; ``TamperedError`` when the KEK does not open it.
        """
        check_customer_key(sealed.info(), key)
        if sealed.mode == SSE_C:
            assert key is not None
            data_key = unwrap_key(key.key, CUSTOMER_KEK_ID, sealed.wrapped)
            if data_key is None:
                raise S3Error("AccessDenied", "The provided customer key does not open the object.")
            return data_key
        kek = self.keyring.find(sealed.kek_id) if self.keyring is not None else None
        if kek is None:
            raise S3Error(
                "InternalError",
                f"The object is sealed under key {sealed.kek_id}, which this gateway's key "
                "ring does not hold.",
            )
        data_key = unwrap_key(kek.key, kek.id, sealed.wrapped)
        if data_key is None:
            raise TamperedError("its data key does not open")
        return data_key
