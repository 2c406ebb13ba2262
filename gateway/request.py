"""The typed request a handler receives, and how one is parsed from an ASGI scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from gateway.errors import S3Error
from gateway.payload import VerifiedPayload
from gateway.routing import Operation, Target
from gateway.services import Services
from gateway.settings import Settings
from gateway.sigv4 import AuthResult
from translators.base import Backend, RequestContext

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
    ``/b/a//c`` is key ``a//c``, ``/b/dir/`` is ``dir/``.
    """
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    for domain in domains:
        suffix = "." + domain.lower()
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            bucket = hostname[: -len(suffix)]
            key = unquote(raw_path[1:]) if len(raw_path) > 1 else None
            return _checked(Address(bucket, key, virtual_host=True))
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    if not path:
        return Address(None, None)
    bucket, slash, rest = path.partition("/")
    key = unquote(rest) if slash and rest else None
    return _checked(Address(unquote(bucket), key))


def _checked(address: Address) -> Address:
    if (
        address.key is not None
        and len(address.key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
    ):
        raise S3Error("KeyTooLongError", Size=str(len(address.key.encode())), MaxSizeAllowed="1024")
    return address


def parse_query(query_string: str) -> dict[str, str]:
    """Query parameters, first value wins; a name without ``=`` maps to ""."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(name, value)
    return query


def header_map(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case header names; repeated headers joined with ``,`` (RFC 9110)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class BodySource:
    """The raw request body from ASGI ``receive``; a disconnect is ``IncompleteBody``.

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

    @property
    def bucket(self) -> str:
        assert self.address.bucket is not None
        return self.address.bucket

    @property
    def key(self) -> str:
        assert self.address.key is not None
        return self.address.key

    def payload(self, extra_algorithms: Iterable[str] = ()) -> VerifiedPayload:
        """The body as a verified stream (signatures, Content-MD5 and checksums checked)."""
        return VerifiedPayload(
            aiter(self.source),
            auth=self.auth,
            headers=self.headers,
            extra_algorithms=extra_algorithms,
        )

    async def read_body(self, limit: int = MAX_XML_BODY) -> bytes:
        """The whole (small) body, verified; ``MalformedXML``-sized guard against floods."""
        length = self.headers.get("content-length")
        if length is None and "transfer-encoding" not in self.headers:
            return b""
        if length is not None and length.isdigit() and int(length) == 0:
            return b""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.payload():
            size += len(chunk)
            if size > limit:
                raise S3Error("MalformedXML", "The request body is too large.")
            chunks.append(chunk)
        return b"".join(chunks)
