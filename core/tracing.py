"""Spans for the steps of a request, on the tracer the gateway made current for it.

The gateway opens each request's server span and makes its tracer current for that request
(:func:`tracing_with`); every layer below opens its child spans with :func:`span` (or, for
an SDK call whose start and end are two callbacks, :func:`start_span`), without being handed
the tracer. The OpenTelemetry context, which holds the current span, and the tracer both
live in context variables, so they follow the request into worker threads
(``anyio.to_thread`` copies the context) and nowhere else: background work (retention, the
scrub) makes no spans.

Tracing off (no tracer current): :func:`span` returns one shared no-op context manager and
:func:`start_span` returns None, so a step costs one context-variable lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Final

from opentelemetry.trace import (
    INVALID_SPAN,
    Span,
    SpanKind,
    StatusCode,
    Tracer,
    format_span_id,
    format_trace_id,
    get_current_span,
)
from opentelemetry.util.types import AttributeValue

#: The span attributes the project adds to OpenTelemetry's own.
OPERATION: Final = "pagewright.operation"
SITE: Final = "pagewright.site"
REQUEST_ID: Final = "pagewright.request_id"
BACKEND: Final = "pagewright.backend"

Attributes = Mapping[str, AttributeValue]

_TRACER: ContextVar[Tracer | None] = ContextVar("pagewright_tracer", default=None)
_OFF: Final = nullcontext(INVALID_SPAN)


@contextmanager
def tracing_with(tracer: Tracer) -> Iterator[None]:
    """Make ``tracer`` the one :func:`span` uses inside the block (one request's life)."""
    token = _TRACER.set(tracer)
    try:
        yield
    finally:
        _TRACER.reset(token)


def span(
    name: str, attributes: Attributes | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span]:
    """A child of the current span for the block, current inside it and ended after it;
    an exception leaving the block is recorded on it and sets its status to ERROR.

    With no tracer current it is a no-op yielding a non-recording span."""
    tracer = _TRACER.get()
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def start_span(
    name: str, attributes: Attributes | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> Span | None:
    """A child of the current span, not made current; the caller ends it. None when no
    tracer is current."""
    tracer = _TRACER.get()
    if tracer is None:
        return None
    return tracer.start_span(name, kind=kind, attributes=attributes)


def failed(span: Span, error: BaseException) -> None:
    """Record on ``span`` an ``error`` that is handled inside it (so never leaves it)."""
    if span.is_recording():
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")


def trace_ids() -> tuple[str, str] | None:
    """The (trace id, span id) of the current span in W3C hex (32 and 16 digits), when a
    span is recording; None otherwise."""
    current = get_current_span()
    if not current.is_recording():
        return None
    context = current.get_span_context()
    return format_trace_id(context.trace_id), format_span_id(context.span_id)
