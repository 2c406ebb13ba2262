"""The artifact API's access decision (pure ASGI middleware, inside Bearer authentication).

Every request to a route is decided before its handler runs, by the same engine and policies
as S3 requests: the action is ``pagewright:<route name>`` (the route's operation, as in
``openapi.json``: ``pagewright:PinArtifact``), the resource the route's site
(``arn:aws:s3:::<site>``), or ``*`` for routes over every site (SearchArtifacts). A request
that matches no route passes on, to be answered 404/405 by the router; the public paths are
never decided. Denials and every decision of a mutating request are audited
(``gateway.audit``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from starlette.datastructures import Headers
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import S3Error
from gateway.access import AccessCheck, condition_context
from gateway.access_log import request_id_of
from gateway.api.auth import identity_of
from gateway.api.errors import error_response, s3_error_response
from gateway.audit import READ_METHODS, audit
from gateway.client_address import source_address
from policy.access_control import AccessControl
from policy.metrics import Metrics

ACTION_PREFIX = "pagewright:"


def match_route(
    routes: Sequence[Route], prefix: str, scope: Scope
) -> tuple[str | None, str | None]:
    """(operation, site) of the route ``scope``'s path fully matches, else (None, None)."""
    path: str = scope["path"]
    if not path.startswith(prefix):
        return None, None
    probe = {
        "type": "http",
        "method": scope["method"],
        "path": path[len(prefix) :],
        "root_path": "",
    }
    for route in routes:
        match, child = route.matches(probe)
        if match is Match.FULL:
            site = child.get("path_params", {}).get("site")
            return route.name, site if isinstance(site, str) else None
    return None, None


class ApiAuthorization:
    """Pure ASGI middleware deciding ``pagewright:<operation>`` for every routed request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access: AccessControl,
        prefix: str,
        routes: Sequence[Route],
        public_paths: Collection[str],
        region: str,
        trusted_proxies: tuple[str, ...],
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._access = access
        self._prefix = prefix
        self._routes = routes
        self._public = frozenset(public_paths)
        self._region = region
        self._proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        operation, site = match_route(self._routes, self._prefix, scope)
        if operation is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        identity = identity_of(scope)
        source = source_address(
            (scope.get("client") or ("", 0))[0], headers.get("x-forwarded-for"), self._proxies
        )
        context = condition_context(
            identity,
            source=source,
            secure=scope.get("scheme") == "https",
            now=datetime.now(UTC),
            headers=headers,
            query={},
            region=self._region,
            signature=None,
            site=site,
        )
        check = AccessCheck(self._access, identity, context, operation)
        request_id = request_id_of(scope) or "-"
        try:
            decision = await check.decide(ACTION_PREFIX + operation, site, None)
        except S3Error as error:  # the catalog is unavailable
            response = s3_error_response(error, request_id=request_id)
            await response(scope, receive, send)
            return
        if not decision.allowed:
            where = f"site {site!r}" if site else "every site"
            message = f"{identity.name!r} may not {operation} on {where}"
            if self._metrics is not None:
                self._metrics.access_denied.labels("api", operation).inc()
            self._audit(request_id, check, scope["method"], 403)
            await error_response(403, "AccessDenied", message, request_id=request_id)(
                scope, receive, send
            )
            return
        audited = False

        async def auditing_send(message: Message) -> None:
            nonlocal audited
            if message["type"] == "http.response.start" and not audited:
                audited = True  # before the reply: whoever sees the reply can find its line
                self._audit(request_id, check, scope["method"], int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, auditing_send)
        finally:
            if not audited:  # the handler failed before replying
                self._audit(request_id, check, scope["method"], 500)

    @staticmethod
    def _audit(request_id: str, check: AccessCheck, method: str, status: int) -> None:
        for entry in check.entries:
            if method not in READ_METHODS or not entry.allowed:
                audit(request_id, entry, status)
