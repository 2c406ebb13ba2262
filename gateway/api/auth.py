"""Bearer API keys and OIDC tokens -> principal, and what a principal may do.

API keys (``policy.api_keys.ApiKeyStore.create_api_key``) belong to the same principals as
the S3 credentials; OIDC tokens (JWTs from a configured issuer, :mod:`policy.oidc`) stand
for a session principal carrying the token's site roles. :class:`BearerAuth` authenticates
every request except the public paths; :func:`identity_of` gives the Principal it found, which
``gateway.api.authorization`` decides with the one policy engine before any handler runs.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import S3Error
from core.tracing import span
from gateway.access_log import request_id_of
from gateway.api.errors import ApiError, error_response, s3_error_response
from gateway.api.services import ApiKeyLookup
from policy.credentials import ROOT_PRINCIPAL
from policy.oidc import IssuerUnavailable, TokenError, TokenVerifier, looks_like_jwt
from policy.principals import ANONYMOUS, ROOT, Principal

_PRINCIPAL = "pagewright.principal"
PRINCIPAL_SCOPE_KEY = _PRINCIPAL  # read by the access log
#: Where a token's Principal (with its site roles) is kept, when the credential was a token.
IDENTITY_SCOPE_KEY = "pagewright.identity"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pagewright"'}
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="pagewright", error="invalid_token"'}


class BearerAuth:
    """Pure ASGI middleware: ``Authorization: Bearer <api key>`` must name a live key, or
    ``Bearer <JWT>`` be a token ``token_verifier`` accepts, else 401 ``Unauthorized`` (with
    a Bearer challenge; 503 when the token's issuer cannot be reached). Requests for
    ``public_paths`` (exact paths) pass without a key.

    The principal's name goes in the scope under :data:`PRINCIPAL_SCOPE_KEY` (the access
    log's); a token's :class:`Principal` (with its site roles) under
    :data:`IDENTITY_SCOPE_KEY`."""

    def __init__(
        self,
        app: ASGIApp,
        api_keys: ApiKeyLookup,
        public_paths: Collection[str],
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        self.app = app
        self._api_keys = api_keys
        self._public = frozenset(public_paths)
        self._verifier = token_verifier if token_verifier and token_verifier.configured else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        principal = None
        bearer = secret.strip() if scheme.lower() == "bearer" else ""
        if self._verifier is not None and looks_like_jwt(bearer):
            try:
                with span("authenticate"):
                    identity = await self._verifier.verify(bearer)
            except TokenError as error:
                unavailable = isinstance(error, IssuerUnavailable)
                response = error_response(
                    503 if unavailable else 401,
                    "ServiceUnavailable" if unavailable else "Unauthorized",
                    f"the OIDC token was refused: {error}",
                    None if unavailable else _INVALID_TOKEN,
                    request_id=request_id_of(scope),
                )
                await response(scope, receive, send)
                return
            scope[IDENTITY_SCOPE_KEY] = identity
            principal = identity.name
        elif bearer:
            try:
                with span("authenticate"):
                    principal = await self._api_keys.principal_for_api_key(bearer)
            except S3Error as error:  # the catalog database is unavailable
                response = s3_error_response(error, request_id=request_id_of(scope))
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
