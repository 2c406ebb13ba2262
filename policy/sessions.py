"""Temporary S3 credentials (STS sessions), minted statelessly.

:func:`mint_session` makes an access key id (``ASIA`` + 16 upper-case letters and digits), a
random secret, and a session token that is the :class:`~policy.secret_box.SecretBox` seal of
everything the session is: its keys, its principal's name and site roles, its session policy
and its expiry. Any replica holding the same master key opens the token, so no table is
shared and nothing is stored; a session cannot be revoked before it expires other than by
changing the master key.

:func:`read_session` opens a token presented with a request: it must open under the key,
name the access key the request was signed with, and not be expired.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from core.tokens import opaque_token
from policy.credentials import Credential
from policy.principals import Principal, Role
from policy.secret_box import SealedValueError, SecretBox

SESSION_KEY_PREFIX: Final = "ASIA"
_KEY_ALPHABET: Final = string.ascii_uppercase + string.digits
_VERSION: Final = 1
#: A sealed token as :meth:`SecretBox.seal` writes it: url-safe base64, padded. Checked
#: first: base64 decoding would ignore characters after the padding, so a token with a
#: tail added would otherwise open as the one issued.
_SEALED: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class SessionError(Exception):
    """A session token refused; the subclass names why."""


class InvalidSessionToken(SessionError):
    """The token does not open under this gateway's key, or names another access key."""


class SessionExpired(SessionError):
    """The session's expiry has passed."""


@dataclass(frozen=True)
class Session:
    """Temporary credentials: what STS returns and what a request's token opens to."""

    credential: Credential  # carries the session Principal as ``identity``
    session_token: str
    expires: datetime

    @property
    def principal(self) -> Principal:
        return self.credential.identity


def is_session_key(access_key: str) -> bool:
    """True for an access key id of a temporary credential."""
    return access_key.startswith(SESSION_KEY_PREFIX)


def mint_session(box: SecretBox, principal: Principal, expires: datetime) -> Session:
    """New temporary credentials acting as ``principal`` until ``expires`` (aware UTC).

    ``principal`` should be of kind ``session``; its site roles and session policy travel
    inside the token, sealed."""
    access_key = SESSION_KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    secret_key = opaque_token(30)
    until = datetime.fromtimestamp(int(expires.timestamp()), UTC)  # whole seconds, as sealed
    document = {
        "v": _VERSION,
        "access_key": access_key,
        "secret_key": secret_key,
        "principal": principal.name,
        "site_roles": {site: role.value for site, role in principal.site_roles.items()},
        "session_policy": principal.session_policy,
        "expires": int(until.timestamp()),
    }
    token = box.seal(json.dumps(document, separators=(",", ":")).encode())
    return Session(
        Credential(access_key, secret_key, principal.name, principal, until), token, until
    )


def read_session(box: SecretBox, access_key: str, token: str, now: datetime) -> Session:
    """The session ``token`` opens to, for a request signed with ``access_key``.

    Raises :class:`InvalidSessionToken` when the token does not open under ``box``, is not
    a session document, or names another access key; :class:`SessionExpired` when ``now``
    (aware) is at or past its expiry."""
    try:
        if _SEALED.fullmatch(token) is None:
            raise ValueError("not a sealed value")
        document = json.loads(box.open(token))
        if not isinstance(document, dict) or document.get("v") != _VERSION:
            raise ValueError("not a session document")
        expires = datetime.fromtimestamp(int(document["expires"]), UTC)
        roles = {str(site): Role(role) for site, role in dict(document["site_roles"]).items()}
        policy = document["session_policy"]
        name = str(document["principal"])
        stored_key = str(document["access_key"])
        secret_key = str(document["secret_key"])
        if policy is not None and not isinstance(policy, str):
            raise ValueError("the session policy is not a document")
    except (SealedValueError, ValueError, KeyError, TypeError, OverflowError):
        raise InvalidSessionToken("The provided token is malformed or otherwise invalid.") from None
    if stored_key != access_key:
        raise InvalidSessionToken("The provided token does not belong to this access key.")
    if now >= expires:
        raise SessionExpired("The provided token has expired.")
    principal = Principal(name, "session", MappingProxyType(roles), policy)
    return Session(Credential(stored_key, secret_key, name, principal, expires), token, expires)


def open_session(box: SecretBox, access_key: str, token: str, now: datetime) -> Credential | None:
    """The credential of a valid session, else None (see :func:`read_session` for why)."""
    try:
        return read_session(box, access_key, token, now).credential
    except SessionError:
        return None
