"""Rate limits at the S3 surface (the decisions are :mod:`policy.rate_limits`'s).

Before authentication the source address (``aws:SourceIp``, trusted proxies applied) is
checked against its authentication failures; a failed authentication is counted (the codes
of ``gateway.audit.AUTHENTICATION_FAILURES``); after the access decision, the principal's
and the site's buckets are charged one request and the upload's declared length. A refusal
is S3's 503 ``SlowDown`` with ``Retry-After`` in whole seconds (at least 1), which S3
clients retry with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import S3Error
from core.numbers import is_decimal, saturating_decimal
from gateway.client_address import source_address
from policy.metrics import Metrics
from policy.principals import Principal
from policy.rate_buckets import Admission


def limited_principal(identity: Principal, source: str) -> str:
    """Whose buckets a request is charged to: the principal, named by its ARN (so a user, a
    session and root never share one), or for an anonymous request its source address (so
    one anonymous client cannot use up every anonymous client's limit)."""
    if identity.kind == "anonymous":
        return f"anonymous@{source}"
    return identity.arn


def source_of(scope: Mapping[str, Any], trusted_proxies: tuple[str, ...]) -> str:
    """The client address of an ASGI request, as policies see it (``aws:SourceIp``: the
    peer, or behind trusted proxies the address they forwarded; see gateway.client_address)."""
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    ]
    peer = (scope.get("client") or ("", 0))[0]
    return source_address(peer, ",".join(forwarded) or None, trusted_proxies)


def declared_bytes(headers: Mapping[str, str]) -> int:
    """The body length the request declares: ``x-amz-decoded-content-length`` (aws-chunked
    uploads) or ``Content-Length``; 0 when neither is a number."""
    for name in ("x-amz-decoded-content-length", "content-length"):
        value = headers.get(name, "").strip()
        if is_decimal(value):
            return saturating_decimal(value)
    return 0


def refusal_message(admission: Admission) -> str:
    return f"Please reduce your request rate ({admission.limit_name} limit)."


def count_refusal(metrics: Metrics | None, surface: str, admission: Admission) -> None:
    """Count a refused admission in ``pagewright_rate_limited_total`` (with ``metrics``)."""
    if metrics is not None and not admission.allowed:
        metrics.rate_limited.labels(surface, admission.limit_name or "unknown").inc()


def raise_if_refused(admission: Admission, metrics: Metrics | None = None) -> None:
    """``SlowDown`` with ``Retry-After`` unless ``admission`` allows the request (an S3
    request: a refusal is counted in ``metrics`` under ``surface="s3"``)."""
    count_refusal(metrics, "s3", admission)
    if not admission.allowed:
        raise S3Error(
            "SlowDown",
            refusal_message(admission),
            headers={"Retry-After": str(admission.retry_after_seconds)},
        )
