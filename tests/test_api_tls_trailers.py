"""boto3 at its defaults over HTTPS: checksums travel in aws-chunked trailers
(STREAMING-UNSIGNED-PAYLOAD-TRAILER), are verified, stored and returned."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer

MIB = 1024 * 1024


class Recorder:
    """Remembers the x-amz-content-sha256 of every request boto3 sends."""

    def __init__(self) -> None:
        self.modes: list[str] = []

    def __call__(self, request: Any, **_: Any) -> None:
        value = request.headers.get("X-Amz-Content-SHA256")
        self.modes.append(value.decode() if isinstance(value, bytes) else str(value))


@pytest.fixture
def tls_s3(tls_gateway: GatewayServer) -> Iterator[tuple[Any, str, Recorder]]:
    client = make_s3_client(tls_gateway)
    recorder = Recorder()
    client.meta.events.register("before-send.s3", recorder)
    bucket = f"tls-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket, recorder
    client.close()  # idle TLS keep-alive connections would hold up the server's shutdown


def test_put_object_with_trailer(tls_s3: tuple[Any, str, Recorder]) -> None:
    s3, bucket, recorder = tls_s3
    body = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="k", Body=io.BytesIO(body), ChecksumAlgorithm="CRC32C")
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in recorder.modes
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32C"] == put["ChecksumCRC32C"]
    assert "ContentEncoding" not in got


def test_upload_and_download_file(tls_s3: tuple[Any, str, Recorder], tmp_path: Path) -> None:
    s3, bucket, recorder = tls_s3
    source = tmp_path / "site.tar.gz"
    source.write_bytes(os.urandom(20 * MIB))
    s3.upload_file(
        str(source), bucket, "backups/site.bin", Config=TransferConfig(multipart_threshold=8 * MIB)
    )
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in recorder.modes
    head = s3.head_object(Bucket=bucket, Key="backups/site.bin")
    assert head["ETag"].endswith('-3"')
    target = tmp_path / "back.tar.gz"
    s3.download_file(bucket, "backups/site.bin", str(target))
    assert target.read_bytes() == source.read_bytes()
