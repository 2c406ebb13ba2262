"""What an OIDC issuer the gateway trusts is configured with: :class:`OidcIssuer`.

Read from the ``[[oidc.issuers]]`` tables of the configuration file (or ``PWG_OIDC_ISSUERS``,
a JSON list of the same tables) by :func:`parse_issuers`, once, into ``Settings``. Every
value is checked here, so a verifier built from an ``OidcIssuer`` never meets a bad one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final
from urllib.parse import urlsplit

from policy.principals import Role

#: Asymmetric algorithms only: ``none`` and the HMAC family (a shared secret would let anyone
#: holding it mint tokens, and an RSA public key must never be taken as an HMAC secret).
SUPPORTED_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
DEFAULT_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")
MAX_LEEWAY_SECONDS: Final = 300


@dataclass(frozen=True)
class OidcIssuer:
    """One trusted token issuer.

    ``issuer`` is compared exactly with a token's ``iss``; ``audiences`` lists the ``aud``
    values accepted (at least one must be in the token). ``jwks_uri`` names the key set;
    when None it is discovered from ``<issuer>/.well-known/openid-configuration``.
    ``leeway_seconds`` (0..300) is the clock tolerance on ``exp`` and ``nbf``.

    Claims: ``principal_claim`` (default ``sub``) names the principal, which becomes
    ``<name_prefix><value>``; ``sites_claim`` (default ``sites``) holds either a mapping
    site -> role name or a list of site names, each given the role named by the
    ``roles_claim`` (when configured and present in the token) else ``default_role``.

    The key set is kept ``jwks_cache_seconds``; an unknown ``kid`` refetches it at most once
    per ``jwks_min_refresh_seconds`` (so random kids cannot make the gateway hammer the
    issuer).
    """

    issuer: str
    audiences: tuple[str, ...]
    jwks_uri: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_seconds: int = 60
    principal_claim: str = "sub"
    sites_claim: str = "sites"
    roles_claim: str | None = None
    default_role: Role = Role.reader
    name_prefix: str = "oidc:"
    jwks_cache_seconds: int = 600
    jwks_min_refresh_seconds: int = 30

    def __post_init__(self) -> None:
        _check_url("issuer", self.issuer)
        if self.jwks_uri is not None:
            _check_url("jwks_uri", self.jwks_uri)
        if not self.audiences or not all(isinstance(a, str) and a for a in self.audiences):
            raise ValueError(f"issuer {self.issuer}: audiences must list at least one audience")
        refused = [a for a in self.algorithms if a not in SUPPORTED_ALGORITHMS]
        if refused or not self.algorithms:
            raise ValueError(
                f"issuer {self.issuer}: algorithms {refused or '[]'} are not allowed; "
                f"choose among {', '.join(SUPPORTED_ALGORITHMS)}"
            )
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(
                f"issuer {self.issuer}: leeway_seconds must be 0..{MAX_LEEWAY_SECONDS}"
            )
        if self.jwks_cache_seconds < 1 or self.jwks_min_refresh_seconds < 0:
            raise ValueError(
                f"issuer {self.issuer}: jwks_cache_seconds must be at least 1 and "
                "jwks_min_refresh_seconds at least 0"
            )
        if not self.principal_claim or not self.sites_claim or self.roles_claim == "":
            raise ValueError(f"issuer {self.issuer}: claim names must not be empty")

    @property
    def discovery_uri(self) -> str:
        """Where the OpenID configuration (and so the ``jwks_uri``) is published."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def is_trusted_url(value: str) -> bool:
    """An ``https`` URL, or ``http`` to this host's loopback only (a local issuer): keys
    fetched over plain HTTP from elsewhere could be swapped on the way."""
    parts = urlsplit(value)
    if not parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in _LOOPBACK


_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def _check_url(name: str, value: object) -> None:
    if not isinstance(value, str) or not is_trusted_url(value):
        raise ValueError(
            f"{name} {value!r} is not an https URL (plain http is for loopback issuers only)"
        )


_FIELDS: Final = {f.name for f in fields(OidcIssuer)}
_TEXT_FIELDS: Final = frozenset(
    {"issuer", "jwks_uri", "principal_claim", "sites_claim", "roles_claim", "name_prefix"}
)


def parse_issuer(table: Mapping[str, Any]) -> OidcIssuer:
    """One ``[[oidc.issuers]]`` table -> :class:`OidcIssuer`; ``ValueError`` naming what is
    wrong. Names may use ``-`` or ``_``; ``audience`` (one string) may stand for
    ``audiences``."""
    values = {str(name).replace("-", "_"): value for name, value in table.items()}
    if "audience" in values:
        if "audiences" in values:
            raise ValueError("give audience or audiences, not both")
        values["audiences"] = [values.pop("audience")]
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown OIDC issuer setting(s): {', '.join(unknown)}")
    if "issuer" not in values or "audiences" not in values:
        raise ValueError("an OIDC issuer needs an issuer URL and its audiences")
    try:
        for name in ("audiences", "algorithms"):
            if name in values:
                values[name] = _strings(name, values[name])
        for name in ("leeway_seconds", "jwks_cache_seconds", "jwks_min_refresh_seconds"):
            if name in values:
                values[name] = _integer(name, values[name])
        if "default_role" in values:
            values["default_role"] = Role(values["default_role"])
        for name in _TEXT_FIELDS & set(values):
            if not isinstance(values[name], str):
                raise ValueError(f"{name} must be a string")
        return OidcIssuer(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"OIDC issuer {values.get('issuer')!r}: {error}") from error


def parse_issuers(tables: Sequence[Mapping[str, Any]]) -> tuple[OidcIssuer, ...]:
    """Every issuer table -> issuers; ``ValueError`` for a bad table, one issuer twice, or
    two issuers with the same ``name_prefix``."""
    if not isinstance(tables, Sequence) or isinstance(tables, str):
        raise ValueError("oidc.issuers must be a list of tables")
    issuers = []
    for table in tables:
        if not isinstance(table, Mapping):
            raise ValueError("oidc.issuers must be a list of tables")
        issuers.append(parse_issuer(table))
    names = [i.issuer for i in issuers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"OIDC issuer configured more than once: {', '.join(repeated)}")
    prefixes = [i.name_prefix for i in issuers]
    shared = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if shared:
        # Else one issuer's "alice" would be another's, and so would every grant naming her.
        raise ValueError(
            f"OIDC issuers share the name_prefix {shared[0]!r}: give each its own, so that "
            "principals of different issuers never have the same name"
        )
    return tuple(issuers)


def _strings(name: str, value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{name} must be a string or a list of strings")
    return tuple(items)


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be a whole number of seconds")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of seconds") from None
