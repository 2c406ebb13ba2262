"""Versioning against a real gateway process on the filesystem default, with the aws cli
(``aws s3api put-bucket-versioning``, ``list-object-versions``, ``get-object --version-id``,
``delete-object``) and boto3: versions and delete markers made by one client are seen by the
other and survive a restart of the process."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.e2e.test_tagging_cli import aws_cli
from tests.support.clients import make_s3_client
from tests.support.servers import running_gateway


def test_versioning_with_the_aws_cli_and_boto3(tmp_path: Path) -> None:
    bucket = f"versions-{uuid.uuid4().hex[:12]}"
    page = tmp_path / "index.html"
    with running_gateway(tmp_path / "data") as gateway:
        aws = aws_cli(gateway, tmp_path)
        s3 = make_s3_client(gateway)
        s3.create_bucket(Bucket=bucket)
        aws("s3api", "put-bucket-versioning", "--bucket", bucket,
            "--versioning-configuration", "Status=Enabled")  # fmt: skip
        assert aws("s3api", "get-bucket-versioning", "--bucket", bucket)["Status"] == "Enabled"
        ids = []
        for text in (b"<h1>one</h1>", b"<h1>two</h1>"):
            page.write_bytes(text)
            put = aws("s3api", "put-object", "--bucket", bucket, "--key", "index.html",
                      "--body", page)  # fmt: skip
            ids.append(put["VersionId"])
        listed = aws("s3api", "list-object-versions", "--bucket", bucket)
        assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [
            (ids[1], True),
            (ids[0], False),
        ]
        old = tmp_path / "old.html"
        aws("s3api", "get-object", "--bucket", bucket, "--key", "index.html",
            "--version-id", ids[0], old)  # fmt: skip
        assert old.read_bytes() == b"<h1>one</h1>"
        marker = aws("s3api", "delete-object", "--bucket", bucket, "--key", "index.html")
        assert marker["DeleteMarker"] is True
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    with running_gateway(tmp_path / "data") as gateway:
        aws = aws_cli(gateway, tmp_path)
        s3 = make_s3_client(gateway)
        versions = s3.list_object_versions(Bucket=bucket)
        assert [m["VersionId"] for m in versions["DeleteMarkers"]] == [marker["VersionId"]]
        assert [v["VersionId"] for v in versions["Versions"]] == [ids[1], ids[0]]
        aws("s3api", "delete-object", "--bucket", bucket, "--key", "index.html",
            "--version-id", marker["VersionId"])  # fmt: skip
        got = s3.get_object(Bucket=bucket, Key="index.html")
        assert (got["VersionId"], got["Body"].read()) == (ids[1], b"<h1>two</h1>")
