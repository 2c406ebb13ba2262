"""Access logging: one ``request`` line per request, alike for the S3 endpoint and the API.

Every line (logger ``pagewright.access``) carries the same fields: ``request_id``,
``principal`` (``-`` when unauthenticated), ``operation`` (the S3 route table's Operation,
or the artifact API route's name), ``bucket`` (the bucket, which is the site), ``method``,
``status``, ``bytes_received`` (request body bytes as they came off the wire),
``bytes_sent`` (response body bytes) and ``duration_ms``. Headers, query strings, keys and
signatures are never among them. When the request is traced (a span is recording), the
line also carries ``trace_id`` and ``span_id`` (W3C hex) of its server span.

The same call counts the request in the gateway's metrics (``pagewright_requests_total``,
``pagewright_request_duration_seconds``, the byte counters and ``pagewright_errors_total``;
see docs/metrics.md), so the access line and the metrics never disagree.

Request ids come from :func:`new_request_id`; both surfaces return them in the
:data:`REQUEST_ID_HEADER` response header, and the same id is in the error body, the
Backend's ``RequestContext`` and every log line the request causes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

from core.tracing import trace_ids
from policy.metrics import Metrics

access_log = logging.getLogger("pagewright.access")

#: The response header naming the request id, on S3 and API replies alike.
REQUEST_ID_HEADER: Final = "x-amz-request-id"
#: Where the artifact API's ASGI scope keeps the request id.
SCOPE_KEY: Final = "pagewright.request_id"


def new_request_id() -> str:
    """A fresh request id: 16 upper-case hex digits, as S3's are."""
    return secrets.token_hex(8).upper()


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    """The request id the artifact API's access middleware put in ``scope``, if any."""
    value = scope.get(SCOPE_KEY)
    return value if isinstance(value, str) else None


def log_request(
    *,
    request_id: str,
    principal: str | None,
    operation: str | None,
    bucket: str | None,
    method: str,
    status: int,
    bytes_received: int,
    bytes_sent: int,
    started: float,
    error: BaseException | None = None,
    metrics: Metrics | None = None,
    surface: str = "s3",
    error_code: str | None = None,
) -> None:
    """Write the access line of one request; ``started`` is its ``time.perf_counter()``.

    ``error``: what aborted the reply midway (a streamed body that failed, e.g. a corrupt
    artifact, or the client gone); the line then says ``outcome: aborted`` at WARNING,
    with the error's type and S3 code, else ``outcome: complete``.

    With ``metrics``, the request is counted there under ``surface`` (``s3`` or ``api``):
    ``error_code`` is the code of an error reply; an aborted reply counts the error's S3
    code, or ``Aborted`` when it has none (the client went away, say).
    """
    duration = time.perf_counter() - started
    level = logging.WARNING if error is not None else logging.INFO
    if access_log.isEnabledFor(level):  # the line's fields are gathered only to be written
        outcome: dict[str, Any] = {"outcome": "complete"}
        if error is not None:
            outcome = {
                "outcome": "aborted",
                "error": type(error).__name__,
                "code": getattr(error, "code", None),
            }
        ids = trace_ids()
        traced = {} if ids is None else {"trace_id": ids[0], "span_id": ids[1]}
        access_log.log(
            level,
            "request",
            extra={
                **outcome,
                **traced,
                "request_id": request_id,
                "principal": principal or "-",
                "operation": operation,
                "bucket": bucket,
                "method": method,
                "status": status,
                "bytes_received": bytes_received,
                "bytes_sent": bytes_sent,
                "duration_ms": round(duration * 1000, 3),
            },
        )
    if metrics is not None:
        if error is not None:
            error_code = getattr(error, "code", None) or "Aborted"
        metrics.observe_request(
            surface=surface,
            operation=operation,
            status=status,
            received=bytes_received,
            sent=bytes_sent,
            seconds=duration,
            error_code=error_code if status >= 400 or error is not None else None,
        )
