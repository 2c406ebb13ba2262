"""The free-space floor (policy.free_space) against a real gateway on a small tmpfs: writes
are refused with 507 InsufficientStorage before their body is read when the volume would
fall under ``min_free_bytes``; deletes still work; S3 clients do not retry a 507; readyz
names the failed check. Plus how the floor is configured."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from gateway.settings import SettingsError, load_settings
from tests.support.clients import make_s3_client
from tests.support.faults import MiB, fill, free_bytes, tmpfs, unfill
from tests.support.s3_errors import s3_error
from tests.support.servers import GatewayServer, running_gateway
from tests.support.signing import Signer
from tests.support.waiting import files_under, wait_until

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

FLOOR = 8 * MiB


@pytest.fixture
def floored_gateway(tmp_path: Path) -> Iterator[GatewayServer]:
    """A gateway on a 24 MiB tmpfs with an 8 MiB floor, logging every request."""
    env = {"PWG_MIN_FREE_BYTES": str(FLOOR), "PWG_LOG_LEVEL": "info"}
    with (
        tmpfs(tmp_path / "data", 24 * MiB) as data_dir,
        running_gateway(data_dir, env=env) as server,
    ):
        yield server


def access_lines(server: GatewayServer) -> list[dict[str, Any]]:
    lines = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("message") == "request":
                lines.append(record)
    return lines


def raw_put_awaiting_continue(server: GatewayServer, path: str, size: int) -> bytes:
    """A signed PUT announcing ``size`` bytes with ``Expect: 100-continue``; only the
    headers are sent. Returns the server's first answer: a final response (read to the end,
    the server closing the connection) or a ``100 Continue`` asking for the body."""
    extra = {"content-length": str(size), "expect": "100-continue"}
    headers, *_ = Signer(server).sign("PUT", path, "UNSIGNED-PAYLOAD", extra, datetime.now(UTC))
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
            answer += chunk
        if answer.startswith(b"HTTP/1.1 100"):
            return answer  # the server wants the body: it was not refused before reading it
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_put_over_the_floor_is_refused_before_its_body_is_read(
    floored_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    server = floored_gateway
    s3 = make_s3_client(server)
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    free = free_bytes(server.data_dir)
    too_big = free - FLOOR + 1

    answer = raw_put_awaiting_continue(server, f"/{bucket}/big", too_big)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 507 Insufficient Storage"  # no 100 Continue first
    assert b"<Code>InsufficientStorage</Code>" in rest
    assert b"connection: close" in rest.lower()
    assert files_under(server.data_dir / "storage" / "tmp") == []
    # Nothing of the body was written (the catalog and background jobs may write a page or
    # two meanwhile; the body was the whole free space).
    assert free_bytes(server.data_dir) > free - MiB

    # Just under the floor's limit is accepted.
    s3.put_object(Bucket=bucket, Key="fits", Body=b"f" * (4 * MiB))
    assert s3.head_object(Bucket=bucket, Key="fits")["ContentLength"] == 4 * MiB
    # A copy announces the source's size: admitted only while it leaves the floor free.
    status, code, message = s3_error(
        lambda: [
            s3.copy_object(Bucket=bucket, Key=f"copy{n}", CopySource=f"{bucket}/fits")
            for n in range(4)
        ]
    )
    assert (status, code) == (507, "InsufficientStorage")
    assert "nearly full" in message
    assert free_bytes(server.data_dir) >= FLOOR


def test_every_write_is_refused_under_the_floor_and_deletes_free_space(
    floored_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    server = floored_gateway
    s3 = make_s3_client(server)
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"kept")
    s3.put_object(Bucket=bucket, Key="doomed", Body=b"d" * (2 * MiB))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload, PartNumber=1, Body=b"p")[
        "ETag"
    ]
    # Leave less than the floor free (but room enough for any write to succeed).
    filler = server.data_dir / "filler"
    filler.write_bytes(b"\0" * (free_bytes(server.data_dir) - FLOOR + MiB))
    assert MiB // 2 < free_bytes(server.data_dir) < FLOOR

    refused: dict[str, Callable[[], Any]] = {
        "CreateBucket": lambda: s3.create_bucket(Bucket=bucket_name()),
        "PutObject": lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x"),
        "PutObject (empty)": lambda: s3.put_object(Bucket=bucket, Key="new", Body=b""),
        "CopyObject": lambda: s3.copy_object(
            Bucket=bucket, Key="copy", CopySource=f"{bucket}/kept"
        ),
        "CreateMultipartUpload": lambda: s3.create_multipart_upload(Bucket=bucket, Key="m2"),
        "UploadPart": lambda: s3.upload_part(
            Bucket=bucket, Key="multi", UploadId=upload, PartNumber=2, Body=b"q"
        ),
        "UploadPartCopy": lambda: s3.upload_part_copy(
            Bucket=bucket,
            Key="multi",
            UploadId=upload,
            PartNumber=3,
            CopySource=f"{bucket}/kept",
        ),
        "CompleteMultipartUpload": lambda: s3.complete_multipart_upload(
            Bucket=bucket,
            Key="multi",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        ),
    }
    for name, call in refused.items():
        assert s3_error(call)[:2] == (507, "InsufficientStorage"), name
    assert files_under(server.data_dir / "storage" / "tmp") == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["doomed", "kept"]
    parts = s3.list_parts(Bucket=bucket, Key="multi", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    ready = httpx.get(f"{server.endpoint}/_pagewright/readyz")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["free_space"]
    assert ready.json()["checks"]["free_space"]["min_free_bytes"] == FLOOR

    # Deletes are how space is freed: always allowed.
    s3.delete_object(Bucket=bucket, Key="doomed")
    s3.abort_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload)
    unfill(filler)
    s3.put_object(Bucket=bucket, Key="new", Body=b"x")
    assert httpx.get(f"{server.endpoint}/_pagewright/readyz").json()["failed"] == []


def test_a_body_of_unknown_length_is_stopped_at_the_floor(
    tmp_path: Path, bucket_name: Callable[[], str]
) -> None:
    """Without an announced size the floor is re-checked while the body streams: a body
    that would fit on the volume but eat into the floor is refused midway, and nothing of
    it stays behind."""
    floor = 16 * MiB
    with (
        tmpfs(tmp_path / "data", 40 * MiB) as data_dir,
        running_gateway(data_dir, env={"PWG_MIN_FREE_BYTES": str(floor)}) as server,
    ):
        s3 = make_s3_client(server)
        bucket = bucket_name()
        s3.create_bucket(Bucket=bucket)
        free = free_bytes(data_dir)
        size = free - floor + 12 * MiB  # fits on the volume, not above the floor
        assert size < free
        path = f"/{bucket}/streamed"
        headers, *_ = Signer(server).sign("PUT", path, "UNSIGNED-PAYLOAD", {}, datetime.now(UTC))

        def body() -> Iterator[bytes]:
            chunk = b"s" * MiB
            for _ in range(size // MiB):
                yield chunk

        response = httpx.put(f"{server.endpoint}{path}", headers=headers, content=body())
        assert response.status_code == 507
        assert b"<Code>InsufficientStorage</Code>" in response.content
        assert files_under(data_dir / "storage" / "tmp") == []
        assert free_bytes(data_dir) >= free - MiB
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_clients_do_not_retry_a_507(
    floored_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    """boto3 retries 500 and 503 (five attempts here); a 507 it takes as final."""
    server = floored_gateway
    bucket = bucket_name()
    make_s3_client(server).create_bucket(Bucket=bucket)
    filler = fill(server.data_dir)
    for mode in ("legacy", "standard"):
        retrying = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name=server.region,
            config=Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": mode}
            ),
        )
        status, code, _ = s3_error(partial(retrying.put_object, Bucket=bucket, Key="k", Body=b"x"))
        assert (status, code) == (507, "InsufficientStorage")
    unfill(filler)

    def puts() -> list[tuple[int, str]]:
        lines = access_lines(server)
        return [(r["status"], r["bucket"]) for r in lines if r["operation"] == "PutObject"]

    wait_until(lambda: len(puts()) >= 2)  # a line is written just after its reply
    assert puts() == [(507, bucket), (507, bucket)]


# Configuration


def test_the_floor_is_configured_by_toml_and_environment(tmp_path: Path) -> None:
    assert load_settings(environ={}).min_free_bytes == 256 * MiB
    config = tmp_path / "gateway.toml"
    config.write_text("min_free_bytes = 1048576\n")
    assert load_settings(config_file=config, environ={}).min_free_bytes == MiB
    environ = {"PWG_MIN_FREE_BYTES": "0"}
    assert load_settings(config_file=config, environ=environ).min_free_bytes == 0
    with pytest.raises(SettingsError, match="PWG_MIN_FREE_BYTES"):
        load_settings(environ={"PWG_MIN_FREE_BYTES": "lots"})
    with pytest.raises(SettingsError, match="min_free_bytes"):
        load_settings(environ={"PWG_MIN_FREE_BYTES": "-1"})
