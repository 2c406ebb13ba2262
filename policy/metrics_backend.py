"""The translator's calls, timed and counted (a Backend wrapper, innermost in the stack).

:class:`MeasuredBackend` sits directly around the translator (``policy.stack.build_stack``),
so what it measures is the storage alone, not the policy wrappers' own work. Every call is
counted in ``pagewright_backend_calls_total{backend, call, outcome}`` (``ok`` or the S3
error code) and timed in ``pagewright_backend_call_duration_seconds{backend, call}``. A
``get_object`` is timed until its body is opened: the streaming of the body belongs to the
request and is in ``pagewright_request_duration_seconds``. ``start`` and ``close`` pass
through unmeasured; ``check_ready`` (the readiness probe's storage check) is measured.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from policy.around import AroundBackend
from policy.metrics import Metrics
from translators.base import Backend

T = TypeVar("T")


class MeasuredBackend(AroundBackend, passes_through={"start", "close"}):
    """Times and counts every call to ``inner`` in ``metrics`` (module docstring)."""

    def __init__(self, inner: Backend, metrics: Metrics) -> None:
        super().__init__(inner)
        self._metrics = metrics

    async def around(self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]) -> T:
        with self._metrics.timed(self.name, call):
            return await invoke()
