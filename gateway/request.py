"""The typed request a handler receives, and how one is parsed from an ASGI scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import anyio

from core.context import RequestContext
from core.errors import S3Error
from core.numbers import is_decimal, saturating_decimal
from gateway.access import AccessCheck
from gateway.payload import VerifiedPayload, without_checksum_values
from gateway.routing import Operation, Target
from gateway.services import Services
from gateway.settings import Settings
from gateway.sigv4 import AuthResult
from gateway.sigv4_signing import QueryPairs
from translators.base import Backend

MAX_KEY_BYTES = 1024
#: Largest XML request body (DeleteObjects of 1,000 long keys, CompleteMultipartUpload of
#: 10,000 parts with checksums) the gateway reads into memory.
MAX_XML_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Address:
    """Where a request points: the bucket and key, decoded, and its error ``resource``.

    ``virtual_host`` says the bucket came from the Host header (SigV2 signs it into the
    resource); it is how the request was addressed, not where it points, so equality
    ignores it.
    """

    bucket: str | None
    key: str | None
    virtual_host: bool = field(default=False, compare=False)

    @property
    def target(self) -> Target:
        if self.bucket is None:
            return "service"
        return "bucket" if self.key is None else "object"

    @property
    def resource(self) -> str:
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + ("" if self.key is None else f"/{self.key}")


def parse_address(raw_path: str, host: str, domains: Iterable[str]) -> Address:
    """Bucket and key from the path (path style) or from the Host (virtual-hosted style).

    The key is the percent-decoded remainder of the path, kept verbatim (no normalisation):
    ``/b/a//c`` is key ``a//c``, ``/b/dir/`` is ``dir/``. Percent-escapes must decode as
    UTF-8: anything else is ``InvalidURI`` (as S3 answers), never a lossy U+FFFD that would
    make ``/b/a%FE`` and ``/b/a%FF`` the same key.
    """
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    for domain in domains:
        suffix = "." + domain.lower()
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            bucket = hostname[: -len(suffix)]
            key = _path_decoded(raw_path[1:]) if len(raw_path) > 1 else None
            return _checked(Address(bucket, key, virtual_host=True))
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    if not path:
        return Address(None, None)
    bucket, slash, rest = path.partition("/")
    key = _path_decoded(rest) if slash and rest else None
    return _checked(Address(_path_decoded(bucket), key))


def _path_decoded(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise S3Error(
            "InvalidURI", "Couldn't parse the specified URI: it is not UTF-8 once decoded."
        ) from None


def percent_decoded(text: str, name: str) -> str:
    """A percent-encoded request value (``+`` is a space) decoded as UTF-8, strictly:
    ``InvalidArgument`` naming ``name`` (and showing the value as sent) otherwise."""
    try:
        return unquote(text.replace("+", " "), errors="strict")
    except UnicodeDecodeError:
        raise S3Error(
            "InvalidArgument",
            f"The value of {name} is not UTF-8 once percent-decoded.",
            ArgumentName=name,
            ArgumentValue=text,
        ) from None


def _checked(address: Address) -> Address:
    if (
        address.key is not None
        and len(address.key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
    ):
        raise S3Error("KeyTooLongError", Size=str(len(address.key.encode())), MaxSizeAllowed="1024")
    return address


def parse_query(query_string: str, pairs: QueryPairs | None = None) -> dict[str, str]:
    """Query parameters, first value wins; a name without ``=`` maps to "". Names and values
    must be UTF-8 once percent-decoded (``InvalidArgument`` naming the parameter): a prefix
    or marker decoded lossily would name other keys than the client meant. ``pairs``: the
    same query already split and percent-decoded for authentication
    (:attr:`gateway.sigv4.HttpRequestView.query_pairs`), which saves a second pass."""
    if pairs is not None:
        try:
            decoded: dict[str, str] = {}
            for name_bytes, value_bytes in pairs:
                decoded.setdefault(name_bytes.decode(), value_bytes.decode())
            return decoded
        except UnicodeDecodeError:
            pass  # the pass below names the parameter in its error
    query: dict[str, str] = {}
    for pair in query_string.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        name = _path_decoded(raw_name.replace("+", " "))
        query.setdefault(name, percent_decoded(raw_value, name))
    return query


def header_map(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case header names; repeated headers joined with ``,`` (RFC 9110)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class IdleLimitedReceive:
    """An ASGI ``receive`` that waits at most ``seconds`` for each piece of the request body.

    A client that sends nothing for that long gets ``S3Error("RequestTimeout")``, raised
    from this call and from every later one (``timed_out`` then says so, and the reply
    should close the connection). Once the body is complete, calls pass straight through
    untimed (a server waiting for ``http.disconnect`` while it streams a reply).
    """

    def __init__(self, receive: Any, seconds: float) -> None:
        self._receive = receive
        self._seconds = seconds
        self._body_done = False
        self.timed_out = False

    async def __call__(self) -> Any:
        if self.timed_out:
            raise self._error()
        if self._body_done:
            return await self._receive()
        with anyio.move_on_after(self._seconds):
            message = await self._receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                self._body_done = True
            return message
        self.timed_out = True
        raise self._error()

    def _error(self) -> S3Error:
        return S3Error(
            "RequestTimeout",
            f"Your socket connection to the server was not read from or written to within "
            f"the timeout period ({self._seconds:g} seconds without request body data).",
        )


class BodySource:
    """The raw request body from ASGI ``receive``; a disconnect is ``IncompleteBody``
    (a client too slow, ``RequestTimeout`` when ``receive`` is an :class:`IdleLimitedReceive`).

    ``finished`` tells whether the body was read to its end, so the app can drain or close a
    connection whose body a handler rejected unread.
    """

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.finished = False
        self.received = 0  # body bytes as received (for the access log)
        self.asked = False  # whether the body was ever read (so 100 Continue was sent)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while not self.finished:
            self.asked = True
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise S3Error("IncompleteBody", "The client disconnected during the upload.")
            self.finished = not message.get("more_body", False)
            chunk = message.get("body", b"")
            self.received += len(chunk)
            if chunk:
                yield chunk

    async def drain(self, limit: int) -> bool:
        """Read and drop up to ``limit`` unread bytes; True if the body is then finished."""
        seen = 0
        try:
            async for chunk in self:
                seen += len(chunk)
                if seen > limit:
                    return False
        except S3Error:
            return False
        return True


@dataclass
class S3Request:
    """Everything a handler needs: the operation, address, query, headers, the verified
    identity and a way to read the body (always through :class:`VerifiedPayload`)."""

    operation: Operation
    method: str
    address: Address
    query: Mapping[str, str]
    headers: Mapping[str, str]
    ctx: RequestContext
    auth: AuthResult
    source: BodySource
    backend: Backend
    settings: Settings
    services: Services | None = None  # None until the stack is wired (policy, catalog)
    #: The request's access decisions (None only where no decision applies: unit tests that
    #: call a handler directly). Handlers ask it for the extra checks an Operation needs.
    access: AccessCheck | None = None
    secure: bool = False  # the request came over TLS (SSE-C requires it, gateway.sse_headers)

    @property
    def bucket(self) -> str:
        assert self.address.bucket is not None
        return self.address.bucket

    @property
    def key(self) -> str:
        assert self.address.key is not None
        return self.address.key

    async def require(self, action: str, bucket: str, key: str | None = None) -> None:
        """``AccessDenied`` unless this request's principal may do ``action`` there (a
        copy's source, each key of a DeleteObjects)."""
        if self.access is not None:
            await self.access.require(action, bucket, key)

    def payload(
        self, extra_algorithms: Iterable[str] = (), *, body_checksums: bool = True
    ) -> VerifiedPayload:
        """The body as a verified stream (signatures, Content-MD5 and checksums checked).
        ``body_checksums=False``: the ``x-amz-checksum-<algorithm>`` headers are not the
        body's (see :func:`gateway.payload.without_checksum_values`)."""
        return VerifiedPayload(
            aiter(self.source),
            auth=self.auth,
            headers=self.headers if body_checksums else without_checksum_values(self.headers),
            extra_algorithms=extra_algorithms,
        )

    async def read_body(self, limit: int = MAX_XML_BODY, *, body_checksums: bool = True) -> bytes:
        """The whole (small) body, verified; ``MalformedXML``-sized guard against floods.
        ``body_checksums`` as for :meth:`payload`."""
        length = self.headers.get("content-length")
        if length is None and "transfer-encoding" not in self.headers:
            return b""
        if (
            length is not None
            and is_decimal(length.strip())
            and not saturating_decimal(length.strip())
        ):
            return b""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.payload(body_checksums=body_checksums):
            size += len(chunk)
            if size > limit:
                raise S3Error("MalformedXML", "The request body is too large.")
            chunks.append(chunk)
        return b"".join(chunks)
