"""OIDC tokens (JWTs) from trusted issuers -> :class:`~policy.principals.Principal`.

:meth:`TokenVerifier.verify` accepts a token only when every check passes, in this order:
it is a JWS with three segments and an allowed asymmetric ``alg`` (never ``none`` or
``HS*``); its ``iss`` names a configured issuer; its ``kid`` names a key of that issuer's
JWKS (:class:`policy.jwks.JwksCache`); the signature verifies; ``aud`` holds a configured
audience; ``exp`` is in the future and ``nbf`` (if any) in the past, both with the
issuer's leeway; the principal and sites claims are well-formed and name known roles.

Each refusal is a :class:`TokenError` subclass, so callers map them to their protocol's
errors (the artifact API's 401, STS's ``InvalidIdentityToken`` / ``ExpiredTokenException`` /
``IDPCommunicationError``). Messages name the failed check, never the token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from policy.jwks import JwksCache, JwksUnavailable, UnknownKey
from policy.oidc_config import OidcIssuer
from policy.principals import Principal, Role

if TYPE_CHECKING:
    from jwt import PyJWK

#: Three base64url segments: what a compact JWS looks like (and an API key does not).
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_LENGTH: Final = 20000  # STS's WebIdentityToken limit
#: A site is a bucket: S3's name characters only. Anything else is refused, above all ``*``,
#: ``?`` and ``${...}``, which the site's role policy would read as a pattern over many sites.
_SITE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class TokenError(Exception):
    """A token refused; the subclass names why."""


class MalformedToken(TokenError):
    """Not a compact JWS, an unusable header, a refused ``alg`` or bad claims."""


class UnknownIssuer(TokenError):
    """``iss`` names no configured issuer."""


class UnknownKeyId(TokenError):
    """The ``kid`` is not in the issuer's key set, even after one refresh."""


class BadSignature(TokenError):
    """The signature does not verify under the issuer's key."""


class WrongAudience(TokenError):
    """``aud`` holds none of the issuer's configured audiences."""


class TokenExpired(TokenError):
    """``exp`` is past (beyond the leeway)."""


class TokenNotYetValid(TokenError):
    """``nbf`` (or ``iat``) is in the future (beyond the leeway)."""


class IssuerUnavailable(TokenError):
    """The issuer's key set could not be fetched."""


@dataclass(frozen=True)
class VerifiedToken:
    """A token that passed every check: its principal and where it came from.

    ``subject`` is the principal claim as the token holds it, ``audience`` the configured
    audience it matched, ``issuer`` its issuer URL."""

    principal: Principal
    issuer: str
    subject: str
    audience: str


def looks_like_jwt(value: str) -> bool:
    """True when ``value`` has the shape of a compact JWS (three base64url segments)."""
    return len(value) <= MAX_TOKEN_LENGTH and _COMPACT_JWS.fullmatch(value) is not None


