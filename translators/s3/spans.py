"""A ``CLIENT`` span per boto3 call of the S3 translator, from botocore's own events.

:func:`trace_calls` registers three handlers on a client: ``before-call`` opens a span named
``S3.<Operation>`` (``S3.PutObject``) with ``rpc.system=aws-api``, ``rpc.service=S3``,
``rpc.method``; ``after-call`` adds ``http.response.status_code``, ``aws.request_id`` and
the retries botocore made, sets ERROR on a status of 400 or more, and ends it;
``after-call-error`` (no response at all: a refused connection, a timeout) records the
error and ends it. One span covers the call with botocore's retries.

The calls run in worker threads, which inherit the request's context (core.tracing), so the
span is a child of the translator call's ``backend.<method>`` span; with no tracer current
the handlers do nothing. No trace header is sent to the backend: it would be signed, and a
proxy that rewrites it would break the signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import SpanKind, StatusCode

from core.tracing import start_span

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_SPAN: Final = "pagewright_span"


def trace_calls(client: S3Client) -> None:
    """Open a span for every call ``client`` makes (module docstring)."""
    events = client.meta.events
    events.register("before-call.s3", _before_call)
    events.register("after-call.s3", _after_call)
    events.register("after-call-error.s3", _after_call_error)


def _before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
    span = start_span(
        f"S3.{model.name}",
        {"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": model.name},
        kind=SpanKind.CLIENT,
    )
    if span is not None:
        context[_SPAN] = span


def _after_call(
    http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
) -> None:
    span = context.pop(_SPAN, None)
    if span is None:
        return
    status: int = http_response.status_code
    span.set_attribute("http.response.status_code", status)
    metadata = parsed.get("ResponseMetadata", {})
    if request_id := metadata.get("RequestId"):
        span.set_attribute("aws.request_id", request_id)
    if retries := metadata.get("RetryAttempts"):
        span.set_attribute("pagewright.retries", retries)
    if status >= 400:
        code = parsed.get("Error", {}).get("Code") or str(status)
        span.set_attribute("error.type", code)
        span.set_status(StatusCode.ERROR, code)
    span.end()


def _after_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN, None)
    if span is None:
        return
    span.record_exception(exception)
    span.set_attribute("error.type", type(exception).__name__)
    span.set_status(StatusCode.ERROR, str(exception))
    span.end()
