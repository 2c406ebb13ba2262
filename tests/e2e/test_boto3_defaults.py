"""boto3 at its default settings (flexible checksums, aws-chunked trailers, s3transfer),
against the gateway on every storage backend (tests/e2e/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from awscrt import checksums as crt
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from lxml import etree

from tests.e2e.helpers import MiB, data, md5_hex, multipart_etag, write_file
from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def expected_checksum(algorithm: str, body: bytes) -> str:
    """The base64 checksum S3 reports for ``body`` under ``algorithm``."""
    if algorithm == "CRC32":
        return _b64(zlib.crc32(body).to_bytes(4, "big"))
    if algorithm == "CRC32C":
        return _b64(crt.crc32c(body).to_bytes(4, "big"))
    if algorithm == "CRC64NVME":
        return _b64(crt.crc64nvme(body).to_bytes(8, "big"))
    return _b64(hashlib.new(algorithm.lower(), body).digest())


class _NonSeekable(io.RawIOBase):
    """A pipe-like body: readable once, no seek, no tell, no length."""

    def __init__(self, body: bytes) -> None:
        self._source = io.BytesIO(body)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        return self._source.read(size)


@pytest.fixture
def s3(backend_s3: Any) -> Any:
    """This module's ``s3`` (and so ``bucket``) is the gateway of each backend in turn."""
    return backend_s3


@pytest.fixture
def client_bucket(
    transport_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> Iterator[tuple[Any, str]]:
    """A default boto3 client and a fresh bucket, over plain HTTP (checksums in headers) and
    over HTTPS (where boto3 sends checksums in aws-chunked trailers)."""
    client = make_s3_client(transport_gateway)
    name = bucket_name()
    client.create_bucket(Bucket=name)
    yield client, name
    client.close()  # idle TLS keep-alive connections would hold up the server's shutdown


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_put_get_with_checksum(client_bucket: tuple[Any, str], algorithm: str) -> None:
    s3, bucket = client_bucket
    body = data(100_000, seed=50)
    key = f"checksum/{algorithm}.bin"
    expected = expected_checksum(algorithm, body)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == expected
    assert put["ETag"].strip('"') == md5_hex(body)

    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got[f"Checksum{algorithm}"] == expected
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected


def test_default_put_keeps_crc32(client_bucket: tuple[Any, str]) -> None:
    s3, bucket = client_bucket
    """No algorithm named: boto3 sends CRC32 by default, and S3 keeps what it was sent."""
    body = data(5000, seed=51)
    s3.put_object(Bucket=bucket, Key="plain.bin", Body=body)
    got = s3.get_object(Bucket=bucket, Key="plain.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == expected_checksum("CRC32", body)


def test_upload_and_download_file_multipart(s3: Any, bucket: str, tmp_path: Path) -> None:
    body = write_file(tmp_path / "up.bin", 20 * MiB, seed=52)
    config = TransferConfig(multipart_threshold=8 * MiB)
    s3.upload_file(str(tmp_path / "up.bin"), bucket, "big/up.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="big/up.bin")
    assert head["ContentLength"] == 20 * MiB
    # s3transfer's default chunk size is 8 MiB: 8 + 8 + 4.
    assert head["ETag"].strip('"') == multipart_etag(body, 8 * MiB)

    # Downloading above the threshold issues ranged GETs, validated with checksums on.
    s3.download_file(bucket, "big/up.bin", str(tmp_path / "down.bin"), Config=config)
    assert (tmp_path / "down.bin").read_bytes() == body


def test_upload_fileobj_non_seekable(client_bucket: tuple[Any, str]) -> None:
    s3, bucket = client_bucket
    body = data(9 * MiB + 7, seed=53)
    config = TransferConfig(multipart_threshold=8 * MiB)
    s3.upload_fileobj(_NonSeekable(body), bucket, "stream.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="stream.bin")
    assert head["ETag"].strip('"') == multipart_etag(body, 8 * MiB)
    assert s3.get_object(Bucket=bucket, Key="stream.bin")["Body"].read() == body

    small = data(1000, seed=54)
    s3.upload_fileobj(_NonSeekable(small), bucket, "small-stream.bin", Config=config)
    assert s3.get_object(Bucket=bucket, Key="small-stream.bin")["Body"].read() == small


def _http_error(request: urllib.request.Request | str) -> tuple[int, str | None]:
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request)
    return failure.value.code, etree.fromstring(failure.value.read()).findtext("Code")


@pytest.mark.parametrize("signature_version", ["default", "s3v4"])
def test_presigned_get_and_put(
    backend_gateway: GatewayServer, bucket: str, signature_version: str
) -> None:
    """At its defaults boto3 presigns with Signature Version 2 in us-east-1
    (``AWSAccessKeyId``/``Signature``/``Expires``); with ``s3v4`` it uses SigV4."""
    if signature_version == "default":
        s3 = make_s3_client(backend_gateway)
        marker = "AWSAccessKeyId="
    else:
        s3 = make_s3_client(backend_gateway, signature_version=signature_version)
        marker = "X-Amz-Signature="
    body = data(4000, seed=55)
    s3.put_object(Bucket=bucket, Key="dir/file one.txt", Body=body)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/file one.txt"}, ExpiresIn=600
    )
    assert marker in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == body

    uploaded = data(3000, seed=56)
    # SigV2 signs the Content-Type, and urllib sends one with every body: sign the one sent.
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": "dir/uploaded.txt", "ContentType": "text/plain"},
        ExpiresIn=600,
    )
    headers = {"Content-Type": "text/plain"}
    request = urllib.request.Request(url, data=uploaded, method="PUT", headers=headers)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        assert response.headers["ETag"].strip('"') == md5_hex(uploaded)
    stored = s3.get_object(Bucket=bucket, Key="dir/uploaded.txt")
    assert stored["Body"].read() == uploaded
    assert stored["ContentType"] == "text/plain"

    # The signature covers the key: the same URL for another key is refused.
    other = url.replace("dir/uploaded.txt", "dir/other.txt")
    put_other = urllib.request.Request(other, data=uploaded, method="PUT", headers=headers)
    assert _http_error(put_other) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="dir/other.txt")
    assert missing.value.response["Error"]["Code"] == "404"


