"""Storage faults on the filesystem backend are reported honestly (translators.filesystem.errors),
against a real gateway on real faulty volumes: a full tmpfs (507 InsufficientStorage), an
ext4 volume that remounts itself read-only (503), a store deleted under the gateway (503).
Every failed write leaves nothing partial behind and the previous version readable.

The free-space floor is off here (``PWG_MIN_FREE_BYTES=0``) so that writes really run into
the end of the volume; tests/test_free_space.py covers the floor.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import make_s3_client
from tests.support.faults import MiB, ext4_volume, fail_volume, fill, tmpfs, unfill
from tests.support.s3_errors import s3_error
from tests.support.servers import GatewayServer, running_gateway
from tests.support.waiting import files_under

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

NO_FLOOR = {"PWG_MIN_FREE_BYTES": "0"}


def catalog_rows(data_dir: Path, site: str) -> dict[str, tuple[int, str]]:
    """key -> (size, etag) of the site's rows in the gateway's catalog (read-only)."""
    uri = f"file:{data_dir / 'catalog.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute("SELECT key, size, etag FROM objects WHERE site = ?", (site,))
        return {key: (size, etag) for key, size, etag in rows}


@pytest.fixture
def full_volume(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs as a gateway's data dir."""
    with tmpfs(tmp_path / "data", 24 * MiB) as mounted:
        yield mounted


@pytest.fixture
def small_gateway(full_volume: Path) -> Iterator[GatewayServer]:
    with running_gateway(full_volume, env=NO_FLOOR) as server:
        yield server


# A full volume: 507, nothing partial, the previous version intact


def test_full_volume_put_is_507_and_keeps_the_previous_version(
    small_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(small_gateway)
    data_dir = small_gateway.data_dir
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"previous version")
    blobs_before = files_under(data_dir / "storage" / "blobs")
    rows_before = catalog_rows(data_dir, bucket)
    filler = fill(data_dir)

    # The body's bytes hit the end of the volume while they are written to the temp file.
    status, code, message = s3_error(
        lambda: s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"n" * (2 * MiB))
    )
    assert (status, code) == (507, "InsufficientStorage")
    assert "full" in message
    assert files_under(data_dir / "storage" / "tmp") == []
    assert files_under(data_dir / "storage" / "blobs") == blobs_before
    body = s3.get_object(Bucket=bucket, Key="site/index.html")["Body"].read()
    assert body == b"previous version"
    assert catalog_rows(data_dir, bucket) == rows_before

    unfill(filler)
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"n" * (2 * MiB))
    assert s3.get_object(Bucket=bucket, Key="site/index.html")["ContentLength"] == 2 * MiB


def test_full_volume_metadata_commit_is_507(
    small_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    """An empty body needs no data block, so the failing step is the catalogue's commit
    (SQLite's WAL cannot grow): SQLITE_FULL is a 507 too, and the blob it had published
    is removed."""
    s3 = make_s3_client(small_gateway)
    data_dir = small_gateway.data_dir
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"kept")
    blobs_before = files_under(data_dir / "storage" / "blobs")
    fill(data_dir)

    assert s3_error(lambda: s3.put_object(Bucket=bucket, Key="empty", Body=b""))[:2] == (
        507,
        "InsufficientStorage",
    )
    assert s3_error(lambda: s3.put_object(Bucket=bucket, Key="kept", Body=b""))[:2] == (
        507,
        "InsufficientStorage",
    )
    assert s3_error(lambda: s3.create_bucket(Bucket=bucket_name()))[:2] == (
        507,
        "InsufficientStorage",
    )
    assert files_under(data_dir / "storage" / "tmp") == []
    assert files_under(data_dir / "storage" / "blobs") == blobs_before
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept"]
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"kept"


def test_full_volume_multipart_part_and_completion_are_507(
    small_gateway: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(small_gateway)
    data_dir = small_gateway.data_dir
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="big", Body=b"previous version")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    first = b"1" * (5 * MiB)
    etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=first)[
        "ETag"
    ]
    filler = fill(data_dir)

    status, code, _ = s3_error(
        lambda: s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload, PartNumber=2, Body=b"2" * (2 * MiB)
        )
    )
    assert (status, code) == (507, "InsufficientStorage")
    parts = [{"PartNumber": 1, "ETag": etag}]
    # Assembling the object needs another 5 MiB: the copy hits the end of the volume.
    status, code, _ = s3_error(
        lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    )
    assert (status, code) == (507, "InsufficientStorage")
    assert files_under(data_dir / "storage" / "tmp") == []
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MiB)]
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"previous version"

    unfill(filler)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == first


# A volume that turns read-only under the gateway: 503, reads keep working


def test_volume_turned_read_only_is_503(tmp_path: Path, bucket_name: Callable[[], str]) -> None:
    with (
        ext4_volume(tmp_path / "data", 64 * MiB) as data_dir,
        running_gateway(data_dir, env=NO_FLOOR) as server,
    ):
        s3 = make_s3_client(server)
        bucket = bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"previous version")
        fail_volume(data_dir)

        for write in (
            lambda: s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"new"),
            lambda: s3.put_object(Bucket=bucket, Key="other", Body=b""),
            lambda: s3.create_bucket(Bucket=bucket_name()),
            lambda: s3.delete_object(Bucket=bucket, Key="site/index.html"),
        ):
            status, code, message = s3_error(write)
            assert (status, code) == (503, "ServiceUnavailable")
            assert "read-only" in message
        body = s3.get_object(Bucket=bucket, Key="site/index.html")["Body"].read()
        assert body == b"previous version"
        ready = httpx.get(f"{server.endpoint}/_pagewright/readyz")
        assert ready.status_code == 503
        assert "backend" in ready.json()["failed"]
        assert "read-only" in ready.json()["checks"]["backend"]["error"]


# A store deleted under the running gateway: 503, never a silent success


def test_vanished_store_is_503(tmp_path: Path, bucket_name: Callable[[], str]) -> None:
    with running_gateway(tmp_path / "data", env=NO_FLOOR) as server:
        s3 = make_s3_client(server)
        bucket = bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"stored")
        shutil.rmtree(server.data_dir / "storage")

        for call in (
            lambda: s3.get_object(Bucket=bucket, Key="k"),
            lambda: s3.create_bucket(Bucket=bucket_name()),
            lambda: s3.put_object(Bucket=bucket, Key="k2", Body=b"x"),
            lambda: s3.list_objects_v2(Bucket=bucket),
            lambda: s3.delete_object(Bucket=bucket, Key="k"),
        ):
            status, code, message = s3_error(call)
            assert (status, code) == (503, "ServiceUnavailable")
            assert "missing" in message
        ready = httpx.get(f"{server.endpoint}/_pagewright/readyz")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["backend"]
        assert not (server.data_dir / "storage").exists()


def test_blob_missing_from_the_store_is_503_not_slowdown(
    tmp_path: Path, bucket_name: Callable[[], str]
) -> None:
    with running_gateway(tmp_path / "data", env=NO_FLOOR) as server:
        s3 = make_s3_client(server)
        bucket = bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"stored")
        (blob,) = files_under(server.data_dir / "storage" / "blobs")
        blob.unlink()
        status, code, _ = s3_error(lambda: s3.get_object(Bucket=bucket, Key="k"))
        assert (status, code) == (503, "ServiceUnavailable")
