"""Tags across replicas: two gateway processes on one PostgreSQL catalog and one S3 backend
(moto_server) see the same tags at once, since the catalog is their only home."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.fernet import Fernet

from tests.support.clients import make_s3_client
from tests.support.emulators import running, start_moto
from tests.support.postgres import fresh_schema
from tests.support.servers import running_gateway

#: Needs real gateway processes and an emulator (see tests/conftest.py).
pytestmark = pytest.mark.server

SHARED = "shared"


def _tags(s3: Any, bucket: str, key: str) -> dict[str, str]:
    reply = s3.get_object_tagging(Bucket=bucket, Key=key)
    return {t["Key"]: t["Value"] for t in reply["TagSet"]}


def test_two_replicas_share_tags(tmp_path: Path) -> None:
    with (
        fresh_schema() as catalog_url,
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
        a, b = (make_s3_client(r) for r in replicas)
        a.create_bucket(Bucket="site")
        a.put_object(Bucket="site", Key="index.html", Body=b"<h1>", Tagging="env=prod")
        assert _tags(b, "site", "index.html") == {"env": "prod"}
        assert (
            b.head_object(Bucket="site", Key="index.html")["ResponseMetadata"]["HTTPHeaders"][
                "x-amz-tagging-count"
            ]
            == "1"
        )
        b.put_object_tagging(
            Bucket="site",
            Key="index.html",
            Tagging={"TagSet": [{"Key": "stage", "Value": "2"}]},
        )
        assert _tags(a, "site", "index.html") == {"stage": "2"}
        # An upload started on one replica and completed on the other gets its tags.
        upload = a.create_multipart_upload(Bucket="site", Key="big", Tagging="parts=1")
        part = b.upload_part(
            Bucket="site", Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 10
        )
        b.complete_multipart_upload(
            Bucket="site",
            Key="big",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        assert _tags(a, "site", "big") == {"parts": "1"}
        # Overwritten through B (same bytes): A sees the new, untagged object.
        b.put_object(Bucket="site", Key="index.html", Body=b"<h1>")
        assert _tags(a, "site", "index.html") == {}
        b.put_bucket_tagging(Bucket="site", Tagging={"TagSet": [{"Key": "cost", "Value": "x"}]})
        assert a.get_bucket_tagging(Bucket="site")["TagSet"] == [{"Key": "cost", "Value": "x"}]
