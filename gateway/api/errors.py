"""The API's one error table and its JSON rendering: ``{"error": {"code", "message",
"request_id"}}`` (the request id also names the request's access line).

Handlers raise :class:`ApiError` (or let an ``S3Error`` from the Backend, a catalog
``CursorError`` or a ``PolicyError`` through); :data:`EXCEPTION_HANDLERS` renders each.
:class:`InternalErrors` turns anything else into a logged 500 ``InternalError`` that names
the request id, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import S3Error
from gateway.access_log import new_request_id, request_id_of
from policy.catalog_records import CursorError
from policy.policies import PolicyError

log = logging.getLogger("pagewright.api")

#: API error code -> HTTP status.
ERRORS: Final[dict[str, int]] = {
    "InvalidArgument": 400,
    "InvalidCursor": 400,
    "InvalidPolicy": 400,
    "InvalidSiteName": 400,
    "MalformedJSON": 400,
    "Unauthorized": 401,
    "AccessDenied": 403,
    "NotFound": 404,
    "NoSuchArtifact": 404,
    "MethodNotAllowed": 405,
    "InternalError": 500,
    "SlowDown": 503,
}
_HTTP_CODES: Final[dict[int, str]] = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized"}


class ApiError(Exception):
    """An API error response; ``code`` is a key of :data:`ERRORS`."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        if code not in ERRORS:
            raise KeyError(f"unknown API error code {code!r}")
        self.code = code
        self.status = ERRORS[code]
        self.message = message
        self.headers = headers or {}
        super().__init__(f"{code}: {message}")


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    request_id: str | None = None,
) -> JSONResponse:
    error = {"code": code, "message": message}
    if request_id is not None:
        error["request_id"] = request_id
    return JSONResponse({"error": error}, status, headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.code, exc.message, exc.headers, request_id=request_id_of(request.scope)
    )


def s3_error_response(exc: S3Error, *, request_id: str | None = None) -> JSONResponse:
    """An ``S3Error`` (from the Backend or the catalog) in the API's shape, keeping its
    ``Retry-After`` (503 while a dependency is down); its other headers are S3's."""
    retry_after = exc.headers.get("Retry-After")
    headers = None if retry_after is None else {"Retry-After": retry_after}
    return error_response(exc.status, exc.code, exc.message, headers, request_id=request_id)


async def _s3_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, S3Error)
    request_id = request_id_of(request.scope)
    if exc.status >= 500:
        log.warning("backend error: %s", exc, extra={"request_id": request_id})
    return s3_error_response(exc, request_id=request_id)


async def _cursor_error(request: Request, exc: Exception) -> Response:
    return error_response(400, "InvalidCursor", str(exc), request_id=request_id_of(request.scope))


async def _policy_error(request: Request, exc: Exception) -> Response:
    return error_response(400, "InvalidPolicy", str(exc), request_id=request_id_of(request.scope))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "InvalidArgument")
    return error_response(
        exc.status_code,
        code,
        exc.detail,
        dict(exc.headers or {}),
        request_id=request_id_of(request.scope),
    )


EXCEPTION_HANDLERS: Final[dict[Any, Any]] = {
    ApiError: _api_error,
    S3Error: _s3_error,
    CursorError: _cursor_error,
    PolicyError: _policy_error,
    HTTPException: _http_error,
}


class InternalErrors:
    """Pure ASGI middleware: an exception no handler rendered becomes a logged 500
    ``InternalError`` with a request id. Once a response has started (a streamed tar),
    the exception is re-raised so the server aborts the connection: the client then sees
    a failed download, never a short one that looks complete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = request_id_of(scope) or new_request_id()
            log.exception("unhandled API error", extra={"request_id": request_id})
            if started:
                raise
            response = error_response(
                500,
                "InternalError",
                f"internal error (request id {request_id})",
                request_id=request_id,
            )
            await response(scope, receive, send)
