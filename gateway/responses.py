"""Handler results: a :class:`Reply` value, written to the socket by the app, never by handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

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


def http_date(moment: datetime) -> str:
    """RFC 7231 date: ``Wed, 25 Nov 2026 17:22:50 GMT``."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'
