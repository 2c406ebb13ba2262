"""Build artifacts through the real gateway: validation, SHA256, quotas, retention, catalog."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import tarfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.archives import Member, gzip, make_tar, site, zstd
from tests.support.clients import make_s3_client
from tests.support.emulators import running, start_moto
from tests.support.gateway import InProcessGateway
from tests.support.servers import GatewayServer, running_gateway

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

MIB = 1024 * 1024


def artifact(extra: list[Member] | None = None, *, compress: str = "gzip") -> bytes:
    tar = make_tar(site(extra or []))
    return gzip(tar) if compress == "gzip" else zstd(tar)


@pytest.fixture(scope="module")
def policed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway with quotas and retention configured in its config file."""
    directory = tmp_path_factory.mktemp("policed")
    config = directory / "gateway.toml"
    config.write_text(
        "[policy]\nquota_bytes = 200000\nretention_keep_last = 2\nrequired_member = 'index.html'\n"
    )
    with running_gateway(directory / "data", "--config", str(config)) as server:
        yield server


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_valid_artifact_gets_sha256(s3: Any, bucket: str) -> None:
    body = artifact()
    s3.put_object(Bucket=bucket, Key="builds/b1.tar.gz", Body=body)
    head = s3.head_object(Bucket=bucket, Key="builds/b1.tar.gz", ChecksumMode="ENABLED")
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert head["ChecksumSHA256"] == expected
    zst = artifact(compress="zstd")
    s3.put_object(Bucket=bucket, Key="builds/b2.tar.zst", Body=zst)
    assert s3.get_object(Bucket=bucket, Key="builds/b2.tar.zst")["Body"].read() == zst


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (artifact()[:-20], "InvalidArchive"),
        (artifact([Member("../escape.html", b"x")]), "UnsafeArchivePath"),
        (artifact([Member("/etc/cron.d/x", b"x")]), "UnsafeArchivePath"),
        (
            artifact([Member("link", kind=tarfile.SYMTYPE, linkname="../../etc/passwd")]),
            "UnsafeArchiveLink",
        ),
        (artifact([Member("dev", kind=tarfile.CHRTYPE)]), "ForbiddenArchiveMember"),
        (gzip(make_tar([Member("zeros.bin", bytes(50 * MIB))])), "ArchiveCompressionRatio"),
    ],
    ids=["truncated", "dotdot", "absolute", "symlink-escape", "device", "bomb"],
)
def test_rejected_artifacts_store_nothing(s3: Any, bucket: str, body: bytes, expected: str) -> None:
    good = artifact()
    s3.put_object(Bucket=bucket, Key="builds/keep.tar.gz", Body=good)
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="builds/keep.tar.gz", Body=body)
    assert code(excinfo) == expected
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="builds/new.tar.gz", Body=body)
    assert s3.get_object(Bucket=bucket, Key="builds/keep.tar.gz")["Body"].read() == good
    assert keys(s3, bucket) == ["builds/keep.tar.gz"]


def test_bad_crc_rejected(s3: Any, bucket: str) -> None:
    body = bytearray(artifact())
    body[-6] ^= 0xFF  # inside the gzip trailer's CRC32
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="builds/crc.tar.gz", Body=bytes(body))
    assert code(excinfo) == "InvalidArchive"
    assert keys(s3, bucket) == []


