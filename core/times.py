"""Times stored as text: parsed back, with their UTC offset required."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_aware(value: Any) -> datetime:
    """An ISO 8601 time with its UTC offset, as stored documents and backups write times
    (``TypeError`` for a non-string, ``ValueError`` for a malformed or offset-less one)."""
    if not isinstance(value, str):
        raise TypeError("a time must be a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed
