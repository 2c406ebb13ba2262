"""A minimal, fast XML writer for the large replies (listings of up to 1,000 entries).

Building thousands of lxml elements dominated ListObjects; this writes the same document
as text. Values are escaped for XML character data (CR as ``&#xD;``, so that end-of-line
handling cannot turn it into LF); a value holding a character XML 1.0 cannot carry at all is
written URL-encoded, as ``gateway.s3xml.xml_safe`` writes it, so the document is always
well-formed XML 1.0.
"""

from __future__ import annotations

import re
from datetime import datetime

from gateway.s3xml import NS, iso8601, xml_safe

_ESCAPES = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("\r"): "&#xD;",
}
_SPECIAL = re.compile(r'[&<>"\r]|[^\t\n\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')


def escape(value: str) -> str:
    """``value`` as XML character data (most keys need no escaping: checked first)."""
    if _SPECIAL.search(value) is None:
        return value
    return xml_safe(value).translate(_ESCAPES)


class XmlWriter:
    """Appends elements to a document whose root carries S3's namespace."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<{root} xmlns="{NS}">']

    def leaf(self, tag: str, value: object | None) -> None:
        """``<tag>value</tag>``; nothing when value is None. bools as true/false."""
        if value is None:
            return
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, datetime):
            text = iso8601(value)
        elif isinstance(value, int):
            text = str(value)
        else:
            text = escape(str(value))
        self._parts.append(f"<{tag}>{text}</{tag}>")

    def open(self, tag: str) -> None:
        self._parts.append(f"<{tag}>")

    def close(self, tag: str) -> None:
        self._parts.append(f"</{tag}>")

    def raw(self, fragment: str) -> None:
        """Append an already-serialised fragment (built with this writer's rules)."""
        self._parts.append(fragment)

    def to_bytes(self) -> bytes:
        return "".join([*self._parts, f"</{self._root}>"]).encode("utf-8")
