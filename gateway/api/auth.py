"""Bearer API keys -> principal, and what a principal may do.

API keys (``policy.catalog.SqlCatalog.create_api_key``) belong to the same principals as
the S3 credentials. :class:`BearerAuth` authenticates every request except the public
paths; handlers read the principal with :func:`principal_of` and check it with
:func:`authorize`.

Authorization today: the root principal may do everything and no one else may do anything.
Per-site RBAC (a principal's sites and actions) is future work; :func:`authorize` is the one
place it will go.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import S3Error
from gateway.access_log import request_id_of
from gateway.api.errors import ApiError, error_response
from gateway.api.services import ApiCatalog
from policy.credentials import ROOT_PRINCIPAL

_PRINCIPAL = "pagewright.principal"
PRINCIPAL_SCOPE_KEY = _PRINCIPAL  # read by the access log
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pagewright"'}


class BearerAuth:
    """Pure ASGI middleware: ``Authorization: Bearer <api key>`` must name a live key,
    else 401 ``Unauthorized`` (with a Bearer challenge). Requests for ``public_paths``
    (exact paths) pass without a key."""

    def __init__(self, app: ASGIApp, catalog: ApiCatalog, public_paths: Collection[str]) -> None:
        self.app = app
        self._catalog = catalog
        self._public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        principal = None
        if scheme.lower() == "bearer" and secret.strip():
            try:
                principal = await self._catalog.principal_for_api_key(secret.strip())
            except S3Error as error:  # the catalog database is unavailable
                response = error_response(
                    error.status, error.code, error.message, request_id=request_id_of(scope)
                )
                await response(scope, receive, send)
                return
        if principal is None:
            message = "a valid API key is required (Authorization: Bearer <key>)"
            response = error_response(
                401, "Unauthorized", message, _CHALLENGE, request_id=request_id_of(scope)
            )
            await response(scope, receive, send)
            return
        scope[_PRINCIPAL] = principal
        await self.app(scope, receive, send)


def principal_of(request: Request) -> str:
    """The principal :class:`BearerAuth` authenticated for ``request``."""
    principal = request.scope.get(_PRINCIPAL)
    if not isinstance(principal, str):
        raise ApiError("Unauthorized", "this request was not authenticated")
    return principal


def authorize(principal: str, site: str | None) -> None:
    """Allow ``principal`` to act on ``site`` (every site when None), else ``AccessDenied``.

    Only the root principal is allowed, for now (see the module docstring)."""
    if principal != ROOT_PRINCIPAL:
        where = f"site {site!r}" if site else "these sites"
        raise ApiError("AccessDenied", f"principal {principal!r} may not act on {where}")