def test_multipart_artifact_validated(s3: Any, bucket: str) -> None:
    big = artifact([Member(f"assets/{i}.bin", os.urandom(700_000)) for i in range(12)])
    upload = s3.create_multipart_upload(Bucket=bucket, Key="builds/mp.tar.gz")
    part_size = 5 * MIB
    parts = []
    for number, offset in enumerate(range(0, len(big), part_size), 1):
        result = s3.upload_part(
            Bucket=bucket,
            Key="builds/mp.tar.gz",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=big[offset : offset + part_size],
        )
        parts.append({"PartNumber": number, "ETag": result["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="builds/mp.tar.gz",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert s3.get_object(Bucket=bucket, Key="builds/mp.tar.gz")["Body"].read() == big
    assert keys(s3, bucket) == ["builds/mp.tar.gz"]
    bad = s3.create_multipart_upload(Bucket=bucket, Key="builds/bad.tar.gz")
    etag = s3.upload_part(
        Bucket=bucket, Key="builds/bad.tar.gz", UploadId=bad["UploadId"], PartNumber=1, Body=b"no"
    )["ETag"]
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="builds/bad.tar.gz",
            UploadId=bad["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )
    assert code(excinfo) == "InvalidArchive"
    assert keys(s3, bucket) == ["builds/mp.tar.gz"]


def test_concurrent_uploads_over_quota(policed: GatewayServer) -> None:
    s3 = make_s3_client(policed)
    s3.create_bucket(Bucket="quota-site")
    # Each is ~120 KB of incompressible data; the quota is 200,000 bytes.
    bodies = [artifact([Member("blob.bin", os.urandom(120_000))]) for _ in range(2)]
    assert all(100_000 < len(b) < 200_000 for b in bodies)

    def put(index: int) -> str:
        try:
            s3.put_object(Bucket="quota-site", Key=f"builds/q{index}.tar.gz", Body=bodies[index])
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "ok"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(put, range(2)))
    assert outcomes == ["QuotaExceeded", "ok"]
    assert len(keys(s3, "quota-site")) == 1


def test_required_member_and_retention(policed: GatewayServer) -> None:
    s3 = make_s3_client(policed)
    s3.create_bucket(Bucket="retained-site")
    no_index = gzip(make_tar([Member("about.html", b"x")]))
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="retained-site", Key="builds/noindex.tar.gz", Body=no_index)
    assert code(excinfo) == "MissingRequiredMember"
    for number in range(4):
        s3.put_object(
            Bucket="retained-site",
            Key=f"builds/{number}.tar.gz",
            Body=artifact(),
            Metadata={"status": "success"},
        )
        time.sleep(0.01)  # distinct creation times
    # keep_last = 2: the two newest remain.
    assert keys(s3, "retained-site") == ["builds/2.tar.gz", "builds/3.tar.gz"]


def test_lifecycle_expiration_round_trip(s3: Any, bucket: str) -> None:
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "old-builds",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "builds/"},
                    "Expiration": {"Days": 30},
                }
            ]
        },
    )
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["Expiration"]["Days"] == 30
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as excinfo:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code(excinfo) == "NoSuchLifecycleConfiguration"


def test_catalog_records_artifacts(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="builds/cat-1.tar.gz",
        Body=artifact(),
        Metadata={"status": "success", "action": "deploy"},
    )
    s3.put_object(Bucket=bucket, Key="robots.txt", Body=b"User-agent: *")
    database = Path(gateway.data_dir) / "catalog.sqlite3"
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT key, build_id, status, action, creator, sha256 FROM objects WHERE site = ?"
            " ORDER BY key",
            (bucket,),
        ).fetchall()
    assert [r[:5] for r in rows] == [
        ("builds/cat-1.tar.gz", "cat-1", "success", "deploy", "root"),
        ("robots.txt", None, None, None, "root"),
    ]
    assert len(rows[0][5] or "") == 64


def test_the_creator_is_always_the_authenticated_principal(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    forged = {"creator": "mallory", "team": "web"}
    s3.put_object(Bucket=bucket, Key="builds/who-1.tar.gz", Body=artifact(), Metadata=forged)
    head = s3.head_object(Bucket=bucket, Key="builds/who-1.tar.gz")
    assert head["Metadata"] == {"creator": "root", "team": "web"}
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="builds/who-2.tar.gz", Metadata={"creator": "mallory"}
    )
    etag = s3.upload_part(
        Bucket=bucket,
        Key="builds/who-2.tar.gz",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=artifact(),
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="builds/who-2.tar.gz",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    s3.copy_object(
        Bucket=bucket,
        Key="builds/who-3.tar.gz",
        CopySource={"Bucket": bucket, "Key": "builds/who-1.tar.gz"},
        MetadataDirective="REPLACE",
        Metadata={"creator": "mallory"},
    )
    # On an ordinary object x-amz-meta-creator is plain metadata; its creator is the principal.
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"n", Metadata={"creator": "mallory"})
    assert s3.head_object(Bucket=bucket, Key="notes.txt")["Metadata"] == {"creator": "mallory"}
    with sqlite3.connect(Path(gateway.data_dir) / "catalog.sqlite3") as connection:
        rows = connection.execute(
            "SELECT key, creator FROM objects WHERE site = ? ORDER BY key", (bucket,)
        ).fetchall()
    assert rows == [
        ("builds/who-1.tar.gz", "root"),
        ("builds/who-2.tar.gz", "root"),
        ("builds/who-3.tar.gz", "root"),
        ("notes.txt", "root"),
    ]


