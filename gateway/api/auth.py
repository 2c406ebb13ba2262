"""Bearer API keys and OIDC tokens -> principal, and what a principal may do.

API keys (``policy.catalog.SqlCatalog.create_api_key``) belong to the same principals as
the S3 credentials; OIDC tokens (JWTs from a configured issuer, :mod:`policy.oidc`) stand
for a session principal carrying the token's site roles. :class:`BearerAuth` authenticates
every request except the public paths; handlers read the principal's name with
:func:`principal_of` (the full :class:`~policy.principals.Principal` with
:func:`identity_of`) and check it with :func:`authorize`.

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
from policy.oidc import IssuerUnavailable, TokenError, TokenVerifier, looks_like_jwt
from policy.principals import Principal

_PRINCIPAL = "pagewright.principal"
PRINCIPAL_SCOPE_KEY = _PRINCIPAL  # read by the access log
IDENTITY_SCOPE_KEY = "pagewright.identity"  # the Principal, beside its name
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pagewright"'}


class BearerAuth:
    """Pure ASGI middleware: ``Authorization: Bearer <api key>`` must name a live key, or
    ``Bearer <JWT>`` be a token ``token_verifier`` accepts, else 401 ``Unauthorized`` (with
    a Bearer challenge; 503 when the token's issuer cannot be reached). Requests for
    ``public_paths`` (exact paths) pass without a key.

    The principal's name goes in the scope under :data:`PRINCIPAL_SCOPE_KEY` (the access
    log's), the :class:`Principal` under :data:`IDENTITY_SCOPE_KEY`."""

    def __init__(
        self,
        app: ASGIApp,
        catalog: ApiCatalog,
        public_paths: Collection[str],
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        self.app = app
        self._catalog = catalog
        self._public = frozenset(public_paths)
        self._verifier = token_verifier if token_verifier and token_verifier.configured else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        principal = None
        identity = None
        bearer = secret.strip() if scheme.lower() == "bearer" else ""
        if self._verifier is not None and looks_like_jwt(bearer):
            try:
                identity = await self._verifier.verify(bearer)
            except TokenError as error:
                status, code = (
                    (503, "ServiceUnavailable")
                    if isinstance(error, IssuerUnavailable)
                    else (401, "Unauthorized")
                )
                challenge = {"WWW-Authenticate": 'Bearer realm="pagewright", error="invalid_token"'}
                response = error_response(
                    status,
                    code,
                    f"the OIDC token was refused: {error}",
                    challenge if status == 401 else None,
                    request_id=request_id_of(scope),
                )
                await response(scope, receive, send)
                return
            principal = identity.name
        elif bearer:
            try:
                principal = await self._catalog.principal_for_api_key(bearer)
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
        scope[IDENTITY_SCOPE_KEY] = identity or Principal(
            principal, "root" if principal == ROOT_PRINCIPAL else "user"
        )
        await self.app(scope, receive, send)


def principal_of(request: Request) -> str:
    """The principal :class:`BearerAuth` authenticated for ``request``."""
    principal = request.scope.get(_PRINCIPAL)
    if not isinstance(principal, str):
        raise ApiError("Unauthorized", "this request was not authenticated")
    return principal


def identity_of(request: Request) -> Principal:
    """The :class:`Principal` :class:`BearerAuth` authenticated for ``request``."""
    identity = request.scope.get(IDENTITY_SCOPE_KEY)
    if not isinstance(identity, Principal):
        raise ApiError("Unauthorized", "this request was not authenticated")
    return identity


def authorize(principal: str, site: str | None) -> None:
    """Allow ``principal`` to act on ``site`` (every site when None), else ``AccessDenied``.

    Only the root principal is allowed, for now (see the module docstring)."""
    if principal != ROOT_PRINCIPAL:
        where = f"site {site!r}" if site else "these sites"
        raise ApiError("AccessDenied", f"principal {principal!r} may not act on {where}")
