"""Request tracing: the server span of every HTTP request (pure ASGI middleware).

:class:`ServerSpans` opens a ``SERVER`` span per request, a child of the caller's span when
the request carries a W3C ``traceparent`` (and ``tracestate``), with OpenTelemetry's HTTP
attributes (``http.request.method``, ``url.path`` without the query, ``url.scheme``,
``server.address``/``server.port`` from ``Host``, ``network.peer.address``,
``user_agent.original``, ``http.response.status_code``), and makes the tracer current for
the request (:func:`core.tracing.tracing_with`) so the layers below open child spans. The
span is named by the request's method until :func:`describe_request` names it by the
Operation (the S3 route table's, or the artifact API route's name) and adds
``pagewright.operation``, ``pagewright.site`` and ``pagewright.request_id``. A 5xx reply or
an exception sets the span's status to ERROR (a 4xx is the client's error, not the
server's, as the HTTP conventions say).

:class:`Tracing` is what the gateway is given when tracing is on (``commands.tracing``
builds it from the standard ``OTEL_*`` variables); off, none of this runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, StatusCode, Tracer, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.tracing import OPERATION, REQUEST_ID, SITE, tracing_with


@dataclass(frozen=True)
class Tracing:
    """Tracing as configured: the tracer of the gateway's spans, and ``shutdown`` that
    exports what is still queued and stops the exporter (blocking; called once, when the
    gateway stops)."""

    tracer: Tracer
    shutdown: Callable[[], None]


_PROPAGATOR = TraceContextTextMapPropagator()
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "CONNECT"})


class ServerSpans:
    """Pure ASGI middleware: one ``SERVER`` span around each HTTP request ``app`` serves,
    except those ``untraced(scope)`` names (liveness and readiness probes)."""

    def __init__(
        self, app: ASGIApp, tracer: Tracer, untraced: Callable[[Scope], bool] | None = None
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.untraced is not None and self.untraced(scope)):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            headers.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
        method = scope["method"]
        status: int | None = None

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with (
            self.tracer.start_as_current_span(
                method if method in _METHODS else "HTTP",
                context=_PROPAGATOR.extract(headers),
                kind=SpanKind.SERVER,
                attributes=request_attributes(scope, headers),
            ) as span,
            tracing_with(self.tracer),
        ):
            try:
                await self.app(scope, receive, status_send)
            finally:
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_attribute("error.type", str(status))
                        span.set_status(StatusCode.ERROR)


def request_attributes(scope: Scope, headers: dict[str, str]) -> dict[str, AttributeValue]:
    """The HTTP semantic-convention attributes of a request known before it is served."""
    method: str = scope["method"]
    raw_path = scope.get("raw_path") or scope["path"].encode()
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method if method in _METHODS else "_OTHER",
        "url.path": raw_path.decode("latin-1"),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if method not in _METHODS:
        attributes["http.request.method_original"] = method
    host, _, port = headers.get("host", "").rpartition(":")
    if not host or "]" in port:  # no port, or a bare IPv6 address
        host, port = headers.get("host", ""), ""
    if host:
        attributes["server.address"] = host.strip("[]")
    if port.isdigit():
        attributes["server.port"] = int(port)
    client = scope.get("client")
    if client:
        attributes["network.peer.address"] = client[0]
    if "user-agent" in headers:
        attributes["user_agent.original"] = headers["user-agent"]
    return attributes


def describe_request(operation: str | None, site: str | None, request_id: str) -> None:
    """Name the current (server) span by ``operation`` and add the request's site and id;
    nothing when no span is recording."""
    current = get_current_span()
    if not current.is_recording():
        return
    if operation:
        current.update_name(operation)
        current.set_attribute(OPERATION, operation)
    if site:
        current.set_attribute(SITE, site)
    current.set_attribute(REQUEST_ID, request_id)
