"""aws-chunked decoding: AWS's signed example, botocore's real encoder, any split of reads."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from core.checksums import checksum
from core.errors import S3Error
from gateway.chunked import MAX_TRAILER_SECTION, AwsChunkedDecoder
from gateway.sigv4 import ChunkSigningContext
from tests.support.chunked_bodies import (
    EXAMPLE_CONTEXT,
    Splitter,
    aws_example_body,
    botocore_chunked,
    botocore_put_request,
    fixed,
    headers_of,
    randomly,
    read_body,
    sign_chunks,
)

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
