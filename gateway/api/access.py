"""The artifact API's request ids and access lines (pure ASGI middleware, outermost).

For every request :class:`AccessLog` makes a request id (``gateway.access_log``), keeps it in
the scope for handlers and error replies (``gateway.access_log.request_id_of``), returns it in the
``x-amz-request-id`` header, and writes the one access line with the same fields as the S3
endpoint's: the operation is the name of the route the request matches (the OpenAPI
``operationId``), the bucket is its ``{site}``, the principal the one the Bearer key named.
The same call counts the request in the metrics (``surface="api"``); an error reply's code
is read from its JSON body (``{"error": {"code"}}``, the one shape every API error has).
When tracing, the request's server span (``gateway.tracing``) is named by the same operation.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Sequence

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access_log import REQUEST_ID_HEADER, SCOPE_KEY, log_request, new_request_id
from gateway.api.auth import PRINCIPAL_SCOPE_KEY
from gateway.api.authorization import match_route
from gateway.tracing import describe_request
from policy.metrics import Metrics

#: An error body longer than this is not read for its code (API errors are far shorter).
_ERROR_BODY_LIMIT = 64 * 1024


def error_code_of(body: bytes, encoding: str | None) -> str:
    """The ``error.code`` of an API error body (gzip-encoded or not); ``unknown`` if none."""
    try:
        text = gzip.decompress(body) if encoding == "gzip" else body
        code = json.loads(text)["error"]["code"]
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return "unknown"
    return code if isinstance(code, str) else "unknown"


class AccessLog:
    """Pure ASGI middleware over the API app mounted at ``prefix`` with ``routes``."""

    def __init__(
        self,
        app: ASGIApp,
        prefix: str,
        routes: Sequence[Route],
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self._prefix = prefix
        self._routes = routes
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_request_id()
        scope[SCOPE_KEY] = request_id
        operation, site = match_route(self._routes, self._prefix, scope)
        received = 0
        sent = 0
        status = 500
        encoding: str | None = None
        error_body = bytearray()

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal sent, status, encoding
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name.lower() == b"content-encoding":
                        encoding = value.decode("latin-1").lower()
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                sent += len(body)
                if status >= 400 and len(error_body) + len(body) <= _ERROR_BODY_LIMIT:
                    error_body.extend(body)
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        finally:
            describe_request(operation, site, request_id)  # the server span, when tracing
            principal = scope.get(PRINCIPAL_SCOPE_KEY)
            log_request(
                request_id=request_id,
                principal=principal if isinstance(principal, str) else None,
                operation=operation,
                bucket=site,
                method=scope["method"],
                status=status,
                bytes_received=received,
                bytes_sent=sent,
                started=started,
                metrics=self._metrics,
                surface="api",
                error_code=error_code_of(bytes(error_body), encoding) if status >= 400 else None,
            )
