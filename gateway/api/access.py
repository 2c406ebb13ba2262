"""The artifact API's request ids and access lines (pure ASGI middleware, outermost).

For every request :class:`AccessLog` makes a request id (``gateway.access_log``), keeps it in
the scope for handlers and error replies (``gateway.access_log.request_id_of``), returns it in the
``x-amz-request-id`` header, and writes the one access line with the same fields as the S3
endpoint's: the operation is the name of the route the request matches (the OpenAPI
``operationId``), the bucket is its ``{site}``, the principal the one the Bearer key named.
When tracing, the request's server span (``gateway.tracing``) is named by the same operation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access_log import REQUEST_ID_HEADER, SCOPE_KEY, log_request, new_request_id
from gateway.api.auth import PRINCIPAL_SCOPE_KEY
from gateway.api.authorization import match_route
from gateway.tracing import describe_request


class AccessLog:
    """Pure ASGI middleware over the API app mounted at ``prefix`` with ``routes``."""

    def __init__(self, app: ASGIApp, prefix: str, routes: Sequence[Route]) -> None:
        self.app = app
        self._prefix = prefix
        self._routes = routes

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

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal sent, status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
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
            )