class TokenVerifier:
    """Verifies tokens of the configured ``issuers``; one :class:`JwksCache` per issuer.

    ``clock`` (monotonic seconds) paces key-set refreshes; token times are checked against
    the wall clock by PyJWT."""

    def __init__(
        self,
        issuers: Sequence[OidcIssuer],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._keys = {issuer.issuer: JwksCache(issuer, clock=clock) for issuer in issuers}

    @property
    def configured(self) -> bool:
        return bool(self._issuers)

    async def verify(self, token: str) -> Principal:
        """The principal ``token`` stands for, or a :class:`TokenError` naming the check that
        failed. The principal is of kind ``session``, named ``<name_prefix><principal
        claim>``, with the site roles of the sites claim and no session policy."""
        return (await self.verify_token(token)).principal

    async def verify_token(self, token: str) -> VerifiedToken:
        """:meth:`verify`, with the token's subject, matched audience and issuer."""
        issuer, header = self._read_unverified(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in issuer.algorithms:
            raise MalformedToken(f"the token's algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise MalformedToken("the token's kid is not a string")
        try:
            key = await self._keys[issuer.issuer].key(kid)
        except UnknownKey as error:
            raise UnknownKeyId(str(error)) from None
        except JwksUnavailable as error:
            raise IssuerUnavailable(str(error)) from None
        verified = _decode(token, key, algorithm, issuer)
        principal = principal_from_claims(verified, issuer)
        audiences = verified["aud"] if isinstance(verified["aud"], list) else [verified["aud"]]
        audience = next(a for a in issuer.audiences if a in audiences)
        subject = str(verified[issuer.principal_claim])
        return VerifiedToken(principal, issuer.issuer, subject, audience)

    def _read_unverified(self, token: str) -> tuple[OidcIssuer, dict[str, Any]]:
        """The issuer and header of ``token`` before any check: only used to choose the
        issuer and key that then verify everything."""
        if not looks_like_jwt(token):
            raise MalformedToken("the token is not a compact JWS (header.payload.signature)")
        import jwt  # PyJWT is loaded on the first token (see policy.jwks)

        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise MalformedToken("the token's header or claims are not valid JSON") from None
        named = claims.get("iss") if isinstance(claims, dict) else None
        if not isinstance(named, str):
            raise MalformedToken("the token has no 'iss' claim")
        issuer = self._issuers.get(named)
        if issuer is None:
            raise UnknownIssuer("the token's issuer is not a configured OIDC issuer")
        return issuer, header


def _decode(token: str, key: PyJWK, algorithm: str, issuer: OidcIssuer) -> dict[str, Any]:
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=list(issuer.audiences),
            issuer=issuer.issuer,
            leeway=issuer.leeway_seconds,
            options={"require": ["exp", "iss", "aud"], "strict_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenNotYetValid("the token is not valid yet (nbf or iat)") from None
    except jwt.InvalidAudienceError:
        raise WrongAudience("the token is not meant for this audience") from None
    except jwt.InvalidIssuerError:
        raise UnknownIssuer("the token's issuer is not a configured OIDC issuer") from None
    except jwt.InvalidSignatureError:
        raise BadSignature("the token's signature does not verify") from None
    except jwt.MissingRequiredClaimError as error:
        raise MalformedToken(f"the token lacks the {error.claim!r} claim") from None
    except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
        raise BadSignature("the token's key does not fit its algorithm") from None
    except jwt.PyJWTError as error:
        raise MalformedToken(f"the token is not valid: {error}") from None
    return claims


def principal_from_claims(claims: Mapping[str, Any], issuer: OidcIssuer) -> Principal:
    """The session principal of verified ``claims``, as ``issuer`` maps them.

    ``MalformedToken`` when the principal claim is not a non-empty string, the sites claim
    is neither a list of names nor a mapping name -> role, or a role is unknown."""
    subject = claims.get(issuer.principal_claim)
    if not isinstance(subject, str) or not subject:
        raise MalformedToken(f"the token's {issuer.principal_claim!r} claim is not a name")
    sites = claims.get(issuer.sites_claim, [])
    roles: dict[str, Role] = {}
    if isinstance(sites, Mapping):
        for site, role in sites.items():
            roles[_site(site, issuer)] = _role(role)
    elif isinstance(sites, list):
        default = issuer.default_role
        if issuer.roles_claim is not None and issuer.roles_claim in claims:
            default = _role(claims[issuer.roles_claim])
        for site in sites:
            roles[_site(site, issuer)] = default
    else:
        raise MalformedToken(
            f"the token's {issuer.sites_claim!r} claim is neither a list of sites nor a "
            "mapping of sites to roles"
        )
    return Principal(issuer.name_prefix + subject, "session", site_roles=MappingProxyType(roles))


def _site(value: object, issuer: OidcIssuer) -> str:
    if not isinstance(value, str) or _SITE_NAME.fullmatch(value) is None:
        raise MalformedToken(
            f"the token's {issuer.sites_claim!r} claim names an invalid site {value!r}"
        )
    return value


def _role(value: object) -> Role:
    if isinstance(value, str) and value in Role.__members__:
        return Role(value)
    known = ", ".join(role.value for role in Role)
    raise MalformedToken(f"the token names an unknown role {value!r} (known: {known})")
