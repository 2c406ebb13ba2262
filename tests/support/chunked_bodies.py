"""aws-chunked bodies: AWS's signed example, the tests' own signer, botocore's encoder, and
ways to split a body into reads."""

from __future__ import annotations

import hashlib
import hmac
import io
import random
from collections.abc import Callable, Iterator

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from gateway.sigv4 import ChunkSigningContext
from gateway.sigv4_signing import EMPTY_SHA256, signing_key
from tests.support.sigv4_example import SECRET

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
