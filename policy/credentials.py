"""Root credentials: given by configuration, or generated once and kept in the data dir.

The generated pair lives in ``<data_dir>/root-credentials.json`` with mode 0600. It is
printed once, to the terminal, on the start that creates it; never to a log.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.tokens import opaque_token
from policy.principals import ROOT, Principal
from policy.private_files import write_private

ROOT_PRINCIPAL = "root"
#: Stands for "derived from ``principal``" until :meth:`Credential.__post_init__` replaces it.
_DERIVED = Principal("", "anonymous")


@dataclass(frozen=True)
class Credential:
    """A key pair and the identity it authenticates.

    ``principal`` is the identity's name (what logs, owners and API keys name);
    ``identity`` the :class:`Principal` the access decision reads. Given only a name, the
    identity is :data:`policy.principals.ROOT` for ``root`` and an IAM user otherwise.
    ``expires_at`` (timezone-aware) is when the pair stops authenticating, if ever; the
    stores that hand out credentials never hand out an expired one.
    """

    access_key: str
    secret_key: str = field(repr=False)
    principal: str
    identity: Principal = _DERIVED
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.identity is _DERIVED:
            is_root = self.principal == ROOT_PRINCIPAL
            derived = ROOT if is_root else Principal(self.principal, "user")
            object.__setattr__(self, "identity", derived)
        elif self.identity.name != self.principal:
            raise ValueError("a credential's principal is its identity's name")


CREDENTIALS_FILE = "root-credentials.json"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class RootCredentials:
    credential: Credential
    generated: bool  # True only on the start that created the pair


def load_root_credentials(
    data_dir: Path, access_key: str | None = None, secret_key: str | None = None
) -> RootCredentials:
    """The root pair given (both ``access_key`` and ``secret_key``), else the one kept in
    ``data_dir``, else a new one saved there."""
    if access_key and secret_key:
        return RootCredentials(Credential(access_key, secret_key, ROOT_PRINCIPAL), False)
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        document = json.loads(path.read_text())
        return RootCredentials(
            Credential(document["access_key"], document["secret_key"], ROOT_PRINCIPAL), False
        )
    access_key = "PW" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))
    secret_key = opaque_token(30)
    write_private(path, json.dumps({"access_key": access_key, "secret_key": secret_key}).encode())
    return RootCredentials(Credential(access_key, secret_key, ROOT_PRINCIPAL), True)


class CredentialStore:
    """Access key -> Credential for every principal the gateway knows (root, for now)."""

    def __init__(self, credentials: list[Credential]) -> None:
        self._by_key = {c.access_key: c for c in credentials}

    def lookup(self, access_key: str) -> Credential | None:
        return self._by_key.get(access_key)
