"""Rate limits at the artifact API, as two pure ASGI middlewares around Bearer authentication.

:class:`SourceThrottle` (outside :class:`gateway.api.auth.BearerAuth`): a source address
that failed authentication too often is refused before its key is even looked up, and each
``401`` answered to it counts as one more failure (the address is ``aws:SourceIp``'s:
trusted proxies applied). :class:`RequestRateLimit` (inside): the
authenticated principal's buckets and those of the site in the path (``/sites/{site}/...``)
are charged one request and the request's ``Content-Length``. A refusal is 503
``SlowDown`` in the API's JSON error shape, with ``Retry-After`` in whole seconds.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access_log import request_id_of
from gateway.api.auth import PRINCIPAL_SCOPE_KEY, identity_of
from gateway.api.errors import error_response
from gateway.rate_limiting import (
    count_refusal,
    declared_bytes,
    limited_principal,
    refusal_message,
    source_of,
)
from policy.metrics import Metrics
from policy.rate_buckets import Admission
from policy.rate_limits import RateLimiter


async def _refuse(admission: Admission, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        503,
        "SlowDown",
        refusal_message(admission),
        {"Retry-After": str(admission.retry_after_seconds)},
        request_id=request_id_of(scope),
    )
    await response(scope, receive, send)


class SourceThrottle:
    """Refuse source addresses over their authentication-failure limit; count each 401."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None,
        trusted_proxies: tuple[str, ...] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self._limiter = limiter
        self._proxies = trusted_proxies
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self._limiter
        if scope["type"] != "http" or limiter is None:
            await self.app(scope, receive, send)
            return
        source = source_of(scope, self._proxies)
        admission = await limiter.check_source(source)
        if not admission.allowed:
            count_refusal(self._metrics, "api", admission)
            await _refuse(admission, scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                await limiter.auth_failed(source)
            await send(message)

        await self.app(scope, receive, counting_send)


class RequestRateLimit:
    """Charge the authenticated principal and the addressed site; refuse when over."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None,
        prefix: str,
        trusted_proxies: tuple[str, ...] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self._limiter = limiter
        self._proxies = trusted_proxies
        self._metrics = metrics
        self._site = re.compile(re.escape(prefix) + r"/sites/([^/]+)(?:/|$)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authenticated = isinstance(scope.get(PRINCIPAL_SCOPE_KEY), str)
        if scope["type"] == "http" and self._limiter is not None and authenticated:
            match = self._site.match(scope["path"])
            cost = declared_bytes(Headers(scope=scope))
            site = match.group(1) if match else None
            principal = limited_principal(identity_of(scope), source_of(scope, self._proxies))
            admission = await self._limiter.admit(principal, site, cost)
            if not admission.allowed:
                count_refusal(self._metrics, "api", admission)
                await _refuse(admission, scope, receive, send)
                return
        await self.app(scope, receive, send)
