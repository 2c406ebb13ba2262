"""Which credential a request names, found before its signature is checked.

The signature verifiers (:mod:`gateway.sigv4`, :mod:`gateway.sigv2`) take a synchronous
lookup, while users' keys live in the catalog (:class:`policy.identities.IdentityStore`,
asynchronous). :class:`CredentialResolver` bridges them: it reads the access key id the
request names (SigV4 or SigV2, header or presigned query), finds its credential — root's
from configuration, without I/O; anyone else's from the store, through a short cache — and
then runs the verifier with a lookup that knows that one credential.

The cache keeps a found credential, and the absence of one, for at most ``ttl_s`` (5 s by
default): a key deactivated or deleted on any replica stops working everywhere within that
time, and at once on the replica that changed it (:meth:`CredentialResolver.forget`). A
key's expiry is checked on every use, cached or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from gateway.auth import authenticate_request
from gateway.sigv4 import AuthResult, CredentialLookup, HttpRequestView, authenticate
from gateway.sigv4_signing import SERVICE, first
from policy.credentials import Credential, CredentialStore
from policy.identities import IdentityStore

DEFAULT_TTL_S: Final = 5.0
_MAX_CACHED: Final = 10_000
_V4_PREFIX: Final = "AWS4-HMAC-SHA256 "


def requested_access_key(req: HttpRequestView) -> str | None:
    """The access key id ``req`` claims to be signed with, or None when it names none (the
    verifier then says what is wrong with its authentication)."""
    scope = requested_scope(req)
    if scope is not None:
        return scope[0] or None
    authorization = (req.headers.get("authorization") or "").strip()
    if authorization.startswith("AWS "):
        key, sep, _ = authorization[len("AWS ") :].strip().rpartition(":")
        return key if sep and key else None
    return first(req.query_pairs, "AWSAccessKeyId") or None


def requested_scope(req: HttpRequestView) -> tuple[str, ...] | None:
    """The SigV4 credential ``req`` claims, split at ``/`` (access key id, date, region,
    service, terminator when well-formed), or None when it is not SigV4-signed."""
    authorization = (req.headers.get("authorization") or "").strip()
    if authorization.startswith(_V4_PREFIX):
        for part in authorization[len(_V4_PREFIX) :].split(","):
            name, _, value = part.strip().partition("=")
            if name == "Credential":
                return tuple(value.strip().rsplit("/", 4))
        return None
    credential = first(req.query_pairs, "X-Amz-Credential")
    return None if credential is None else tuple(credential.rsplit("/", 4))


@dataclass(frozen=True)
class _Cached:
    credential: Credential | None
    until: float  # monotonic seconds


class CredentialResolver:
    """Access key id -> credential for authentication: ``root`` (configured) first, then
    ``identities`` (None: root only), cached for ``ttl_s``."""

    def __init__(
        self,
        root: CredentialStore,
        identities: IdentityStore | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._root = root
        self._identities = identities
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    async def find(self, access_key: str, now: datetime) -> Credential | None:
        """The live credential of ``access_key`` at ``now`` (timezone-aware), or None."""
        credential = self._root.lookup(access_key)
        if credential is None and self._identities is not None:
            tick = self._clock()
            cached = self._cache.get(access_key)
            if cached is None or cached.until <= tick:
                found = await self._identities.credential(access_key)
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                cached = _Cached(found, tick + self._ttl_s)
                self._cache[access_key] = cached
            credential = cached.credential
        expires_at = None if credential is None else credential.expires_at
        if expires_at is not None and expires_at <= now:
            return None
        return credential

    def forget(self, access_key: str) -> None:
        """Drop what is cached of ``access_key`` (it was just changed on this replica)."""
        self._cache.pop(access_key, None)

    async def authenticate(
        self,
        req: HttpRequestView,
        region: str,
        now: datetime,
        max_skew: timedelta,
        bucket_in_host: str | None = None,
    ) -> AuthResult:
        """:func:`gateway.auth.authenticate_request` (S3: SigV4 or SigV2) with the
        credential ``req`` names."""
        lookup = await self.lookup_for(req, now)
        return authenticate_request(req, lookup, region, now, max_skew, bucket_in_host)

    async def authenticate_v4(
        self,
        req: HttpRequestView,
        region: str,
        now: datetime,
        max_skew: timedelta,
        *,
        services: frozenset[str] = frozenset({SERVICE}),
        body_sha256: str | None = None,
    ) -> AuthResult:
        """:func:`gateway.sigv4.authenticate` for another protocol at this endpoint (see its
        ``services`` and ``body_sha256``), with the credential ``req`` names."""
        lookup = await self.lookup_for(req, now)
        return authenticate(
            req, lookup, region, now, max_skew, services=services, body_sha256=body_sha256
        )

    async def lookup_for(self, req: HttpRequestView, now: datetime) -> CredentialLookup:
        """A synchronous lookup for the verifiers that knows the one credential ``req``
        names (found now, through the cache), for callers that wrap lookups further
        (``gateway.session_auth``)."""
        access_key = requested_access_key(req)
        found = None if access_key is None else await self.find(access_key, now)

        def lookup(key: str) -> Credential | None:
            return found if found is not None and found.access_key == key else None

        return lookup
