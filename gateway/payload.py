"""The upload body as a :class:`~translators.base.PayloadStream` that verifies while it flows.

:class:`VerifiedPayload` wraps the raw request body. Its constructor checks the headers that
describe the body (``Content-MD5``, ``x-amz-checksum-*``, ``x-amz-trailer``, the lengths) and
fails at once on a malformed one. Iterating yields the decoded body (aws-chunked framing
removed, chunk signatures checked) while MD5 (the ETag) and every asked-for checksum are
computed; at the end the body is checked against the declared length, the signed SHA256,
``Content-MD5`` and the supplied checksums. Every failure is an ``S3Error`` raised from the
iterator no later than its end, so a translator that commits only after a full iteration
never stores a bad body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Final

from core.checksums import decode, header_name, parse_algorithm
from core.digest import Digester
from core.errors import S3Error
from core.numbers import int_argument
from core.streams import ReadOncePayload
from gateway.chunked import AwsChunkedDecoder
from gateway.sigv4 import AuthResult, PayloadMode

_CHECKSUM_PREFIX: Final = "x-amz-checksum-"
# x-amz-checksum-* headers that name a setting, not a checksum value.
_NOT_CHECKSUMS: Final = frozenset({"algorithm", "type", "mode"})
_ALGORITHM_HEADERS: Final = ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm")


class VerifiedPayload(ReadOncePayload):
    """An upload body, decoded and verified while it streams (see the module docstring).

    ``source`` yields raw request-body bytes and raises ``S3Error`` itself if the client
    goes away. ``headers`` has lower-case names. ``extra_algorithms`` are checksums to
    compute even though the client sent none (e.g. the upload's multipart algorithm).
    The constructor raises ``InvalidDigest`` (bad Content-MD5), ``InvalidRequest`` (several
    or malformed checksum headers, an unusable x-amz-trailer) and ``MissingContentLength``.
    A payload can be iterated once; :meth:`digest` is valid after a full iteration.
    """

    __slots__ = (
        "_algorithms",
        "_auth",
        "_content_md5",
        "_declared",
        "_expected",
        "_source",
        "_streaming",
        "_trailer_algorithm",
    )

    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        auth: AuthResult,
        headers: Mapping[str, str],
        extra_algorithms: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self._source = source
        self._auth = auth
        encodings = {
            token.strip().lower() for token in headers.get("content-encoding", "").split(",")
        }
        self._streaming = auth.payload_mode.streaming or "aws-chunked" in encodings
        self._content_md5 = _content_md5(headers.get("content-md5"))
        self._expected, self._trailer_algorithm = _supplied_checksums(headers, self._streaming)

        algorithms = dict.fromkeys(self._expected)
        if self._trailer_algorithm is not None:
            algorithms[self._trailer_algorithm] = None
        for name in _ALGORITHM_HEADERS:
            if name in headers:
                algorithms[parse_algorithm(headers[name])] = None
        for algorithm in extra_algorithms:
            algorithms[parse_algorithm(algorithm)] = None
        self._algorithms: tuple[str, ...] = tuple(algorithms)

        self._declared = _declared_size(headers, self._streaming)

    @property
    def declared_size(self) -> int | None:
        """The decoded length the client announced, if it announced one."""
        return self._declared

    async def _stream(self) -> AsyncIterator[bytes]:
        digester = Digester(self._algorithms)
        # The signed hash covers the bytes as sent, framing included when there is any.
        raw_sha = hashlib.sha256() if self._auth.payload_mode is PayloadMode.SIGNED else None
        limit = self._declared
        trailer = self._trailer_algorithm
        size = 0
        decoder: AwsChunkedDecoder | None = None
        if self._streaming:
            decoder = AwsChunkedDecoder(
                self._auth.chunk_signing,
                signed_trailer=self._auth.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER,
                trailer=None if trailer is None else header_name(trailer),
            )
        async for raw in self._source:
            if raw_sha is not None:
                raw_sha.update(raw)
            for data in (raw,) if decoder is None else decoder.feed(raw):
                if not data:
                    continue
                size += len(data)
                if limit is not None and size > limit:
                    raise _too_long(limit)
                digester.update(data)
                yield data
        if decoder is not None:
            decoder.finish()

        if limit is not None and size < limit:
            raise S3Error("IncompleteBody")
        if raw_sha is not None and raw_sha.hexdigest() != self._auth.content_sha256:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                ClientComputedContentSHA256=self._auth.content_sha256 or "",
                S3ComputedContentSHA256=raw_sha.hexdigest(),
            )
        md5_raw = digester.md5()
        if self._content_md5 is not None and md5_raw != self._content_md5:
            raise S3Error(
                "BadDigest",
                ExpectedDigest=base64.b64encode(self._content_md5).decode(),
                CalculatedDigest=base64.b64encode(md5_raw).decode(),
            )
        digests = digester.raw_checksums()
        for name, expected in self._expected.items():
            _compare(name, digests[name], expected)
        if self._trailer_algorithm is not None:
            assert decoder is not None  # a trailer is only accepted with aws-chunked
            name = self._trailer_algorithm
            value = decoder.trailers.get(header_name(name))
            if value is None:
                raise S3Error(
                    "MalformedTrailerError",
                    f"The trailer {header_name(name)} announced in x-amz-trailer is missing.",
                )
            _compare(name, digests[name], decode(name, value))
        self._finish(digester.result())


def checksum_values(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-amz-checksum-<algorithm>`` values of ``headers`` by ``<algorithm>`` as sent
    (not the headers naming a setting: ``-algorithm``, ``-type``, ``-mode``)."""
    return {
        name[len(_CHECKSUM_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(_CHECKSUM_PREFIX) and name[len(_CHECKSUM_PREFIX) :] not in _NOT_CHECKSUMS
    }


def without_checksum_values(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` without the :func:`checksum_values`: for a request whose checksum
    headers describe something other than its body (CompleteMultipartUpload's name the
    whole object), so they are not held against the body."""
    values = {_CHECKSUM_PREFIX + suffix for suffix in checksum_values(headers)}
    return {name: value for name, value in headers.items() if name not in values}


def _compare(algorithm: str, computed: bytes, expected: bytes) -> None:
    if computed != expected:
        raise S3Error(
            "BadDigest",
            f"The {header_name(algorithm)} you specified did not match the calculated checksum.",
        )


def _too_long(limit: int) -> S3Error:
    return S3Error(
        "InvalidArgument",
        f"The request body is longer than the declared {limit} bytes.",
        ArgumentName="x-amz-decoded-content-length",
        ArgumentValue=str(limit),
    )


def _content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise S3Error("InvalidDigest")
    return raw


def _supplied_checksums(
    headers: Mapping[str, str], streaming: bool
) -> tuple[dict[str, bytes], str | None]:
    """The checksum sent as a header (algorithm -> digest) and the one promised as trailer."""
    expected: dict[str, bytes] = {}
    for name, value in headers.items():
        if name.startswith(_CHECKSUM_PREFIX):
            suffix = name[len(_CHECKSUM_PREFIX) :]
            if suffix not in _NOT_CHECKSUMS:
                algorithm = parse_algorithm(suffix)
                expected[algorithm] = decode(algorithm, value)
    trailer: str | None = None
    announced = [t.strip().lower() for t in headers.get("x-amz-trailer", "").split(",")]
    for name in filter(None, announced):
        if not name.startswith(_CHECKSUM_PREFIX) or trailer is not None:
            raise S3Error("InvalidRequest", f"The trailer {name!r} is not supported.")
        trailer = parse_algorithm(name[len(_CHECKSUM_PREFIX) :])
    if trailer is not None and not streaming:
        raise S3Error(
            "InvalidRequest", "x-amz-trailer requires an aws-chunked encoded request body."
        )
    if len(expected) + (trailer is not None) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    return expected, trailer


def _declared_size(headers: Mapping[str, str], streaming: bool) -> int | None:
    content_length = _length(headers, "content-length")
    decoded_length = _length(headers, "x-amz-decoded-content-length")
    chunked_transfer = "chunked" in headers.get("transfer-encoding", "").lower()
    if content_length is None and decoded_length is None and not chunked_transfer:
        raise S3Error("MissingContentLength")
    return decoded_length if streaming else content_length


def _length(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    return int_argument(name, value.strip(), message=f"{name} must be a number.")
