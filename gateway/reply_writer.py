"""Writing a :class:`~gateway.responses.Reply` to the ASGI connection, the app's last step.

:func:`error_reply` renders an :class:`~core.errors.S3Error` as S3's XML error document (a 304
without a body). :func:`settle_unread_body` decides what becomes of a request body the
handler left unread: drained (up to :data:`DRAIN_LIMIT`) so the connection can carry the next
request, or the connection closed after the reply. :func:`send_reply` writes the reply with
the request id headers and counts the body bytes sent, for the access log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.errors import S3Error
from core.numbers import is_decimal, saturating_decimal
from gateway import s3xml
from gateway.request import BodySource
from gateway.responses import Reply

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: How much of a rejected body is read and dropped to keep the connection; more: closed.
DRAIN_LIMIT = 1024 * 1024


def error_reply(error: S3Error, request_id: str, resource: str) -> Reply:
    """S3's XML error document for ``error`` (a 304 carries only its headers)."""
    body = s3xml.error_document(error.code, error.message, request_id, resource, error.fields)
    if error.status == 304:
        return Reply(304, list(error.headers.items()))
    return Reply(error.status, [("Content-Type", "application/xml"), *error.headers.items()], body)


async def settle_unread_body(reply: Reply, headers: dict[str, str], source: BodySource) -> None:
    """Add ``Connection: close`` to ``reply`` when the request's body was not read to its end
    and cannot be drained: left unread, it would be parsed as the next request."""
    if source.finished or not _has_body(headers):
        return
    if _awaits_continue(headers, source):
        # The client sends the body only once asked (100 Continue): it was rejected
        # before that, so never ask; close, as the client may send it anyway.
        reply.headers.append(("Connection", "close"))
    elif not await source.drain(DRAIN_LIMIT):
        reply.headers.append(("Connection", "close"))


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or (is_decimal(length) and saturating_decimal(length) > 0)


def _awaits_continue(headers: dict[str, str], source: BodySource) -> bool:
    """The client asked for ``Expect: 100-continue`` and the body was never read (the
    server sends 100 Continue on the first read only)."""
    return headers.get("expect", "").lower() == "100-continue" and not source.asked


class Sent:
    """The body bytes of a reply written so far (kept when the stream fails midway)."""

    bytes: int = 0


async def send_reply(send: Send, reply: Reply, request_id: str, sent: Sent, *, head: bool) -> None:
    """Write ``reply``, counting its body bytes in ``sent``. A stream failing midway aborts
    the connection (raised to the server) so the client sees a failed download, never a
    short one that looks complete."""
    body = reply.body
    length = reply.content_length
    if length is None:
        length = len(body) if isinstance(body, bytes) else None
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
    headers.append((b"x-amz-request-id", request_id.encode()))
    headers.append((b"x-amz-id-2", request_id.encode()))
    if length is not None and reply.status != 304 and not (reply.status == 204 and length == 0):
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if isinstance(body, bytes):
        await send({"type": "http.response.body", "body": b"" if head else body})
        sent.bytes = 0 if head else len(body)
        return
    try:
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent.bytes += len(chunk)
    finally:
        await body.aclose()
    await send({"type": "http.response.body", "body": b""})