def test_ranged_get_with_checksum_mode(client_bucket: tuple[Any, str]) -> None:
    s3, bucket = client_bucket
    body = data(200_000, seed=57)
    s3.put_object(Bucket=bucket, Key="ranged.bin", Body=body, ChecksumAlgorithm="SHA256")
    got = s3.get_object(
        Bucket=bucket, Key="ranged.bin", Range="bytes=1000-1999", ChecksumMode="ENABLED"
    )
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == "bytes 1000-1999/200000"
    assert got["Body"].read() == body[1000:2000]
    # A whole-object checksum does not describe a range, so S3 sends none.
    assert "ChecksumSHA256" not in got

    suffix = s3.get_object(
        Bucket=bucket, Key="ranged.bin", Range="bytes=-16", ChecksumMode="ENABLED"
    )
    assert suffix["Body"].read() == body[-16:]


def test_upload_file_with_a_full_object_checksum(s3: Any, bucket: str, tmp_path: Path) -> None:
    """s3transfer sends a full-object checksum it was given on CompleteMultipartUpload (as
    FULL_OBJECT): the gateway checks it against the object, not against the XML body."""
    body = write_file(tmp_path / "full.bin", 12 * MiB, seed=60)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    whole = expected_checksum("CRC64NVME", body)
    s3.upload_file(
        str(tmp_path / "full.bin"),
        bucket,
        "full/crc64.bin",
        Config=config,
        ExtraArgs={"ChecksumCRC64NVME": whole},
    )
    head = s3.head_object(Bucket=bucket, Key="full/crc64.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (whole, "FULL_OBJECT")
    assert head["ETag"].strip('"') == multipart_etag(body, 5 * MiB)

    wrong = expected_checksum("CRC64NVME", body[:-1])
    with pytest.raises(S3UploadFailedError, match=r"\(BadDigest\).*CompleteMultipartUpload"):
        s3.upload_file(
            str(tmp_path / "full.bin"),
            bucket,
            "full/wrong.bin",
            Config=config,
            ExtraArgs={"ChecksumCRC64NVME": wrong},
        )
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="full/wrong")


def test_composite_checksum_and_a_repeated_complete(s3: Any, bucket: str) -> None:
    """A COMPOSITE SHA256 given with its -N is checked; a Complete repeated after it succeeded
    (an SDK retrying a lost reply) answers 200 with the same ETag."""
    parts = [data(5 * MiB, seed=61), data(5 * MiB, seed=62), data(1000, seed=63)]
    key = "composite/sha256.bin"
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", ChecksumType="COMPOSITE"
    )["UploadId"]
    done = []
    for number, part in enumerate(parts, 1):
        result = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=part,
            ChecksumAlgorithm="SHA256",
        )
        done.append(
            {
                "PartNumber": number,
                "ETag": result["ETag"],
                "ChecksumSHA256": result["ChecksumSHA256"],
            }
        )
    digests = b"".join(hashlib.sha256(part).digest() for part in parts)
    composite = f"{_b64(hashlib.sha256(digests).digest())}-3"
    complete = {
        "Bucket": bucket,
        "Key": key,
        "UploadId": upload_id,
        "MultipartUpload": {"Parts": done},
    }

    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(**complete, ChecksumSHA256=composite.replace("-3", "-2"))
    assert excinfo.value.response["Error"]["Code"] == "BadDigest"
    first = s3.complete_multipart_upload(**complete, ChecksumSHA256=composite)
    assert first["ChecksumSHA256"] == composite
    second = s3.complete_multipart_upload(**complete, ChecksumSHA256=composite)
    assert (second["ETag"], second["ChecksumSHA256"]) == (first["ETag"], composite)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="")
    assert all(not o["Key"].startswith(".pagewright") for o in listed.get("Contents", []))
