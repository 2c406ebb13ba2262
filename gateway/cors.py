"""Browsers' cross-origin requests: preflights answered, CORS headers on replies.

Both read the bucket's rules (``policy.cors``, cached by ``policy.cors_settings``) and
never authenticate: a browser sends a preflight without credentials.

* :meth:`Cors.preflight` answers ``OPTIONS`` on a bucket or object URL as S3 does: 400
  ``BadRequest`` without ``Origin`` or with a missing or unknown
  ``Access-Control-Request-Method``; 403 ``AccessForbidden`` when the bucket has no CORS
  configuration or no rule allows the origin, method and requested headers; otherwise 200
  with ``Access-Control-Allow-Origin`` / ``-Methods`` / ``-Headers`` / ``-Max-Age`` /
  ``-Expose-Headers`` / ``-Allow-Credentials`` and ``Vary``.
* :meth:`Cors.reply_headers` gives the headers to add to the reply to any other request
  carrying ``Origin``, errors included, so a browser script can read an S3 error: ``Vary``
  whenever the bucket has rules, the ``Access-Control-*`` ones when a rule allows the origin
  and the request's method. It never fails a request: rules it cannot read add nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from core.errors import S3Error
from gateway.responses import Reply
from policy.cors import METHODS, CorsRule, matching_rule, requested_headers
from policy.cors_settings import CorsSettings

log = logging.getLogger("pagewright.cors")

_VARY: Final = ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")


class Cors:
    """Preflights and reply headers over the rules in ``settings``."""

    def __init__(self, settings: CorsSettings) -> None:
        self.settings = settings

    async def preflight(
        self, bucket: str | None, resource_type: str, headers: Mapping[str, str]
    ) -> Reply:
        """The answer to an ``OPTIONS`` request on ``bucket`` (None: the service) whose
        target is ``resource_type`` (``BUCKET``, ``OBJECT``), see the module docstring;
        ``S3Error`` for every refusal (503 when the rules cannot be read)."""
        origin = headers.get("origin")
        if not origin:
            raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
        method = headers.get("access-control-request-method", "").strip()
        if method not in METHODS:
            raise S3Error(
                "BadRequest", f"Invalid Access-Control-Request-Method: {method or 'null'}"
            )
        rules = None if bucket is None else await self.settings.rules(bucket)
        if rules is None:
            raise S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.")
        asked = requested_headers(headers.get("access-control-request-headers"))
        rule = matching_rule(rules, origin, method, asked)
        if rule is None:
            raise S3Error("AccessForbidden", Method=method, ResourceType=resource_type)
        allowed = _allow_headers(rule, origin)
        if asked:
            allowed.append(("Access-Control-Allow-Headers", ", ".join(asked)))
        return Reply(200, [*allowed, _VARY])

    async def reply_headers(
        self, bucket: str, method: str, headers: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """The CORS headers for the reply to a request with ``Origin`` (see the module
        docstring); never raises."""
        origin = headers.get("origin")
        if not origin:
            return []
        try:
            rules = await self.settings.rules(bucket)
        except S3Error as error:
            log.warning(
                "CORS rules unavailable; reply sent without CORS headers",
                extra={"site": bucket, "code": error.code},
            )
            return []
        if rules is None:
            return []
        rule = matching_rule(rules, origin, method)
        if rule is None:
            return [_VARY]
        return [*_allow_headers(rule, origin), _VARY]


def _allow_headers(rule: CorsRule, origin: str) -> list[tuple[str, str]]:
    allowed = [
        ("Access-Control-Allow-Origin", "*" if rule.any_origin else origin),
        ("Access-Control-Allow-Methods", ", ".join(rule.allowed_methods)),
    ]
    if not rule.any_origin:
        allowed.append(("Access-Control-Allow-Credentials", "true"))
    if rule.expose_headers:
        allowed.append(("Access-Control-Expose-Headers", ", ".join(rule.expose_headers)))
    if rule.max_age_seconds is not None:
        allowed.append(("Access-Control-Max-Age", str(rule.max_age_seconds)))
    return allowed
