"""Bearer API keys -> principal, and what a principal may do.

API keys (``policy.catalog.SqlCatalog.create_api_key``) belong to the same principals as
the S3 credentials. :class:`BearerAuth` authenticates every request except the public
paths; :func:`identity_of` gives the Principal it found, which
``gateway.api.authorization`` decides with the one policy engine before any handler runs.
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
from policy.principals import ANONYMOUS, ROOT, Principal

_PRINCIPAL = "pagewright.principal"
PRINCIPAL_SCOPE_KEY = _PRINCIPAL  # read by the access log
#: Where a token's Principal (with its site roles) is kept, when the credential was a token.
IDENTITY_SCOPE_KEY = "pagewright.identity"
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


def identity_of(scope: Scope) -> Principal:
    """The :class:`Principal` :class:`BearerAuth` authenticated for ``scope``: the one a
    token carries, else root or the user its API key belongs to."""
    identity = scope.get(IDENTITY_SCOPE_KEY)
    if isinstance(identity, Principal):
        return identity
    name = scope.get(_PRINCIPAL)
    if name == ROOT_PRINCIPAL:
        return ROOT
    return Principal(name, "user") if isinstance(name, str) else ANONYMOUS
