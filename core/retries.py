"""Counting a backend call's retries across the translator boundary.

Each translator retries in its own layer (botocore's retry handler, the Azure SDK's retry
policy, :func:`translators.blocking.retrying`), deep below the wrapper that measures the
call (``policy.metrics_backend``). The measuring side opens :func:`counting` around a
call; the retrying side calls :func:`retried` once per retry it makes, in the same
context: the same task, or a worker thread started from it (``anyio.to_thread`` runs the
call in a copy of the context, which holds the same :class:`RetryCount`). A retry made
outside any :func:`counting` (a streamed body read after the call returned) is not counted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class RetryCount:
    """The retries of one call so far; safe to bump from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    def add(self, count: int = 1) -> None:
        with self._lock:
            self._value += count


_CURRENT: ContextVar[RetryCount | None] = ContextVar("pagewright_retry_count", default=None)


@contextmanager
def counting() -> Iterator[RetryCount]:
    """Count the retries made within the block (nested blocks count in the innermost)."""
    count = RetryCount()
    token = _CURRENT.set(count)
    try:
        yield count
    finally:
        _CURRENT.reset(token)


def retried() -> None:
    """Record one retry of the current call (a no-op outside :func:`counting`)."""
    count = _CURRENT.get()
    if count is not None:
        count.add()
