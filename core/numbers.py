"""The one strict parser for the decimal numbers requests carry.

Contract: a number is 1 or more ASCII digits ``0``-``9`` and nothing else: no sign, no
spaces, no ``_``, no other Unicode digits (``str.isdigit`` accepts ``²``, which ``int``
then refuses; ``int`` accepts ``٣`` and ``1_000``). Its length is bounded before it is
converted (``int`` refuses more than 4,300 digits and is slow long before), and its value
must lie in an explicit ``[low, high]``. :func:`decimal` raises :class:`NumberError`,
which tells a malformed text from an out-of-range number so each caller can answer its
own protocol's error; :func:`int_argument` is that answer for S3's ``InvalidArgument``.

:func:`saturating_decimal` is for values where any size is well-formed and "larger than
anything stored" is the meaning (the positions of an HTTP ``Range``).
"""

from __future__ import annotations

import re
from typing import Final

from core.errors import S3Error

#: The largest value a signed 64-bit column (BIGINT) holds: the ceiling of every size.
INT64_MAX: Final = 2**63 - 1
#: Texts longer than this are out of range whatever ``high`` is (leading zeros included).
MAX_DIGITS: Final = 32
_DIGITS: Final = re.compile(r"[0-9]+")


class NumberError(ValueError):
    """``text`` is not a decimal number (``out_of_range`` False) or is one outside
    ``[low, high]`` (``out_of_range`` True)."""

    def __init__(self, text: str, low: int, high: int, *, out_of_range: bool) -> None:
        self.text = text
        self.low = low
        self.high = high
        self.out_of_range = out_of_range
        what = f"outside {low}..{high}" if out_of_range else "not a decimal number"
        super().__init__(f"{text[:40]!r} is {what}")


def is_decimal(text: str) -> bool:
    """True when ``text`` is ASCII digits only (any length)."""
    return _DIGITS.fullmatch(text) is not None


def decimal(text: str, *, low: int = 0, high: int = INT64_MAX) -> int:
    """``text`` as an int in ``[low, high]``; :class:`NumberError` otherwise (see module)."""
    if not is_decimal(text):
        raise NumberError(text, low, high, out_of_range=False)
    if len(text) > MAX_DIGITS:
        raise NumberError(text, low, high, out_of_range=True)
    value = int(text)
    if not low <= value <= high:
        raise NumberError(text, low, high, out_of_range=True)
    return value


def saturating_decimal(text: str, ceiling: int = INT64_MAX) -> int:
    """``text`` as an int, with every value above ``ceiling`` read as ``ceiling``; a text
    that is not ASCII digits raises :class:`NumberError`."""
    if not is_decimal(text):
        raise NumberError(text, 0, ceiling, out_of_range=False)
    significant = text.lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:
        return ceiling
    return min(int(significant), ceiling)


def int_argument(
    name: str, text: str, *, low: int = 0, high: int = INT64_MAX, message: str | None = None
) -> int:
    """A numeric request parameter or header ``name``: its value, or S3's
    ``InvalidArgument`` naming it (``ArgumentName``/``ArgumentValue``)."""
    try:
        return decimal(text, low=low, high=high)
    except NumberError:
        raise S3Error(
            "InvalidArgument",
            message or f"{name} must be an integer between {low} and {high}, inclusive",
            ArgumentName=name,
            ArgumentValue=text,
        ) from None