@pytest.mark.parametrize(
    "key",
    ["builds/bad id.tar.gz", "builds/.hidden.tar.gz", "builds/v1.TAR.GZ", "builds/a/b.tgz"],
)
def test_keys_that_look_like_artifacts_must_be_valid_artifact_keys(
    s3: Any, bucket: str, key: str
) -> None:
    good = artifact()
    s3.put_object(Bucket=bucket, Key="builds/ok.tar.gz", Body=good)
    attempts: dict[str, Callable[[], Any]] = {
        "put": lambda: s3.put_object(Bucket=bucket, Key=key, Body=good),
        "multipart": lambda: s3.create_multipart_upload(Bucket=bucket, Key=key),
        "copy": lambda: s3.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": "builds/ok.tar.gz"}
        ),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ClientError) as excinfo:
            attempt()
        assert code(excinfo) == "InvalidArtifactKey", name
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "not a valid artifact key" in excinfo.value.response["Error"]["Message"]
    assert keys(s3, bucket) == ["builds/ok.tar.gz"]
    # Other names under builds/ stay ordinary objects.
    s3.put_object(Bucket=bucket, Key="builds/notes.txt", Body=b"n")


@pytest.fixture(scope="module")
def s3_backed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The gateway storing into S3 (moto_server): the policy layers on a remote backend."""
    directory = tmp_path_factory.mktemp("s3-backed")
    with running(start_moto, directory) as moto:
        boto3.client(
            "s3",
            endpoint_url=moto.endpoint,
            aws_access_key_id=moto.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=moto.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        ).create_bucket(Bucket="pw-artifacts")
        with running_gateway(
            directory / "data", "--backend", "s3://pw-artifacts/sites", env=moto.env
        ) as server:
            yield server


def test_artifacts_on_a_remote_backend(s3_backed: GatewayServer) -> None:
    s3 = make_s3_client(s3_backed)
    s3.create_bucket(Bucket="remote-site")
    good = artifact()
    s3.put_object(Bucket="remote-site", Key="builds/r1.tar.gz", Body=good)
    head = s3.head_object(Bucket="remote-site", Key="builds/r1.tar.gz", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(good).digest()).decode()
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(
            Bucket="remote-site",
            Key="builds/r1.tar.gz",
            Body=artifact([Member("../escape", b"x")]),
        )
    assert code(excinfo) == "UnsafeArchivePath"
    assert s3.get_object(Bucket="remote-site", Key="builds/r1.tar.gz")["Body"].read() == good
    big = artifact([Member(f"assets/{i}.bin", os.urandom(700_000)) for i in range(9)])
    upload = s3.create_multipart_upload(Bucket="remote-site", Key="builds/r2.tar.gz")
    parts = []
    for number, offset in enumerate(range(0, len(big), 5 * MIB), 1):
        result = s3.upload_part(
            Bucket="remote-site",
            Key="builds/r2.tar.gz",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=big[offset : offset + 5 * MIB],
        )
        parts.append({"PartNumber": number, "ETag": result["ETag"]})
    s3.complete_multipart_upload(
        Bucket="remote-site",
        Key="builds/r2.tar.gz",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert s3.get_object(Bucket="remote-site", Key="builds/r2.tar.gz")["Body"].read() == big
    assert keys(s3, "remote-site") == ["builds/r1.tar.gz", "builds/r2.tar.gz"]
    with sqlite3.connect(Path(s3_backed.data_dir) / "catalog.sqlite3") as connection:
        rows = connection.execute(
            "SELECT key, build_id, sha256 IS NOT NULL FROM objects WHERE site = 'remote-site'"
            " ORDER BY key"
        ).fetchall()
    assert rows == [("builds/r1.tar.gz", "r1", 1), ("builds/r2.tar.gz", "r2", 1)]
