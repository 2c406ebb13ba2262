"""The MinIO Python SDK against the gateway."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from tests.e2e.helpers import MiB, data, md5_hex, multipart_etag, write_file
from tests.support.servers import GatewayServer


@pytest.fixture
def client(gateway: GatewayServer) -> Minio:
    return Minio(
        f"127.0.0.1:{gateway.port}",
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        secure=False,
        region=gateway.region,
    )


@pytest.fixture
def mbucket(client: Minio, bucket_name: Callable[[], str]) -> str:
    """A fresh bucket made by the SDK."""
    name = bucket_name()
    client.make_bucket(name)
    return name


def _read(client: Minio, bucket: str, key: str, offset: int = 0, length: int = 0) -> bytes:
    response = client.get_object(bucket, key, offset=offset, length=length)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


class _Unsized(io.RawIOBase):
    """A stream of unknown length, read in whatever sizes the client asks for."""

    def __init__(self, body: bytes) -> None:
        self._source = io.BytesIO(body)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_buckets_exist_and_remove(client: Minio, bucket_name: Callable[[], str]) -> None:
    name = bucket_name()
    assert client.bucket_exists(name) is False
    client.make_bucket(name)
    assert client.bucket_exists(name) is True
    assert name in {b.name for b in client.list_buckets()}
    with pytest.raises(S3Error) as taken:
        client.make_bucket(name)
    assert taken.value.code == "BucketAlreadyOwnedByYou"

    client.put_object(name, "k", io.BytesIO(b"x"), 1)
    with pytest.raises(S3Error) as not_empty:
        client.remove_bucket(name)
    assert not_empty.value.code == "BucketNotEmpty"
    client.remove_object(name, "k")
    client.remove_bucket(name)
    assert client.bucket_exists(name) is False


def test_put_small_and_streamed_multipart(client: Minio, mbucket: str) -> None:
    small = data(4000, seed=20)
    written = client.put_object(
        mbucket,
        "small.txt",
        io.BytesIO(small),
        len(small),
        content_type="text/plain",
        metadata={"x-amz-meta-build": "42", "Cache-Control": "max-age=60"},
    )
    assert written.etag == md5_hex(small)

    stat = client.stat_object(mbucket, "small.txt")
    assert stat.size == 4000
    assert stat.etag == md5_hex(small)
    assert stat.content_type == "text/plain"
    assert stat.metadata is not None
    assert stat.metadata["x-amz-meta-build"] == "42"
    assert stat.metadata["Cache-Control"] == "max-age=60"
    assert _read(client, mbucket, "small.txt") == small

    large = data(12 * MiB, seed=21)
    streamed = client.put_object(
        mbucket, "large.bin", io.BufferedReader(_Unsized(large)), length=-1, part_size=5 * MiB
    )
    assert streamed.etag == multipart_etag(large, 5 * MiB)
    assert streamed.etag.endswith("-3")
    assert client.stat_object(mbucket, "large.bin").size == 12 * MiB
    assert _read(client, mbucket, "large.bin") == large
    # A range across the first part boundary.
    assert (
        _read(client, mbucket, "large.bin", offset=5 * MiB - 10, length=20)
        == (large[5 * MiB - 10 : 5 * MiB + 10])
    )
    assert _read(client, mbucket, "small.txt", offset=100, length=50) == small[100:150]
    assert _read(client, mbucket, "small.txt", offset=3990) == small[3990:]

    with pytest.raises(S3Error) as missing:
        client.stat_object(mbucket, "nope")
    assert missing.value.code == "NoSuchKey"
    with pytest.raises(S3Error) as missing:
        _read(client, mbucket, "nope")
    assert missing.value.code == "NoSuchKey"


def test_fput_fget(client: Minio, mbucket: str, tmp_path: Path) -> None:
    body = write_file(tmp_path / "up.bin", 7 * MiB, seed=22)
    result = client.fput_object(mbucket, "dir/up.bin", str(tmp_path / "up.bin"), part_size=5 * MiB)
    assert result.etag == multipart_etag(body, 5 * MiB)
    client.fget_object(mbucket, "dir/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == body


def test_list_copy_remove_objects(client: Minio, mbucket: str) -> None:
    keys = ["a.txt", "dir/b.txt", "dir/c.txt", "dir/sub/d.txt", "e/f.txt"]
    for index, key in enumerate(keys):
        client.put_object(mbucket, key, io.BytesIO(data(100 + index, seed=index)), 100 + index)

    everything = list(client.list_objects(mbucket, recursive=True))
    assert [(o.object_name, o.size) for o in everything] == [
        (key, 100 + index) for index, key in enumerate(keys)
    ]
    assert all(o.is_dir is False for o in everything)
    top = [(o.object_name, o.is_dir) for o in client.list_objects(mbucket)]
    assert top == [("a.txt", False), ("dir/", True), ("e/", True)]
    inside = [(o.object_name, o.is_dir) for o in client.list_objects(mbucket, prefix="dir/")]
    assert inside == [("dir/b.txt", False), ("dir/c.txt", False), ("dir/sub/", True)]

    copied = client.copy_object(mbucket, "copies/a.txt", CopySource(mbucket, "a.txt"))
    assert copied.etag == md5_hex(data(100, seed=0))
    assert _read(client, mbucket, "copies/a.txt") == data(100, seed=0)

    doomed = [DeleteObject(key) for key in [*keys, "never-existed"]]
    errors = list(client.remove_objects(mbucket, doomed))
    assert errors == []
    left = [o.object_name for o in client.list_objects(mbucket, recursive=True)]
    assert left == ["copies/a.txt"]


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        body: bytes = response.read()
        return body


def _error_code(url: str) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as failure:
        _fetch(url)
    document = etree.fromstring(failure.value.read())
    code = document.findtext("Code")
    assert code is not None
    return failure.value.code, code


def test_presigned_get(client: Minio, mbucket: str) -> None:
    body = data(3000, seed=23)
    client.put_object(mbucket, "dir/page one.html", io.BytesIO(body), len(body))

    url = client.presigned_get_object(mbucket, "dir/page one.html", expires=timedelta(hours=1))
    assert _fetch(url) == body

    # The signature covers the whole query; one changed character must be refused.
    last = url[-1]
    tampered = url[:-1] + ("0" if last != "0" else "1")
    assert _error_code(tampered) == (403, "SignatureDoesNotMatch")

    # Signed two hours ago, valid for one: expired.
    expired = client.presigned_get_object(
        mbucket,
        "dir/page one.html",
        expires=timedelta(hours=1),
        request_date=datetime.now(UTC) - timedelta(hours=2),
    )
    assert _error_code(expired) == (403, "AccessDenied")
