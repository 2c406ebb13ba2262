"""Incremental decoding of ``Content-Encoding: aws-chunked`` request bodies.

The wire format::

    <hex-size>[;chunk-signature=<64 hex>]\\r\\n<data>\\r\\n      (repeated)
    0[;chunk-signature=<64 hex>]\\r\\n
    [<name>:<value>\\r\\n ...][x-amz-trailer-signature:<64 hex>\\r\\n]
    \\r\\n

:class:`AwsChunkedDecoder` takes network reads of any size, split anywhere, and returns the
data they carry as slices of those reads: memory stays bounded by one read plus one short
line buffer, whatever the chunk size. With a :class:`~gateway.sigv4.ChunkSigningContext`
every chunk signature is checked as its data ends (the chain starts at the seed signature),
and in signed-trailer mode so is the trailer signature. Data of a chunk is handed out before
its signature is checked; callers must not commit anything before :meth:`finish` returned.

Trailers are accepted only as announced: the one header named in ``x-amz-trailer`` (and,
in signed-trailer mode, ``x-amz-trailer-signature``), each once, in at most
:data:`MAX_TRAILER_SECTION` bytes. Nothing else is held: a line (chunk size and extension,
or trailer) is capped at :data:`MAX_LINE` bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from core.errors import S3Error
from gateway.sigv4 import ChunkSigningContext
from gateway.sigv4_signing import EMPTY_SHA256

TRAILER_SIGNATURE: Final = "x-amz-trailer-signature"
MAX_LINE: Final = 4096
#: The whole trailer section (a checksum and its signature take under 200 bytes).
MAX_TRAILER_SECTION: Final = 4096

_SIZE_LINE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
_HEX_SIZE: Final = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE: Final = re.compile(rb"[0-9a-f]{64}")
_CRLF: Final = b"\r\n"


def _malformed(detail: str) -> S3Error:
    return S3Error("InvalidArgument", f"Malformed aws-chunked body: {detail}.")


def _bad_signature() -> S3Error:
    return S3Error("SignatureDoesNotMatch")


class AwsChunkedDecoder:
    """Decode one aws-chunked body fed in pieces; verify its signatures when given a context.

    :meth:`feed` returns the decoded data in a piece (possibly none); :meth:`finish` must be
    called once the body ended and raises ``IncompleteBody`` if it ended early. Errors are
    ``S3Error``: ``InvalidArgument`` for bad framing, ``SignatureDoesNotMatch`` for a bad or
    missing chunk or trailer signature, ``MalformedTrailerError`` for unusable trailers
    (malformed, not announced, repeated, or too large).
    ``trailers`` holds the trailing headers (lower-case names, signature excluded) once done.
    """

    __slots__ = (
        "_chunk_hash",
        "_claimed",
        "_line",
        "_pending_crlf",
        "_previous",
        "_remaining",
        "_signed_trailer",
        "_signing",
        "_state",
        "_trailer",
        "_trailer_bytes",
        "_trailer_signature",
        "trailers",
    )

    def __init__(
        self,
        signing: ChunkSigningContext | None = None,
        *,
        signed_trailer: bool = False,
        trailer: str | None = None,
    ) -> None:
        """``signing`` enables chunk signature checks; ``signed_trailer`` (which needs it)
        requires ``x-amz-trailer-signature`` whenever trailers are sent. Without
        ``signed_trailer``, a signed body must carry no trailers. ``trailer`` is the header
        announced in ``x-amz-trailer`` (lower-case), the only one accepted; None accepts
        none."""
        if signed_trailer and signing is None:
            raise ValueError("a signed trailer needs a signing context")
        self._signing = signing
        self._signed_trailer = signed_trailer
        self._previous = signing.seed_signature if signing else ""
        self._state = _SIZE_LINE
        self._line = bytearray()
        self._remaining = 0
        self._pending_crlf = b""
        self._chunk_hash: hashlib._Hash | None = None
        self._claimed = ""
        self._trailer = trailer
        self._trailer_bytes = 0
        self._trailer_signature: str | None = None
        self.trailers: dict[str, str] = {}

    @property
    def done(self) -> bool:
        """True once the terminating empty line was read."""
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """Consume one network read; return the body data it carried, in order."""
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                left = end - pos
                if self._remaining >= left:
                    piece = data[pos:] if pos else data
                    pos = end
                else:
                    piece = data[pos : pos + self._remaining]
                    pos += self._remaining
                self._remaining -= len(piece)
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                out.append(piece)
                if not self._remaining:
                    self._verify_chunk()
                    self._state = _DATA_END
                    self._pending_crlf = _CRLF
            elif state == _DATA_END:
                need = self._pending_crlf
                got = data[pos : pos + len(need)]
                if not need.startswith(got):
                    raise _malformed("chunk data is not followed by CRLF")
                pos += len(got)
                self._pending_crlf = need[len(got) :]
                if not self._pending_crlf:
                    self._state = _SIZE_LINE
            elif state == _DONE:
                raise _malformed("data after the final chunk")
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self._line += data[pos:]
                    pos = end
                    if len(self._line) > MAX_LINE:
                        raise _malformed("line too long")
                    continue
                self._line += data[pos : newline + 1]
                pos = newline + 1
                if len(self._line) > MAX_LINE + 2 or not self._line.endswith(_CRLF):
                    raise _malformed("line not terminated by CRLF")
                line = bytes(self._line[:-2])
                self._line.clear()
                if state == _SIZE_LINE:
                    self._start_chunk(line)
                else:
                    self._trailer_line(line)
        return out

    def finish(self) -> None:
        """Declare the end of the body: ``IncompleteBody`` unless the final chunk arrived.

        A body that stops right after its last trailer line, without the closing empty
        line, is accepted: some clients end it so.
        """
        if self._state == _TRAILER and not self._line:
            self._end_trailers()
        if self._state != _DONE:
            raise S3Error(
                "IncompleteBody", "The request body ended before its final aws-chunked chunk."
            )

    def _start_chunk(self, line: bytes) -> None:
        size_text, has_extension, extension = line.partition(b";")
        if not _HEX_SIZE.fullmatch(size_text):
            raise _malformed("bad chunk size")
        claimed: bytes | None = None
        if has_extension:
            name, has_value, value = extension.partition(b"=")
            if name != b"chunk-signature" or not has_value:
                raise _malformed("unknown chunk extension")
            claimed = value
        if self._signing is not None:
            if claimed is None or not _SIGNATURE.fullmatch(claimed):
                raise _bad_signature()
            self._claimed = claimed.decode("ascii")
            self._chunk_hash = hashlib.sha256()
        size = int(size_text, 16)
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._verify_chunk()
            self._state = _TRAILER

    def _verify_chunk(self) -> None:
        signing = self._signing
        if signing is None or self._chunk_hash is None:
            return
        to_sign = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{signing.amz_date}\n{signing.scope}\n"
            f"{self._previous}\n{EMPTY_SHA256}\n{self._chunk_hash.hexdigest()}"
        )
        expected = hmac.new(signing.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self._claimed):
            raise _bad_signature()
        self._previous = self._claimed
        self._chunk_hash = None

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_trailers()
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_TRAILER_SECTION:
            raise S3Error(
                "MalformedTrailerError",
                f"The trailer section is longer than {MAX_TRAILER_SECTION} bytes.",
            )
        name_bytes, has_colon, value_bytes = line.partition(b":")
        try:
            name = name_bytes.decode("ascii").strip().lower()
            value = value_bytes.decode("ascii").strip()
        except UnicodeDecodeError:
            name = ""
        if not has_colon or not name:
            raise S3Error("MalformedTrailerError")
        if self._signing is not None and not self._signed_trailer:
            raise S3Error("MalformedTrailerError", "This signed payload does not accept trailers.")
        if name == TRAILER_SIGNATURE and self._signed_trailer:
            if self._trailer_signature is not None:
                raise S3Error("MalformedTrailerError", f"The trailer {name} is repeated.")
            self._trailer_signature = value
        elif name != self._trailer:
            raise S3Error(
                "MalformedTrailerError",
                f"The trailer {name} was not announced in x-amz-trailer.",
            )
        elif name in self.trailers:
            raise S3Error("MalformedTrailerError", f"The trailer {name} is repeated.")
        else:
            self.trailers[name] = value

    def _end_trailers(self) -> None:
        signing = self._signing
        if self._signed_trailer and signing is not None and self.trailers:
            claimed = self._trailer_signature
            if claimed is None or not _SIGNATURE.fullmatch(claimed.encode()):
                raise _bad_signature()
            canonical = "".join(f"{name}:{self.trailers[name]}\n" for name in sorted(self.trailers))
            to_sign = (
                f"AWS4-HMAC-SHA256-TRAILER\n{signing.amz_date}\n{signing.scope}\n"
                f"{self._previous}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
            )
            expected = hmac.new(signing.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, claimed):
                raise _bad_signature()
        self._state = _DONE
