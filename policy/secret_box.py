"""Secrets at rest: :class:`SecretBox` seals and opens them with the server's master key.

The catalog keeps S3 secret keys sealed (they must be recoverable: SigV4 signs with the secret
itself, so a hash cannot verify it), and session tokens are sealed so that any replica holding
the same master key can open them. Sealing is Fernet (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` package): a sealed value that was altered, or sealed under another key,
does not open.

The master key comes from configuration (``master_key``, ``PWG_MASTER_KEY``: 32 url-safe
base64 bytes, as ``pagewright-gateway`` prints with ``Fernet.generate_key``); without one it is
generated once and kept in ``<data_dir>/master.key`` (mode 0600). Replicas sharing a catalog
must be given the same key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from policy.private_files import write_private

MASTER_KEY_FILE = "master.key"


class SealedValueError(ValueError):
    """A sealed value that does not open under this key (altered, or another key's)."""


@dataclass(frozen=True)
class SecretBox:
    """Seals and opens short secrets under one master key. Never logs what it holds."""

    _fernet: Fernet
    _master: bytes = field(default=b"", repr=False)

    @classmethod
    def from_key(cls, key: str | bytes) -> SecretBox:
        """A box over ``key``; ``ValueError`` when it is not 32 url-safe base64 bytes."""
        try:
            return cls(Fernet(key), base64.urlsafe_b64decode(key))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                "the master key must be 32 url-safe base64-encoded bytes "
                "(python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from exc

    def seal(self, plain: bytes) -> str:
        return self._fernet.encrypt(plain).decode("ascii")

    def open(self, sealed: str, ttl_seconds: int | None = None) -> bytes:
        """The plain bytes of ``sealed``; :class:`SealedValueError` if it does not open (or
        is older than ``ttl_seconds``)."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii"), ttl=ttl_seconds)
        except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
            raise SealedValueError("the sealed value does not open under this key") from exc

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key derived from the master key for ``purpose`` (HKDF-SHA256), so other
        uses of the master key (server-side encryption, ``policy.sse_crypto``) never share
        its bytes with the seals. ``ValueError`` for a box not made by :meth:`from_key`."""
        if not self._master:
            raise ValueError("this box holds no master key to derive from")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        return hkdf.derive(self._master)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def load_master_key(data_dir: Path, configured: str | None) -> SecretBox:
    """The box of the configured key, else of the key kept in ``data_dir``, else of a new one
    written there (mode 0600, atomically)."""
    if configured:
        return SecretBox.from_key(configured)
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return SecretBox.from_key(path.read_text().strip())
    key = Fernet.generate_key()
    write_private(path, key)
    return SecretBox.from_key(key)
