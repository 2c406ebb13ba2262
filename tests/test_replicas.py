"""Several replicas for real: two gateway processes on one PostgreSQL catalog, one Redis and
one S3 backend (moto_server). What one writes the other lists and reads at once, a quota
holds across both, a user made through one authenticates on the other (one master key), and
killing one leaves the other serving."""

from __future__ import annotations

import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet

from tests.support.artifact_api import ApiClient, artifact_bytes, create_api_key
from tests.support.clients import make_s3_client
from tests.support.emulators import running, start_moto
from tests.support.postgres import fresh_schema
from tests.support.redis import redis_prefix, server_url
from tests.support.servers import GatewayServer, running_gateway

#: Needs real gateway processes and an emulator (see tests/conftest.py).
pytestmark = pytest.mark.server

SHARED = "shared"


def test_two_replicas_serve_one_store(tmp_path: Path) -> None:
    with (
        fresh_schema() as catalog_url,
        redis_prefix() as prefix,
        running(start_moto, tmp_path) as moto,
        ExitStack() as stack,
    ):
        boto3.client(
            "s3",
            endpoint_url=moto.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=moto.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=moto.env["AWS_SECRET_ACCESS_KEY"],
            region_name=moto.env["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=SHARED)
        env = {
            **moto.env,
            "PWG_CATALOG_URL": catalog_url,
            "PWG_REDIS_URL": server_url(),
            "PWG_REDIS_KEY_PREFIX": prefix,
            "PWG_MASTER_KEY": Fernet.generate_key().decode(),
            "PWG_SCRUB_INTERVAL_SECONDS": "0",
        }
        replicas = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(
                stack.enter_context(
                    running_gateway(
                        tmp_path / name / "data", "--backend", f"s3://{SHARED}/gw", env=env
                    )
                )
            )
        a, b = replicas
        s3_a, s3_b = make_s3_client(a), make_s3_client(b)

        # One site, with a quota, made through A.
        s3_a.create_bucket(Bucket="site")
        build = artifact_bytes("site/b1")
        with ApiClient(a, create_api_key(a)) as api_a:
            quota = len(build) + 3000
            response = api_a.put("/sites/site/policy", json={"overrides": {"quota_bytes": quota}})
            assert response.status_code == 200

        # Written through A, listed and read through B at once (catalog and backend shared).
        s3_a.put_object(Bucket="site", Key="builds/b1.tar.gz", Body=build)
        listed = s3_b.list_objects_v2(Bucket="site")["Contents"]
        assert [o["Key"] for o in listed] == ["builds/b1.tar.gz"]
        assert s3_b.get_object(Bucket="site", Key="builds/b1.tar.gz")["Body"].read() == build
        with ApiClient(b, create_api_key(b)) as api_b:
            artifacts = api_b.get("/sites/site/artifacts").json()["items"]
            assert [item["build_id"] for item in artifacts] == ["b1"]

        # The quota holds across both: 2,000 bytes through A fit, 2,000 more through B do not.
        s3_a.put_object(Bucket="site", Key="a.bin", Body=b"a" * 2000)
        with pytest.raises(ClientError) as caught:
            s3_b.put_object(Bucket="site", Key="b.bin", Body=b"b" * 2000)
        assert caught.value.response["Error"]["Code"] == "QuotaExceeded"

        # A Complete repeated through B after it succeeded through A (an SDK retrying a lost
        # reply, its retry landing on the other replica) answers as the first did.
        upload_id = s3_a.create_multipart_upload(Bucket="site", Key="mp.bin")["UploadId"]
        part = s3_a.upload_part(
            Bucket="site", Key="mp.bin", UploadId=upload_id, PartNumber=1, Body=b"m" * 100
        )
        complete = {
            "Bucket": "site",
            "Key": "mp.bin",
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        }
        first = s3_a.complete_multipart_upload(**complete)
        assert s3_b.complete_multipart_upload(**complete)["ETag"] == first["ETag"]
        s3_b.delete_object(Bucket="site", Key="mp.bin")

        # A user made through A (its secret sealed with the shared master key) works on B.
        iam_a = boto3.client(
            "iam",
            endpoint_url=a.endpoint,
            aws_access_key_id=a.access_key,
            aws_secret_access_key=a.secret_key,
            region_name=a.region,
        )
        iam_a.create_user(UserName="reader")
        key = iam_a.create_access_key(UserName="reader")["AccessKey"]
        _grant(a, "site", "reader", "reader")
        reader_b = boto3.client(
            "s3",
            endpoint_url=b.endpoint,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=b.region,
        )
        assert reader_b.get_object(Bucket="site", Key="a.bin")["Body"].read() == b"a" * 2000

        # Killed without warning, A leaves B serving reads and writes.
        a.stop(signal.SIGKILL)
        s3_b.delete_object(Bucket="site", Key="a.bin")
        s3_b.put_object(Bucket="site", Key="after.txt", Body=b"still here")
        assert s3_b.get_object(Bucket="site", Key="after.txt")["Body"].read() == b"still here"
        keys = sorted(o["Key"] for o in s3_b.list_objects_v2(Bucket="site")["Contents"])
        assert keys == ["after.txt", "builds/b1.tar.gz"]


def _grant(server: GatewayServer, site: str, user: str, role: str) -> None:
    """``pagewright-gateway sites grant`` on ``server``'s catalog."""
    command = [sys.executable, "-m", "commands.cli", "sites", "grant", site, user, role]
    done = subprocess.run(
        [*command, "--data-dir", str(server.data_dir)],
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
