"""An issuer's signing keys (its JWKS), fetched over HTTP and cached: :class:`JwksCache`.

The key set is fetched from the issuer's ``jwks_uri`` (discovered once from its OpenID
configuration when not configured) and kept ``jwks_cache_seconds``. A token naming a ``kid``
the cached set lacks triggers one refetch (the issuer rotated its keys), but no more than
one per ``jwks_min_refresh_seconds``: a stream of tokens with random kids costs the issuer
at most one request per interval. Concurrent lookups share one fetch.

When a refetch fails the keys already held keep serving (until the next attempt); only a
cache that never held keys reports :class:`JwksUnavailable`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import anyio

from policy.oidc_config import OidcIssuer, is_trusted_url

if TYPE_CHECKING:
    import jwt

# PyJWT and httpx (~27 MiB together) are imported where they are used: only a gateway
# with OIDC issuers configured, verifying a token, ever needs them.

#: Key sets and discovery documents larger than this are refused (a real one is a few KiB).
MAX_DOCUMENT_BYTES: Final = 256 * 1024
FETCH_TIMEOUT_SECONDS: Final = 5.0


class JwksUnavailable(Exception):
    """The issuer's key set could not be fetched (network, status, or not a JWKS)."""


class UnknownKey(Exception):
    """The token's ``kid`` is not in the issuer's key set, even after a refresh."""


@dataclass
class _State:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float | None = None  # monotonic time of the last fetch attempt
    jwks_uri: str | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock)


class JwksCache:
    """The signing keys of one issuer. ``clock`` is monotonic seconds (tests advance it)."""

    def __init__(self, issuer: OidcIssuer, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._issuer = issuer
        self._clock = clock
        self._state = _State(jwks_uri=issuer.jwks_uri)

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key named ``kid`` (None: the set's only key).

        Raises :class:`UnknownKey` when the set (refreshed if allowed) lacks it, and
        :class:`JwksUnavailable` when no key set could ever be fetched."""
        state = self._state
        found = self._find(kid)
        if found is not None and not self._stale():
            return found
        async with state.lock:
            found = self._find(kid)
            if found is not None and not self._stale():
                return found  # another task refreshed the set while this one waited
            if self._may_refresh():
                try:
                    await self._refresh()
                except JwksUnavailable:
                    if state.fetched_at is None:
                        raise
            found = self._find(kid)
        if found is None and state.fetched_at is None:
            raise JwksUnavailable(f"the key set of {self._issuer.issuer} could not be fetched")
        if found is None:
            raise UnknownKey(f"no key {kid!r} in the key set of {self._issuer.issuer}")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._state.keys
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    def _stale(self) -> bool:
        fetched = self._state.fetched_at
        return fetched is None or self._clock() - fetched >= self._issuer.jwks_cache_seconds

    def _may_refresh(self) -> bool:
        """Any fetch (expiry, unknown kid, retry after a failure) waits at least
        ``jwks_min_refresh_seconds`` after the previous attempt."""
        attempted = self._state.attempted_at
        return attempted is None or (
            self._clock() - attempted >= self._issuer.jwks_min_refresh_seconds
        )

    async def _refresh(self) -> None:
        state = self._state
        state.attempted_at = self._clock()
        if state.jwks_uri is None:
            document = await fetch_json(self._issuer.discovery_uri)
            if not isinstance(document, Mapping) or document.get("issuer") != self._issuer.issuer:
                # OpenID Connect Discovery: the document must name the issuer it describes.
                raise JwksUnavailable(
                    f"{self._issuer.discovery_uri} does not describe {self._issuer.issuer}"
                )
            uri = document.get("jwks_uri")
            if not isinstance(uri, str) or not is_trusted_url(uri):
                raise JwksUnavailable(
                    f"{self._issuer.discovery_uri} names no https jwks_uri for "
                    f"{self._issuer.issuer}"
                )
            state.jwks_uri = uri
        state.keys = signing_keys(await fetch_json(state.jwks_uri), self._issuer)
        state.fetched_at = self._clock()


def signing_keys(document: object, issuer: OidcIssuer) -> dict[str, jwt.PyJWK]:
    """kid -> key of every usable signing key of a JWKS document.

    Keys for encryption (``use: enc``), of a type PyJWT cannot use, or whose ``alg`` is not
    one the issuer is allowed are skipped; a key without ``kid`` is kept under ``""`` only
    when it is the set's single key."""
    import jwt

    raw = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(raw, list):
        raise JwksUnavailable(f"the key set of {issuer.issuer} is not a JWKS document")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in raw:
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        alg = entry.get("alg")
        if alg is not None and alg not in issuer.algorithms:
            continue
        try:
            key = jwt.PyJWK(dict(entry))
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else ""] = key
    if "" in keys and len(keys) > 1:
        del keys[""]
    return keys


async def fetch_json(url: str) -> Any:
    """GET ``url`` as JSON (redirects not followed, at most :data:`MAX_DOCUMENT_BYTES`);
    :class:`JwksUnavailable` on any failure."""
    import httpx

    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise JwksUnavailable(f"GET {url}: HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise JwksUnavailable(f"GET {url}: the document is too large")
    except httpx.HTTPError as error:
        raise JwksUnavailable(f"GET {url}: {error}") from error
    try:
        return json.loads(bytes(body))
    except ValueError as error:
        raise JwksUnavailable(f"GET {url}: not JSON") from error
