"""Gateway keys as Azure blob names, and the fixed-length block ids of staged uploads.

S3 keys are opaque, but Azure is not: a URL path segment ``.`` or ``..`` is normalised away
before the request is signed (the request fails, or names another blob), names ending in a
dot lose it, control characters and ``U+FFFF`` break the XML of a listing, and the order of
non-ASCII names in a listing need not be UTF-8 byte order. So a key lives in one of two
places under its bucket's prefix:

* **verbatim** (the common case): printable ASCII with no ``\\``, no segment ending in
  ``.``, no leading ``/``, and not starting with :data:`ESCAPED`. Other tools see these
  objects under their own names, and Azure lists them in byte order (ASCII sorts alike in
  every collation), with server-side delimiter roll-up.
* **escaped**: every other key is stored as ``ESCAPED + base32hex(utf-8 key)`` (no
  padding). That alphabet is ASCII and ascending, so the escaped names also list in the
  keys' byte order, and a key's prefix maps to a name prefix up to its last whole symbol.

A listing merges the two sorted streams (see :mod:`translators.azure.listing`).
"""

from __future__ import annotations

import base64
import re
from typing import Final

#: The name prefix (inside a bucket's prefix) of escaped keys.
ESCAPED: Final = ".pagewright-escaped/"

_SAFE: Final = re.compile(r"[ -\[\]-~]*")  # printable ASCII except backslash


def is_verbatim(key: str) -> bool:
    """Whether ``key`` can be stored under its own name (see the module docstring)."""
    if not _SAFE.fullmatch(key) or key.startswith(("/", ESCAPED)):
        return False
    return not any(segment.endswith(".") for segment in key.split("/"))


def encode_escaped(key: str) -> str:
    """The name (relative to the bucket prefix) of a key that is not verbatim."""
    return ESCAPED + base64.b32hexencode(key.encode()).decode("ascii").rstrip("=")


def escaped_prefix(prefix: str) -> str:
    """The longest name prefix every escaped key starting with ``prefix`` shares."""
    bits = len(prefix.encode()) * 8
    return encode_escaped(prefix)[: len(ESCAPED) + bits // 5]


def decode_escaped(relative: str) -> str | None:
    """The key of an escaped name (relative to the bucket prefix); None if not one."""
    if not relative.startswith(ESCAPED):
        return None
    symbols = relative[len(ESCAPED) :]
    try:
        raw = base64.b32hexdecode(symbols + "=" * (-len(symbols) % 8))
        return raw.decode()
    except (ValueError, UnicodeDecodeError):
        return None


def relative_name(key: str) -> str:
    """Where ``key`` lives relative to its bucket's prefix."""
    return key if is_verbatim(key) else encode_escaped(key)


def block_id(upload_id: str, part_number: int, attempt: str, index: int) -> str:
    """A block id: base64 of 48 ASCII bytes (64 characters, Azure's limit), one length for
    every id on every blob, as Azure requires.

    ``upload_id`` is 32 hex digits (a PutObject uses a random one and part 0), ``attempt``
    8 hex digits unique to one upload of that part (a retried part never overwrites the
    blocks its previous record still names).
    """
    raw = f"{upload_id:>32.32}{part_number:04x}{attempt:>8.8}{index:04x}"
    return base64.b64encode(raw.encode("ascii")).decode("ascii")
