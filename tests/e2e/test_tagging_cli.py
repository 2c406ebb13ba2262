"""Tagging against a real gateway process on the filesystem default, with the aws cli
(``aws s3api ...-tagging``, ``aws s3 cp --metadata-directive``) and boto3: tags set by one
client are read by the other, survive a restart of the process, and go with their object."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.helpers import run
from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer, require_tool, running_gateway


def aws_cli(process_gateway: GatewayServer, tmp_path: Path) -> Any:
    """``aws ARGS... --output json`` against the gateway: the parsed output, or with
    ``check=False`` the completed process."""
    executable = require_tool("aws")
    home = tmp_path / "aws-home"
    home.mkdir(exist_ok=True)
    config = home / "config"
    config.write_text(
        f"[default]\nregion = {process_gateway.region}\ns3 =\n    addressing_style = path\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": process_gateway.access_key,
        "AWS_SECRET_ACCESS_KEY": process_gateway.secret_key,
        "AWS_ENDPOINT_URL": process_gateway.endpoint,
        "AWS_DEFAULT_REGION": process_gateway.region,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }

    def invoke(*args: str | Path, check: bool = True) -> Any:
        completed = run([executable, *args, "--output", "json"], env, check=check)
        if not check:
            return completed
        return json.loads(completed.stdout) if completed.stdout.strip() else None

    return invoke


def test_tagging_with_the_aws_cli_and_boto3(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "data") as first:
        bucket, file, got = _tag_everything(first, tmp_path)
    with running_gateway(tmp_path / "data") as second:
        _after_restart(second, tmp_path, bucket, file, got)


def _tag_everything(
    process_gateway: GatewayServer, tmp_path: Path
) -> tuple[str, Path, list[dict[str, str]]]:
    aws = aws_cli(process_gateway, tmp_path)
    s3 = make_s3_client(process_gateway)
    bucket = f"tags-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    file = tmp_path / "index.html"
    file.write_bytes(b"<h1>tagged</h1>")

    # Tags on upload (the cli's --tagging is the x-amz-tagging header), read with boto3.
    aws("s3api", "put-object", "--bucket", bucket, "--key", "index.html", "--body", file,
        "--tagging", "env=prod&team=w%C3%A9b%20ops")  # fmt: skip
    got = s3.get_object_tagging(Bucket=bucket, Key="index.html")["TagSet"]
    assert {t["Key"]: t["Value"] for t in got} == {"env": "prod", "team": "wéb ops"}
    assert (
        s3.head_object(Bucket=bucket, Key="index.html")["ResponseMetadata"]["HTTPHeaders"][
            "x-amz-tagging-count"
        ]
        == "2"
    )

    # Set with boto3, read with the cli; set with the cli, read with boto3.
    s3.put_object_tagging(
        Bucket=bucket, Key="index.html", Tagging={"TagSet": [{"Key": "stage", "Value": "1"}]}
    )
    read = aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "index.html")
    assert read["TagSet"] == [{"Key": "stage", "Value": "1"}]
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "index.html",
        "--tagging", "TagSet=[{Key=release,Value=2026.12}]")  # fmt: skip
    got = s3.get_object_tagging(Bucket=bucket, Key="index.html")["TagSet"]
    assert got == [{"Key": "release", "Value": "2026.12"}]
    assert aws("s3api", "get-object", "--bucket", bucket, "--key", "index.html",
               tmp_path / "out.html")["TagCount"] == 1  # fmt: skip

    # Copy: the tags come along unless replaced.
    aws("s3api", "copy-object", "--bucket", bucket, "--key", "copy.html",
        "--copy-source", f"{bucket}/index.html")  # fmt: skip
    assert s3.get_object_tagging(Bucket=bucket, Key="copy.html")["TagSet"] == got
    aws("s3api", "copy-object", "--bucket", bucket, "--key", "copy.html",
        "--copy-source", f"{bucket}/index.html", "--tagging-directive", "REPLACE",
        "--tagging", "copied=yes")  # fmt: skip
    assert s3.get_object_tagging(Bucket=bucket, Key="copy.html")["TagSet"] == [
        {"Key": "copied", "Value": "yes"}
    ]

    # Errors are S3's.
    bad = aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "index.html",
              "--tagging", "TagSet=[{Key=aws:x,Value=1}]", check=False)  # fmt: skip
    assert bad.returncode != 0
    assert "InvalidTag" in bad.stderr

    # Bucket tags.
    aws("s3api", "put-bucket-tagging", "--bucket", bucket,
        "--tagging", "TagSet=[{Key=cost,Value=docs}]")  # fmt: skip
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "cost", "Value": "docs"}]
    aws("s3api", "delete-bucket-tagging", "--bucket", bucket)
    missing = aws("s3api", "get-bucket-tagging", "--bucket", bucket, check=False)
    assert missing.returncode != 0
    assert "NoSuchTagSet" in missing.stderr
    aws("s3api", "put-bucket-tagging", "--bucket", bucket,
        "--tagging", "TagSet=[{Key=cost,Value=site}]")  # fmt: skip

    # A multipart upload (the cli's high-level cp of a large file) gets no tags; one made with
    # boto3 and x-amz-tagging gets its tags at completion.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin", Tagging="size=big")
    part = s3.upload_part(
        Bucket=bucket, Key="big.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"b" * 100
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    read = aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "big.bin")
    assert read["TagSet"] == [{"Key": "size", "Value": "big"}]

    return bucket, file, got


def _after_restart(
    process_gateway: GatewayServer, tmp_path: Path, bucket: str, file: Path, got: Any
) -> None:
    """Tags live in the catalog: they survive a restart of the process."""
    aws = aws_cli(process_gateway, tmp_path)
    s3 = make_s3_client(process_gateway)
    assert s3.get_object_tagging(Bucket=bucket, Key="index.html")["TagSet"] == got
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "cost", "Value": "site"}]

    # Deleting the object (with the cli) deletes its tags.
    aws("s3api", "delete-object", "--bucket", bucket, "--key", "index.html")
    s3.put_object(Bucket=bucket, Key="index.html", Body=file.read_bytes())
    assert s3.get_object_tagging(Bucket=bucket, Key="index.html")["TagSet"] == []
    aws("s3api", "delete-object-tagging", "--bucket", bucket, "--key", "copy.html")
    assert s3.get_object_tagging(Bucket=bucket, Key="copy.html")["TagSet"] == []
