"""aws-chunked decoding: AWS's signed example, botocore's real encoder, any split of reads."""

from __future__ import annotations

import hashlib
import hmac
import io
import random
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from core.checksums import checksum
from core.errors import S3Error
from gateway.chunked import MAX_TRAILER_SECTION, AwsChunkedDecoder
from gateway.sigv4 import EMPTY_SHA256, ChunkSigningContext, signing_key

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_CONTEXT = ChunkSigningContext(
    signing_key=signing_key(SECRET, "20130524", "us-east-1"),
    seed_signature="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    amz_date="20130524T000000Z",
    scope="20130524/us-east-1/s3/aws4_request",
)
EXAMPLE_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def aws_example_body() -> bytes:
    """The body of AWS's chunked PUT example: 64 KiB and 1 KiB of 'a', then the final chunk."""
    parts = []
    for data, signature in zip((b"a" * 65536, b"a" * 1024, b""), EXAMPLE_SIGNATURES, strict=True):
        parts.append(f"{len(data):x};chunk-signature={signature}\r\n".encode())
        if data:
            parts.append(data + b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def sign_chunks(
    ctx: ChunkSigningContext,
    chunks: list[bytes],
    trailers: dict[str, str] | None = None,
) -> bytes:
    """An aws-chunked body signed like an SDK does (the test's own encoder)."""
    previous = ctx.seed_signature
    out = []
    for data in [*chunks, b""]:
        to_sign = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{ctx.amz_date}\n{ctx.scope}\n{previous}\n"
            f"{EMPTY_SHA256}\n{hashlib.sha256(data).hexdigest()}"
        )
        previous = hmac.new(ctx.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        out.append(f"{len(data):x};chunk-signature={previous}\r\n".encode())
        if data:
            out.append(data + b"\r\n")
    if trailers:
        canonical = "".join(f"{k}:{trailers[k]}\n" for k in sorted(trailers))
        to_sign = (
            f"AWS4-HMAC-SHA256-TRAILER\n{ctx.amz_date}\n{ctx.scope}\n{previous}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(ctx.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        out.append(canonical.replace("\n", "\r\n").encode())
        out.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out)


def botocore_chunked(data: bytes, chunk_size: int = 8192) -> bytes:
    """botocore's own aws-chunked encoding with a CRC32 trailer (unsigned)."""
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=chunk_size,
    )
    body: bytes = wrapper.read()
    return body


class _EmptyRaw:
    def stream(self, **_: object) -> Iterator[bytes]:
        yield b""


def botocore_put_request(
    data: bytes, endpoint: str = "https://127.0.0.1:9000", **params: str
) -> AWSPreparedRequest:
    """The request a real boto3 client builds for put_object (captured, never sent)."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    captured: list[AWSPreparedRequest] = []

    def capture(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyRaw())

    client.meta.events.register("before-send.s3.PutObject", capture)  # type: ignore[arg-type]
    client.put_object(Bucket="bucket", Key="key", Body=data, **params)  # type: ignore[arg-type]
    return captured[0]


def headers_of(request: AWSPreparedRequest) -> dict[str, str]:
    """The request's headers as the gateway sees them: lower-case names, str values."""
    return {
        name.lower(): value.decode() if isinstance(value, bytes) else value
        for name, value in request.headers.items()
    }


def read_body(request: AWSPreparedRequest) -> bytes:
    body = request.body
    if isinstance(body, bytes):
        return body
    assert body is not None
    assert not isinstance(body, str)
    return bytes(body.read())  # type: ignore[union-attr,arg-type]


Splitter = Callable[[bytes], list[bytes]]


def fixed(size: int) -> Splitter:
    return lambda body: [body[i : i + size] for i in range(0, len(body), size)]


def randomly(seed: int) -> Splitter:
    def split(body: bytes) -> list[bytes]:
        rng = random.Random(seed)
        pieces, pos = [], 0
        while pos < len(body):
            step = rng.randint(1, 3000)
            pieces.append(body[pos : pos + step])
            pos += step
        return pieces

    return split


SPLITS = [fixed(1), fixed(7), randomly(1), randomly(2), fixed(1 << 20)]
CRC32_TRAILER = "x-amz-checksum-crc32"


