"""The Azure translator's one retry layer: the SDK's retry policy, with short waits.

The storage SDK's own :class:`~azure.storage.blob.aio.ExponentialRetry` waits 15 s plus
3^n between attempts (84 s in all for a failing call), so a backend outage reached the
gateway's circuit breaker only minutes in, and each request waited that long for its 503.
:class:`ShortRetry` keeps the SDK's policy (which requests it retries: connection errors,
408, 429 and 5xx; rewinding seekable bodies; covering listings being iterated and downloads
being streamed, which no loop around a call could wrap) and changes only the wait: full
jitter, ``uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2**(n - 1)))`` before retry ``n``, as
botocore's standard mode waits on non-throttling errors. With ``RETRIES`` retries a failing
call gives up within about a third of a second plus its attempts; the gateway's client
retries with its own backoff after the 503.

Each retry is reported to :func:`core.retries.retried` (``pagewright_backend_retries_total``).
"""

from __future__ import annotations

import random
from typing import Any, Final

from azure.storage.blob.aio import ExponentialRetry

from core.retries import retried

#: Retries after the first attempt.
RETRIES: Final = 3
BASE_DELAY_S: Final = 0.05
MAX_DELAY_S: Final = 1.0


class ShortRetry(ExponentialRetry):
    """The SDK's exponential retry with full-jitter waits of tens of milliseconds."""

    def __init__(self, retries: int = RETRIES) -> None:
        super().__init__(retry_total=retries, initial_backoff=0, increment_base=2)

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        """Seconds to wait before the retry the SDK is about to make (``settings["count"]``
        is 1 before the first)."""
        retry = max(1, int(settings.get("count", 1)))
        return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (retry - 1)))

    async def sleep(self, settings: dict[str, Any], transport: Any) -> None:
        """Wait before a retry (the SDK calls this once per retry, which is counted)."""
        retried()
        await super().sleep(settings, transport)  # type: ignore[no-untyped-call]
