"""A site's CORS configuration (S3's PutBucketCors) and how a browser's request is matched
against it.

A configuration is an ordered tuple of :class:`CorsRule` (1 to :data:`MAX_RULES`), stored in
the catalog (``policy.catalog_cors``) and kept in the site's state record
(``policy.site_state``) and in backups. The rules are checked when they are stored
(:func:`check_rules`, ``InvalidRequest`` naming the fault, as S3 answers); here they are
matched, as S3 matches them:

* the first rule whose ``AllowedOrigin`` matches the ``Origin`` header (each origin may hold
  one ``*``, which matches any run of characters, case-sensitively as S3 does), whose
  ``AllowedMethod`` holds the method (the requested one for a preflight) and, for a
  preflight, whose ``AllowedHeader`` patterns match every header named in
  ``Access-Control-Request-Headers`` (case-insensitively) is the one that applies;
* no matching rule: a preflight is refused, an actual request gets no CORS headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from core.errors import S3Error

#: S3's limit on the rules of one configuration.
MAX_RULES: Final = 100
#: The methods a rule may allow (S3 accepts these five only).
METHODS: Final = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_ID_LENGTH: Final = 255


@dataclass(frozen=True)
class CorsRule:
    """One CORSRule. ``max_age_seconds`` None: no ``Access-Control-Max-Age`` is sent."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    rule_id: str | None = None

    def matches_origin(self, origin: str) -> bool:
        return any(wildcard_match(pattern, origin) for pattern in self.allowed_origins)

    def allows_headers(self, requested: Sequence[str]) -> bool:
        """Every requested header name matches an AllowedHeader (case-insensitively)."""
        patterns = [pattern.lower() for pattern in self.allowed_headers]
        return all(
            any(wildcard_match(pattern, name.lower()) for pattern in patterns) for name in requested
        )

    @property
    def any_origin(self) -> bool:
        """The rule allows every origin (``*``): answered ``Access-Control-Allow-Origin: *``."""
        return "*" in self.allowed_origins


CorsRules = tuple[CorsRule, ...]


def wildcard_match(pattern: str, value: str) -> bool:
    """``pattern`` with at most one ``*`` (any run of characters, the empty one included)."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def check_rules(rules: Sequence[CorsRule]) -> CorsRules:
    """``rules`` as a configuration S3 would store; ``InvalidRequest`` (or ``MalformedXML``
    for a missing element) naming the first fault."""
    if not rules:
        raise S3Error("MalformedXML", "A CORS configuration holds at least one CORSRule.")
    if len(rules) > MAX_RULES:
        raise S3Error(
            "InvalidRequest",
            f"The CORS configuration must not have more than {MAX_RULES} rules.",
        )
    for rule in rules:
        if not rule.allowed_origins or not rule.allowed_methods:
            raise S3Error(
                "MalformedXML", "Every CORSRule needs an AllowedOrigin and an AllowedMethod."
            )
        for method in rule.allowed_methods:
            if method not in METHODS:
                raise S3Error(
                    "InvalidRequest",
                    f"Found unsupported HTTP method in CORS config. Unsupported method is {method}",
                )
        for origin in rule.allowed_origins:
            if origin.count("*") > 1:
                raise S3Error(
                    "InvalidRequest",
                    f'AllowedOrigin "{origin}" can not have more than one wildcard.',
                )
        for header in rule.allowed_headers:
            if header.count("*") > 1:
                raise S3Error(
                    "InvalidRequest",
                    f'AllowedHeader "{header}" can not have more than one wildcard.',
                )
        if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
            raise S3Error("MalformedXML", "MaxAgeSeconds must be a non-negative integer.")
        if rule.rule_id is not None and len(rule.rule_id) > MAX_ID_LENGTH:
            raise S3Error(
                "InvalidRequest", f"The ID of a CORSRule is at most {MAX_ID_LENGTH} characters."
            )
    return tuple(rules)


def matching_rule(
    rules: Sequence[CorsRule], origin: str, method: str, request_headers: Sequence[str] = ()
) -> CorsRule | None:
    """The first rule that allows ``origin`` to use ``method`` with ``request_headers``."""
    for rule in rules:
        if (
            method in rule.allowed_methods
            and rule.matches_origin(origin)
            and rule.allows_headers(request_headers)
        ):
            return rule
    return None


def requested_headers(value: str | None) -> tuple[str, ...]:
    """The header names of an ``Access-Control-Request-Headers`` value."""
    if not value:
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


# Stored form (catalog JSON, site state record, backups)


def rules_to_json(rules: Sequence[CorsRule]) -> list[dict[str, Any]]:
    return [
        {
            "allowed_origins": list(rule.allowed_origins),
            "allowed_methods": list(rule.allowed_methods),
            "allowed_headers": list(rule.allowed_headers),
            "expose_headers": list(rule.expose_headers),
            "max_age_seconds": rule.max_age_seconds,
            "id": rule.rule_id,
        }
        for rule in rules
    ]


def rules_from_json(document: Any) -> CorsRules:
    """Rules as :func:`rules_to_json` wrote them; ``ValueError`` (or ``TypeError``) for
    anything else, and for rules :func:`check_rules` refuses."""
    if not isinstance(document, list):
        raise TypeError("CORS rules must be a list")
    rules = []
    for entry in document:
        if not isinstance(entry, dict):
            raise TypeError("a CORS rule must be an object")
        max_age = entry.get("max_age_seconds")
        if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool)):
            raise TypeError("max_age_seconds must be an integer or null")
        rule_id = entry.get("id")
        if rule_id is not None and not isinstance(rule_id, str):
            raise TypeError("id must be a string or null")
        rules.append(
            CorsRule(
                _strings(entry, "allowed_origins"),
                _strings(entry, "allowed_methods"),
                _strings(entry, "allowed_headers"),
                _strings(entry, "expose_headers"),
                max_age,
                rule_id,
            )
        )
    try:
        return check_rules(rules)
    except S3Error as error:
        raise ValueError(error.message) from None


def _strings(entry: dict[str, Any], name: str) -> tuple[str, ...]:
    values = entry.get(name, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError(f"{name} must be a list of strings")
    return tuple(values)
