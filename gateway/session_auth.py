"""Temporary credentials at the S3 endpoint: the credential lookup of one request.

A request signed with an STS session's keys carries the session token, in the
``x-amz-security-token`` header (header-signed: SigV4 refuses it unsigned, like every
``x-amz-*`` header, and SigV2 signs every ``x-amz-*`` header) or in the
``X-Amz-Security-Token`` query parameter (presigned: part of the signed query).
:func:`session_lookup` wraps the gateway's long-term lookup so that the signature verifiers
(:mod:`gateway.sigv4`, :mod:`gateway.sigv2`) check such a request against the session's
secret, without knowing sessions exist.

The token is checked on every request (it is self-contained: see :mod:`policy.sessions`):

- an ``ASIA`` key without a token: ``InvalidAccessKeyId``, as AWS answers;
- a token that does not open, or names another key: ``InvalidToken``;
- an expired session: ``ExpiredToken``;
- a token sent with a long-term key: ``InvalidToken``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from core.errors import S3Error
from gateway.sigv4 import CredentialLookup
from policy.credentials import Credential
from policy.secret_box import SecretBox
from policy.sessions import SessionError, SessionExpired, is_session_key, read_session

TOKEN_HEADER: Final = "x-amz-security-token"
_TOKEN_PARAMETERS: Final = ("X-Amz-Security-Token", "x-amz-security-token")


def security_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The session token a request carries (header first, then presigned query), or None."""
    token = headers.get(TOKEN_HEADER)
    if token is None:
        token = next((query[name] for name in _TOKEN_PARAMETERS if name in query), None)
    return token.strip() if token is not None else None


def session_lookup(
    lookup: CredentialLookup, box: SecretBox | None, token: str | None, now: datetime
) -> CredentialLookup:
    """``lookup`` for a request carrying ``token`` (None: none), at server time ``now``.

    Without a token every key goes to ``lookup``, which knows no session key. With one, only
    the session the token opens to is known. The returned lookup raises ``S3Error``
    (``InvalidToken``, ``ExpiredToken``) rather than returning None where AWS names the
    token as the fault. ``box`` None: sessions are off, every token is invalid."""

    def find(access_key: str) -> Credential | None:
        if token is None:
            return lookup(access_key)  # holds no session key: InvalidAccessKeyId, as AWS
        if box is None or not is_session_key(access_key):
            raise S3Error("InvalidToken")
        try:
            return read_session(box, access_key, token, now).credential
        except SessionExpired:
            raise S3Error("ExpiredToken") from None
        except SessionError:
            raise S3Error("InvalidToken") from None

    return find