def decode(
    body: bytes,
    split: Splitter | None = None,
    signing: ChunkSigningContext | None = None,
    *,
    signed_trailer: bool = False,
    trailer: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    decoder = AwsChunkedDecoder(signing, signed_trailer=signed_trailer, trailer=trailer)
    out = bytearray()
    for piece in (split or fixed(1 << 20))(body):
        for data in decoder.feed(piece):
            out += data
    decoder.finish()
    return bytes(out), decoder.trailers


def error_code(body: bytes, signing: ChunkSigningContext | None = None, **kw: Any) -> str:
    with pytest.raises(S3Error) as caught:
        decode(body, fixed(5), signing, **kw)
    return caught.value.code


@pytest.mark.parametrize("split", SPLITS)
def test_aws_example_verifies(split: Splitter) -> None:
    data, trailers = decode(aws_example_body(), split, EXAMPLE_CONTEXT)
    assert data == b"a" * 66560
    assert trailers == {}


def test_aws_example_without_context_still_decodes() -> None:
    assert decode(aws_example_body())[0] == b"a" * 66560


@pytest.mark.parametrize("split", SPLITS[:3])
@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 20000])
def test_botocore_wrapper(split: Splitter, size: int) -> None:
    data = random.Random(size).randbytes(size)
    data_out, trailers = decode(botocore_chunked(data), split, trailer=CRC32_TRAILER)
    assert data_out == data
    assert trailers == {"x-amz-checksum-crc32": checksum("CRC32", data)}


@pytest.mark.parametrize("split", SPLITS)
def test_botocore_put_object_body(split: Splitter) -> None:
    data = random.Random(3).randbytes(70000)
    request = botocore_put_request(data, ChecksumAlgorithm="CRC32C")
    assert headers_of(request)["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    decoded, trailers = decode(read_body(request), split, trailer="x-amz-checksum-crc32c")
    assert decoded == data
    assert trailers == {"x-amz-checksum-crc32c": checksum("CRC32C", data)}


@pytest.mark.parametrize("split", SPLITS)
def test_signed_trailer(split: Splitter) -> None:
    data = [b"x" * 9000, b"y" * 100]
    trailers = {"x-amz-checksum-crc32": checksum("CRC32", b"".join(data))}
    body = sign_chunks(EXAMPLE_CONTEXT, data, trailers)
    decoded, got = decode(body, split, EXAMPLE_CONTEXT, signed_trailer=True, trailer=CRC32_TRAILER)
    assert decoded == b"".join(data)
    assert got == trailers


def test_trailer_without_final_empty_line_is_accepted() -> None:
    body = botocore_chunked(b"abc")
    assert body.endswith(b"\r\n\r\n")
    assert decode(body[:-2], trailer=CRC32_TRAILER)[0] == b"abc"


def test_missing_closing_line_after_final_chunk_is_accepted() -> None:
    assert decode(aws_example_body()[:-2], signing=EXAMPLE_CONTEXT)[0] == b"a" * 66560


def test_altered_chunk_data() -> None:
    body = bytearray(aws_example_body())
    body[200] ^= 1
    assert error_code(bytes(body), EXAMPLE_CONTEXT) == "SignatureDoesNotMatch"


def test_altered_chunk_signature() -> None:
    body = aws_example_body().replace(b"ad80c730", b"ad80c731")
    assert error_code(body, EXAMPLE_CONTEXT) == "SignatureDoesNotMatch"


def test_reordered_chunks_break_the_chain() -> None:
    body = sign_chunks(EXAMPLE_CONTEXT, [b"1" * 10, b"2" * 10])
    lines = body.split(b"\r\n")
    swapped = b"\r\n".join([lines[2], lines[3], lines[0], lines[1], *lines[4:]])
    assert error_code(swapped, EXAMPLE_CONTEXT) == "SignatureDoesNotMatch"


def test_missing_chunk_signature() -> None:
    assert error_code(b"3\r\nabc\r\n0\r\n\r\n", EXAMPLE_CONTEXT) == "SignatureDoesNotMatch"


def test_altered_trailer() -> None:
    trailers = {"x-amz-checksum-crc32": checksum("CRC32", b"abc")}
    body = sign_chunks(EXAMPLE_CONTEXT, [b"abc"], trailers)
    tampered = body.replace(trailers["x-amz-checksum-crc32"].encode(), b"AAAAAA==")
    signed = {"signed_trailer": True, "trailer": CRC32_TRAILER}
    assert error_code(tampered, EXAMPLE_CONTEXT, **signed) == "SignatureDoesNotMatch"
    unsigned = b"".join(
        line + b"\r\n" for line in body.split(b"\r\n") if b"trailer-sig" not in line
    )
    assert error_code(unsigned[:-2], EXAMPLE_CONTEXT, **signed) == "SignatureDoesNotMatch"


def test_trailers_refused_in_signed_mode_without_trailer() -> None:
    body = sign_chunks(EXAMPLE_CONTEXT, [b"abc"]).replace(b"\r\n\r\n", b"\r\nx-a:b\r\n\r\n", 1)
    assert error_code(body[: body.rindex(b"x-a")] + b"x-a:b\r\n\r\n", EXAMPLE_CONTEXT) in {
        "MalformedTrailerError",
        "SignatureDoesNotMatch",
    }


@pytest.mark.parametrize("cut", [1, 3, 5, 100, 65600, 66800])
def test_truncated_body(cut: int) -> None:
    body = aws_example_body()
    assert error_code(body[: len(body) - cut], EXAMPLE_CONTEXT) == "IncompleteBody"


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcd\r\n0\r\n\r\n",
        b"3\nabc\r\n0\r\n\r\n",
        b"3;foo=bar\r\nabc\r\n0\r\n\r\n",
        b"-3\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabc\r\n0\r\n\r\nextra",
        b"1" * 5000 + b"\r\n",
    ],
)
def test_malformed_framing(body: bytes) -> None:
    assert error_code(body) == "InvalidArgument"


