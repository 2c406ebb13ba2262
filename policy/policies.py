"""Each site's effective :class:`SitePolicy`: global defaults with the site's overrides laid over.

Overrides live in the catalog (shared by every replica). :class:`PolicyResolver` caches the
merged policy per site for a short TTL, so a hot upload path costs no query; a change made
through :meth:`PolicyResolver.set_overrides` is seen at once by this process and within the
TTL by other replicas.
"""

from __future__ import annotations

import math
import time
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from core.errors import S3Error
from policy.model import Catalog, SitePolicy

#: How long past its freshness a site's policy serves while the catalog cannot be read.
STALE_IF_ERROR_S = 3600.0

#: SitePolicy field -> the value types an override may have (None always allowed: "no limit").
_HINTS = typing.get_type_hints(SitePolicy)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: tuple(
        a
        for a in (
            typing.get_args(_HINTS[f.name])
            if isinstance(_HINTS[f.name], types.UnionType)
            else (_HINTS[f.name],)
        )
        if a is not type(None)
    )
    for f in fields(SitePolicy)
}
_NULLABLE = frozenset(
    name
    for name, hint in _HINTS.items()
    if isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
)


#: The largest value any integer field takes: a signed 64-bit column (BIGINT) holds it.
INT64_MAX = 2**63 - 1
#: retention_days at most 100 years: "now - days" must stay a date every database stores.
MAX_RETENTION_DAYS = 36_500
#: A ratio beyond this is no limit at all (set null instead).
MAX_COMPRESSION_RATIO = 1_000_000.0
#: Field -> the largest value it accepts (the smallest is always 0).
MAXIMUM: dict[str, int | float] = {
    name: MAX_RETENTION_DAYS
    if name == "retention_days"
    else MAX_COMPRESSION_RATIO
    if float in allowed
    else INT64_MAX
    for name, allowed in _FIELD_TYPES.items()
    if int in allowed or float in allowed
}


class PolicyError(ValueError):
    """An override names an unknown field or has a value of the wrong type or range."""


def validate_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Check override names and value types; return them as a plain dict.

    Integers must be ``int`` (not ``bool``) in ``0..MAXIMUM[name]``; floats accept ints and
    must be finite, in the same kind of range (no NaN, no infinity); booleans must be
    ``bool``. ``None`` is accepted for fields whose default may be None (rule off).
    """
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in _FIELD_TYPES:
            known = ", ".join(sorted(_FIELD_TYPES))
            raise PolicyError(f"unknown policy field {name!r} (known: {known})")
        if value is None:
            if name not in _NULLABLE:
                raise PolicyError(f"policy field {name!r} cannot be null")
            checked[name] = None
            continue
        allowed = _FIELD_TYPES[name]
        if isinstance(value, bool) and bool not in allowed:
            raise PolicyError(f"policy field {name!r} must be {_describe(allowed)}, not a bool")
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, allowed):
            raise PolicyError(
                f"policy field {name!r} must be {_describe(allowed)}, not {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise PolicyError(f"policy field {name!r} must be a finite number")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < 0:
                raise PolicyError(f"policy field {name!r} must not be negative")
            if value > MAXIMUM[name]:
                raise PolicyError(f"policy field {name!r} must be at most {int(MAXIMUM[name])}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise PolicyError(f"policy field {name!r} must be one of {sorted(_CHOICES[name])}")
        checked[name] = value
    return checked


#: Text fields that take one of a few values.
_CHOICES: dict[str, frozenset[str]] = {"default_encryption": frozenset({"AES256", "aws:kms"})}


def _describe(allowed: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in allowed)


class PolicyResolver:
    """Effective per-site policies: ``defaults`` (the config's [policy] table) merged with the
    catalog's per-site overrides, cached for ``ttl_s`` seconds per site.

    Writes go through :meth:`set_overrides`, which validates and invalidates this process's
    cache entry. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        defaults: SitePolicy,
        catalog: Catalog,
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.defaults = defaults
        self._catalog = catalog
        self._ttl_s = ttl_s
        self._stale_limit_s = ttl_s + STALE_IF_ERROR_S
        self._clock = clock
        self._cache: dict[str, tuple[float, SitePolicy]] = {}

    async def for_site(self, site: str) -> SitePolicy:
        """The policy in force for ``site`` (defaults when it has no overrides)."""
        now = self._clock()
        cached = self._cache.get(site)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            overrides = await self._catalog.site_overrides(site)
        except S3Error as error:
            # stale-if-error: a catalog outage keeps the last policy known for up to an hour
            # past its freshness, as access control does (policy.access_control).
            if error.status >= 500 and cached is not None and now - cached[0] < self._stale_limit_s:
                return cached[1]
            raise
        policy = self.defaults.merged(dict(overrides))
        self._cache[site] = (now, policy)
        return policy

    async def overrides(self, site: str) -> dict[str, Any]:
        """The site's stored overrides (uncached: callers read-modify-write them)."""
        return dict(await self._catalog.site_overrides(site))

    async def set_overrides(self, site: str, overrides: Mapping[str, Any]) -> None:
        """Replace ``site``'s overrides with ``overrides`` (validated; ``PolicyError``)."""
        checked = validate_overrides(overrides)
        await self._catalog.set_site_overrides(site, checked)
        self.invalidate(site)

    def invalidate(self, site: str | None = None) -> None:
        """Forget the cached policy of ``site`` (every site when None)."""
        if site is None:
            self._cache.clear()
        else:
            self._cache.pop(site, None)
