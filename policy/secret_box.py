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

Rotation: a new master key is configured as ``master_key`` and the previous ones as
``retired_master_keys`` (``PWG_RETIRED_MASTER_KEYS``). New seals, and objects encrypted from
then on (``policy.sse_crypto.Keyring``), use the new key; what was sealed or encrypted under
a retired key still opens. A retired key can be dropped once nothing sealed under it is
left.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from policy.private_files import write_private

MASTER_KEY_FILE = "master.key"


class SealedValueError(ValueError):
    """A sealed value that does not open under this key (altered, or another key's)."""


@dataclass(frozen=True)
class SecretBox:
    """Seals and opens short secrets under one master key (and opens what retired keys
    sealed). Never logs what it holds."""

    _fernet: Fernet | MultiFernet
    _master: bytes = field(default=b"", repr=False)
    _retired: tuple[bytes, ...] = field(default=(), repr=False)

    @classmethod
    def from_key(cls, key: str | bytes, retired: Sequence[str | bytes] = ()) -> SecretBox:
        """A box over ``key`` that also opens what the ``retired`` keys sealed;
        ``ValueError`` when one is not 32 url-safe base64 bytes."""
        try:
            if not retired:
                return cls(Fernet(key), base64.urlsafe_b64decode(key))
            keys = [key, *retired]
            return cls(
                MultiFernet([Fernet(k) for k in keys]),
                base64.urlsafe_b64decode(key),
                tuple(base64.urlsafe_b64decode(k) for k in retired),
            )
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
        return _derive(self._master, purpose)

    def subkeys(self, purpose: str) -> list[bytes]:
        """:meth:`subkey` of the master key, then of each retired key (a key ring's order:
        the current first, the retired ones still opening what they sealed)."""
        return [self.subkey(purpose), *(_derive(m, purpose) for m in self._retired)]

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def _derive(master: bytes, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(master)


def load_master_key(
    data_dir: Path, configured: str | None, retired: Sequence[str] = ()
) -> SecretBox:
    """The box of the configured key, else of the key kept in ``data_dir``, else of a new one
    written there (mode 0600, atomically); it also opens what the ``retired`` keys sealed."""
    if configured:
        return SecretBox.from_key(configured, retired)
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return SecretBox.from_key(path.read_text().strip(), retired)
    key = Fernet.generate_key()
    write_private(path, key)
    return SecretBox.from_key(key, retired)
