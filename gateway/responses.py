"""Handler results: a :class:`Reply` value, written to the socket by the app, never by handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from core.streams import ObjectBody
from gateway.s3xml import serialize


@dataclass
class Reply:
    """An HTTP reply. ``body`` is bytes or a stream of ``content_length`` bytes; a HEAD reply
    carries ``content_length`` with an empty body."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | ObjectBody = b""
    content_length: int | None = None


def xml_reply(
    root: etree._Element, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Reply:
    return Reply(status, [("Content-Type", "application/xml"), *(headers or [])], serialize(root))


def empty_reply(status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, headers or [])


_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def http_date(moment: datetime) -> str:
    """RFC 7231 date: ``Wed, 25 Nov 2026 17:22:50 GMT`` (English names whatever the
    locale; formatted here, once per GET and HEAD, rather than by email.utils)."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return (
        f"{_DAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year:04d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} GMT"
    )


def quote_etag(etag: str) -> str:
    return f'"{etag}"'
