"""A span around every call of the translator (Backend -> Backend), when tracing is on.

:class:`BackendSpans` sits directly on the translator (policy.stack), so each call the policy
layers make reaches the storage inside a ``backend.<method>`` span (``backend.put_object``,
``backend.head_object``...) carrying ``pagewright.backend`` (the translator's name) and
``pagewright.site``; the SDK's own calls (the S3 translator's botocore requests) are its
children. A failure sets the span's status to ERROR. A GET's span covers the call that opens
the object and returns its head, not the body's streaming afterwards.

Lifecycle methods pass through: they belong to no request. The spans come from the tracer
the gateway made current for the request (core.tracing), so background work (retention, the
scrub, lease reclaims) makes none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.tracing import BACKEND, SITE, span
from policy.around import AroundBackend
from policy.forwarding import LIFECYCLE

T = TypeVar("T")


class BackendSpans(AroundBackend, passes_through=LIFECYCLE):
    """``inner`` with each data call in a ``backend.<method>`` span (module docstring)."""

    async def around(self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]) -> T:
        attributes = {BACKEND: self.name} if bucket is None else {BACKEND: self.name, SITE: bucket}
        with span(f"backend.{call}", attributes):
            return await invoke()
