"""VerifiedPayload: plain and aws-chunked bodies, real botocore requests, every tamper case."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from core.checksums import checksum
from core.errors import S3Error
from gateway.payload import VerifiedPayload
from gateway.sigv4 import AuthResult, HttpRequestView, PayloadMode, authenticate
from policy.credentials import Credential
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
from tests.support.sigv4_example import CHUNKED_HEADERS, EXAMPLE_NOW, ROOT, lookup

DATA = random.Random(7).randbytes(20000)


def auth(mode: PayloadMode, content_sha256: str | None = None) -> AuthResult:
    signing = EXAMPLE_CONTEXT if mode.name.startswith("STREAMING_SIGNED") else None
    return AuthResult(ROOT, mode, content_sha256, signing, presigned=False)


UNSIGNED = auth(PayloadMode.UNSIGNED)


async def _source(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def payload(
    body: bytes,
    headers: Mapping[str, str],
    result: AuthResult = UNSIGNED,
    split: Splitter | None = None,
    extra: Iterable[str] = (),
) -> VerifiedPayload:
    pieces = (split or fixed(4096))(body)
    return VerifiedPayload(_source(pieces), auth=result, headers=headers, extra_algorithms=extra)


def read(stream: VerifiedPayload) -> bytes:
    async def collect() -> bytes:
        return b"".join([piece async for piece in stream])

    return asyncio.run(collect())


def read_error(stream: VerifiedPayload) -> S3Error:
    with pytest.raises(S3Error) as caught:
        read(stream)
    with pytest.raises(RuntimeError):
        stream.digest()
    return caught.value


def plain(body: bytes = DATA, **extra: str) -> dict[str, str]:
    headers = {"content-length": str(len(body))}
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


def b64md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


# --- plain bodies ---


def test_plain_body_digest() -> None:
    stream = payload(DATA, plain())
    assert stream.declared_size == len(DATA)
    assert read(stream) == DATA
    digest = stream.digest()
    assert digest.size == len(DATA)
    assert digest.md5_hex == hashlib.md5(DATA).hexdigest()
    assert digest.checksums == {}


def test_signed_body() -> None:
    result = auth(PayloadMode.SIGNED, hashlib.sha256(DATA).hexdigest())
    stream = payload(DATA, plain(), result)
    assert read(stream) == DATA
    assert stream.digest().checksums == {}


def test_signed_body_altered() -> None:
    result = auth(PayloadMode.SIGNED, hashlib.sha256(DATA).hexdigest())
    altered = b"X" + DATA[1:]
    assert read_error(payload(altered, plain(), result)).code == "XAmzContentSHA256Mismatch"


def test_content_md5() -> None:
    assert read(payload(DATA, plain(content_md5=b64md5(DATA)))) == DATA
    error = read_error(payload(DATA, plain(content_md5=b64md5(b"other"))))
    assert error.code == "BadDigest"


@pytest.mark.parametrize("value", ["nope", "", base64.b64encode(b"short").decode()])
def test_malformed_content_md5(value: str) -> None:
    with pytest.raises(S3Error) as caught:
        payload(DATA, plain(content_md5=value))
    assert caught.value.code == "InvalidDigest"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksum_header(algorithm: str) -> None:
    name = f"x-amz-checksum-{algorithm.lower()}"
    stream = payload(DATA, {**plain(), name: checksum(algorithm, DATA)})
    assert read(stream) == DATA
    assert stream.digest().checksums == {algorithm: checksum(algorithm, DATA)}
    wrong = payload(DATA, {**plain(), name: checksum(algorithm, b"other")})
    error = read_error(wrong)
    assert error.code == "BadDigest"
    assert error.message == f"The {name} you specified did not match the calculated checksum."


def test_several_checksum_headers_refused() -> None:
    headers = {
        **plain(),
        "x-amz-checksum-crc32": checksum("CRC32", DATA),
        "x-amz-checksum-sha1": checksum("SHA1", DATA),
    }
    with pytest.raises(S3Error) as caught:
        payload(DATA, headers)
    assert caught.value.code == "InvalidRequest"


@pytest.mark.parametrize(
    "header",
    [
        {"x-amz-checksum-crc32": "not base64!"},
        {"x-amz-checksum-crc32": checksum("SHA1", b"")},
        {"x-amz-checksum-md4": "AAAA"},
        {"x-amz-sdk-checksum-algorithm": "MD4"},
        {"x-amz-trailer": "x-amz-checksum-crc32"},  # a trailer needs aws-chunked
        {"x-amz-trailer": "x-amz-meta-a"},
    ],
)
def test_invalid_checksum_headers(header: dict[str, str]) -> None:
    with pytest.raises(S3Error) as caught:
        payload(DATA, {**plain(), **header})
    assert caught.value.code == "InvalidRequest"


def test_missing_length() -> None:
    with pytest.raises(S3Error) as caught:
        payload(DATA, {})
    assert (caught.value.code, caught.value.status) == ("MissingContentLength", 411)
    stream = payload(DATA, {"transfer-encoding": "chunked"})
    assert stream.declared_size is None
    assert read(stream) == DATA


def test_short_and_long_bodies() -> None:
    assert read_error(payload(DATA[:-1], plain(DATA))).code == "IncompleteBody"
    assert read_error(payload(DATA + b"!", plain(DATA))).code == "InvalidArgument"


def test_extra_and_sdk_algorithms_are_computed() -> None:
    headers = {**plain(), "x-amz-sdk-checksum-algorithm": "crc32c"}
    stream = payload(DATA, headers, extra=["SHA256", "crc64nvme"])
    read(stream)
    assert stream.digest().checksums == {
        name: checksum(name, DATA) for name in ("CRC32C", "SHA256", "CRC64NVME")
    }


def test_source_errors_propagate() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise S3Error("IncompleteBody")

    stream = VerifiedPayload(broken(), auth=UNSIGNED, headers=plain(b"abcdef"))
    assert read_error(stream).code == "IncompleteBody"


def test_read_once() -> None:
    stream = payload(DATA, plain())
    read(stream)
    with pytest.raises(RuntimeError):
        read(stream)


# --- aws-chunked bodies ---


def chunked_headers(decoded: bytes, encoded: bytes, **extra: str) -> dict[str, str]:
    headers = {
        "content-encoding": "aws-chunked",
        "content-length": str(len(encoded)),
        "x-amz-decoded-content-length": str(len(decoded)),
    }
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


@pytest.mark.parametrize("split", [fixed(1), fixed(7), randomly(5), fixed(1 << 20)])
def test_aws_example_streaming_signed(split: Splitter) -> None:
    view = HttpRequestView("PUT", "/examplebucket/chunkObject.txt", "", CHUNKED_HEADERS)
    result = authenticate(view, lookup, "us-east-1", EXAMPLE_NOW)
    stream = payload(aws_example_body(), CHUNKED_HEADERS, result, split)
    assert stream.declared_size == 66560
    assert read(stream) == b"a" * 66560
    assert stream.digest().md5_hex == hashlib.md5(b"a" * 66560).hexdigest()


def test_streaming_signed_tampered() -> None:
    result = auth(PayloadMode.STREAMING_SIGNED)
    body = bytearray(aws_example_body())
    body[66000] ^= 1
    error = read_error(payload(bytes(body), CHUNKED_HEADERS, result))
    assert error.code == "SignatureDoesNotMatch"
    truncated = aws_example_body()[:-200]
    assert read_error(payload(truncated, CHUNKED_HEADERS, result)).code == "IncompleteBody"


def test_streaming_signed_trailer() -> None:
    value = checksum("CRC32", DATA)
    body = sign_chunks(EXAMPLE_CONTEXT, [DATA[:9000], DATA[9000:]], {"x-amz-checksum-crc32": value})
    headers = chunked_headers(DATA, body, x_amz_trailer="x-amz-checksum-crc32")
    stream = payload(body, headers, auth(PayloadMode.STREAMING_SIGNED_TRAILER), randomly(9))
    assert read(stream) == DATA
    assert stream.digest().checksums == {"CRC32": value}

    wrong = checksum("CRC32", b"other")
    body = sign_chunks(EXAMPLE_CONTEXT, [DATA], {"x-amz-checksum-crc32": wrong})
    error = read_error(payload(body, headers, auth(PayloadMode.STREAMING_SIGNED_TRAILER)))
    assert error.code == "BadDigest"
    assert "x-amz-checksum-crc32" in error.message


def test_streaming_unsigned_trailer() -> None:
    body = botocore_chunked(DATA)
    headers = chunked_headers(DATA, body, x_amz_trailer="x-amz-checksum-crc32")
    result = auth(PayloadMode.STREAMING_UNSIGNED_TRAILER)
    stream = payload(body, headers, result, fixed(7))
    assert read(stream) == DATA
    assert stream.digest().checksums == {"CRC32": checksum("CRC32", DATA)}


def test_streaming_unsigned_trailer_tampered() -> None:
    result = auth(PayloadMode.STREAMING_UNSIGNED_TRAILER)
    body = botocore_chunked(DATA)
    headers = chunked_headers(DATA, body, x_amz_trailer="x-amz-checksum-crc32")
    altered = bytearray(body)
    altered[5000] ^= 1
    assert read_error(payload(bytes(altered), headers, result)).code == "BadDigest"
    value = checksum("CRC32", DATA).encode()
    wrong_trailer = body.replace(value, checksum("CRC32", b"x").encode())
    assert read_error(payload(wrong_trailer, headers, result)).code == "BadDigest"
    no_trailer = body[: body.rindex(b"x-amz-checksum")] + b"\r\n"
    assert read_error(payload(no_trailer, headers, result)).code == "MalformedTrailerError"
    md5_headers = {**headers, "content-md5": b64md5(b"other")}
    assert read_error(payload(body, md5_headers, result)).code == "BadDigest"
    short = chunked_headers(DATA + b"!", body, x_amz_trailer="x-amz-checksum-crc32")
    assert read_error(payload(body, short, result)).code == "IncompleteBody"


def test_content_encoding_aws_chunked_with_unsigned_payload() -> None:
    body = botocore_chunked(DATA)
    headers = chunked_headers(
        DATA, body, content_encoding="gzip, aws-chunked", x_amz_trailer="x-amz-checksum-crc32"
    )
    stream = payload(body, headers, UNSIGNED)
    assert read(stream) == DATA


# --- whole requests built by real botocore ---


def authenticate_botocore(request_headers: dict[str, str], url: str) -> AuthResult:
    parts = urlsplit(url)
    headers = dict(request_headers)
    headers.setdefault("host", parts.netloc)
    view = HttpRequestView("PUT", parts.path, parts.query, headers)
    return authenticate(view, lookup_any, "us-east-1", datetime.now(UTC))


def lookup_any(access_key: str) -> Credential | None:
    return lookup(access_key)


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_botocore_put_object_streaming_trailer(algorithm: str) -> None:
    request = botocore_put_request(DATA, ChecksumAlgorithm=algorithm)
    headers = headers_of(request)
    result = authenticate_botocore(headers, request.url)
    assert result.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    body = read_body(request)
    stream = payload(body, headers, result, randomly(11))
    assert read(stream) == DATA
    assert stream.digest().checksums == {algorithm: checksum(algorithm, DATA)}

    altered = bytearray(body)
    altered[len(body) // 2] ^= 1
    assert read_error(payload(bytes(altered), headers, result)).code == "BadDigest"


def test_botocore_put_object_signed_with_header_checksum() -> None:
    request = botocore_put_request(
        DATA, endpoint="http://127.0.0.1:9000", ChecksumAlgorithm="CRC32", ContentMD5=b64md5(DATA)
    )
    headers = headers_of(request)
    result = authenticate_botocore(headers, request.url)
    assert result.payload_mode is PayloadMode.SIGNED
    body = read_body(request)
    stream = payload(body, headers, result, fixed(1000))
    assert read(stream) == DATA
    assert stream.digest().checksums == {"CRC32": checksum("CRC32", DATA)}
    assert stream.digest().md5_hex == hashlib.md5(DATA).hexdigest()

    altered = b"Z" + body[1:]
    assert read_error(payload(altered, headers, result)).code == "XAmzContentSHA256Mismatch"