def test_malformed_trailer_line() -> None:
    assert error_code(b"0\r\nnocolon\r\n\r\n") == "MalformedTrailerError"


def test_large_chunk_is_streamed_not_buffered() -> None:
    decoder = AwsChunkedDecoder()
    size = 64 << 20
    pieces = decoder.feed(f"{size:x}\r\n".encode())
    assert pieces == []
    block = b"z" * (1 << 20)
    for _ in range(size >> 20):
        (piece,) = decoder.feed(block)
        assert piece is block  # handed on as is, no copy, nothing held
    assert decoder.feed(b"\r\n0\r\n\r\n") == []
    decoder.finish()
    assert decoder.done


def test_only_the_announced_trailer_is_accepted() -> None:
    crc = checksum("CRC32", b"abc")
    body = b"3\r\nabc\r\n0\r\n%s\r\n\r\n"
    ok = body % f"x-amz-checksum-crc32:{crc}".encode()
    assert decode(ok, trailer=CRC32_TRAILER) == (b"abc", {CRC32_TRAILER: crc})
    assert error_code(ok) == "MalformedTrailerError"  # nothing announced
    assert error_code(ok, trailer="x-amz-checksum-sha256") == "MalformedTrailerError"
    other = body % b"x-amz-meta-a:b"
    assert error_code(other, trailer=CRC32_TRAILER) == "MalformedTrailerError"
    repeated = body % f"x-amz-checksum-crc32:{crc}\r\nx-amz-checksum-crc32:{crc}".encode()
    assert error_code(repeated, trailer=CRC32_TRAILER) == "MalformedTrailerError"
    # A trailer signature only counts in signed-trailer mode.
    unsigned_mode = body % b"x-amz-trailer-signature:" + b"0" * 64
    assert error_code(unsigned_mode, trailer=CRC32_TRAILER) == "MalformedTrailerError"


def feed_all(decoder: AwsChunkedDecoder, pieces: Iterator[bytes]) -> None:
    for piece in pieces:
        decoder.feed(piece)


def test_trailer_flood_is_refused_within_a_bounded_size() -> None:
    """Many distinct or repeated trailer lines: refused once the section passes its cap,
    having held no more than one line and one read."""
    for line in (b"x-amz-meta-%d:v\r\n", b"x-amz-checksum-crc32:AAAAAA==\r\n"):
        decoder = AwsChunkedDecoder(trailer=CRC32_TRAILER)
        decoder.feed(b"3\r\nabc\r\n0\r\n")
        fed: list[bytes] = []

        def flood(line: bytes = line, fed: list[bytes] = fed) -> Iterator[bytes]:
            for n in range(1_000_000):
                fed.append(line.replace(b"%d", str(n).encode()))
                yield fed[-1]

        with pytest.raises(S3Error) as caught:
            feed_all(decoder, flood())
        assert caught.value.code == "MalformedTrailerError"
        assert sum(map(len, fed)) <= MAX_TRAILER_SECTION + len(fed[-1])
        assert len(decoder.trailers) <= 1


def test_chunk_lines_and_extensions_are_bounded() -> None:
    decoder = AwsChunkedDecoder()
    endless = (b"3;chunk-signature=" + b"a" * 1000 for _ in range(1_000_000))
    with pytest.raises(S3Error) as caught:
        feed_all(decoder, endless)
    assert caught.value.code == "InvalidArgument"
