"""The HTTP/1.1 server protocol: uvicorn's httptools protocol with a bounded header section.

uvicorn's httptools protocol (``uvicorn.Config(http="httptools")``) reads a request's line
and header section without any limit (httptools keeps a header value in memory however
long it grows) and waits for it forever. :func:`bounded_protocol` returns a subclass that,
before the ASGI application sees a request:

* feeds the parser a request's line and header section in slices that never take it past
  ``max_header_bytes``; once a request needs more, it answers S3's
  ``400 RequestHeaderSectionTooLarge`` and closes the connection. Many small headers or
  one huge one cost the same: at most the limit, plus one network read when a request
  starts in the read that ended the previous one (what follows the end of a request or
  of a header section in the same slice or read is not counted).
* gives a request ``header_timeout`` seconds, from its first byte (or from the connection
  being opened), to complete its header section: a late one is answered ``400
  RequestTimeout``, an idle new connection simply closed.

Refusals are written as a short response after which the connection is half-closed and
what the client still sends is discarded (at most :data:`LINGER_BYTES`, for at most
:data:`LINGER_SECONDS`), so the client reads the answer instead of a reset. The request
body's pace is the application's business (:class:`gateway.request.BodySource`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from http import HTTPStatus
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.errors import S3Error
from gateway import s3xml

LINGER_BYTES: Final = 1024 * 1024
LINGER_SECONDS: Final = 5.0

log = logging.getLogger("pagewright.gateway")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-size cap and a header deadline.

    Configure it through :func:`bounded_protocol`; the class attributes are the limits.
    """

    max_header_bytes: int = 16 * 1024
    header_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = True  # before a request's headers are complete
        self._header_bytes = 0  # of the current request line and headers, counted so far
        self._boundary = False  # a header section or a request ended in the current slice
        self._request_started = False  # bytes of a not yet complete header section arrived
        self._header_timer: asyncio.TimerHandle | None = None
        self._lingering = -1  # bytes discarded after a refusal; -1 until one

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:
            self._linger(len(data))
            return
        while data and not self.transport.is_closing():
            if not self._in_headers:
                # A body (unbounded here: the application reads it at its pace). A next
                # request may start in this read; it is counted from the next read on.
                super().data_received(data)
                return
            self._request_started = True
            if self._header_timer is None:
                self._arm_header_timer()
            allowance = self.max_header_bytes - self._header_bytes
            piece, data = data[:allowance], data[allowance:]
            self._boundary = False
            super().data_received(piece)
            if self._lingering >= 0 or self.transport.is_closing():
                return
            if self._in_headers and not self._boundary:
                self._header_bytes += len(piece)
                if self._header_bytes >= self.max_header_bytes:
                    self._refuse(
                        S3Error(
                            "RequestHeaderSectionTooLarge",
                            MaxSizeAllowed=str(self.max_header_bytes),
                        )
                    )
                    return

    # httptools parser callbacks

    def on_message_begin(self) -> None:
        self._in_headers = True
        self._request_started = True
        if self._header_timer is None:
            self._arm_header_timer()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._boundary = True
        self._request_started = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_headers = True
        self._header_bytes = 0
        self._boundary = True
        super().on_message_complete()

    # Limits

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._lingering >= 0:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The previous request is still being answered: the client may wait for it.
            self._arm_header_timer()
        elif self._request_started:
            self._refuse(
                S3Error(
                    "RequestTimeout",
                    f"The request line and headers did not arrive within "
                    f"{self.header_timeout:g} seconds.",
                )
            )
        else:
            self.transport.close()

    def _refuse(self, error: S3Error) -> None:
        """Answer ``error`` (unless a response is under way: then only close), stop
        parsing, and discard what still arrives until the connection closes."""
        self._cancel_header_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        request_id = secrets.token_hex(8).upper()
        log.warning(
            "request refused before its headers were read",
            extra={"request_id": request_id, "code": error.code, "status": error.status},
        )
        body = s3xml.error_document(error.code, error.message, request_id, "/", error.fields)
        head = (
            f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
            "content-type: application/xml\r\n"
            f"content-length: {len(body)}\r\n"
            f"x-amz-request-id: {request_id}\r\n"
            f"x-amz-id-2: {request_id}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self._lingering = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _linger(self, received: int) -> None:
        self._lingering += received
        if self._lingering > LINGER_BYTES and not self.transport.is_closing():
            self.transport.close()


def bounded_protocol(max_header_bytes: int, header_timeout: float) -> type[asyncio.Protocol]:
    """The protocol class to pass as ``uvicorn.Config(http=...)``, with these limits."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout": float(header_timeout)},
    )
