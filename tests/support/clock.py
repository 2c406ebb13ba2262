"""A clock tests set by hand, for the code that takes a ``clock`` (monotonic seconds)."""

from __future__ import annotations


class Clock:
    """Reads ``now``, which the test sets or advances (``clock.now += 5``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
