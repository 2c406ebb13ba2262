"""Gateway buckets a translator found recently, trusted for a moment: :class:`SeenBuckets`.

A write or a listing must be refused for a gateway bucket that does not exist, and on a
remote backend finding out is a request (the bucket's marker). The remote translators ask
once and trust a bucket they found for :data:`SEEN_TTL` seconds, which halves the requests
of a small write. A bucket another gateway process deleted may so take that long to be
refused; a write then lands under a prefix no bucket lists, as a write racing the deletion
always could. A translator forgets a bucket it deletes itself, so its own deletion is seen
at once; absence is never remembered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

#: Seconds a found bucket is trusted.
SEEN_TTL: Final = 2.0
_REMEMBERED: Final = 10_000


class SeenBuckets:
    """The buckets found in the last :data:`SEEN_TTL` seconds of ``clock`` (monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}

    def trusted(self, bucket: str) -> bool:
        """Whether ``bucket`` was found within the last :data:`SEEN_TTL` seconds."""
        return self._until.get(bucket, 0.0) > self.clock()

    def found(self, bucket: str) -> None:
        """``bucket`` exists now."""
        if len(self._until) >= _REMEMBERED:
            self._until.clear()
        self._until[bucket] = self.clock() + SEEN_TTL

    def forget(self, bucket: str) -> None:
        """This process is deleting ``bucket``: stop trusting that it exists."""
        self._until.pop(bucket, None)
