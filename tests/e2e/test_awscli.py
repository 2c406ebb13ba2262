"""awscli v1 (``aws s3`` and ``aws s3api``) run as a subprocess against the gateway, on every
storage backend (tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.e2e.helpers import (
    MiB,
    assert_same_tree,
    data,
    md5_hex,
    multipart_etag,
    run,
    tree_files,
    write_file,
    write_tree,
)
from tests.support.servers import GatewayServer, require_tool

#: ``aws s3 ls`` object line: date, time, size, key (keys may contain spaces).
_LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+) (.+)$")


class Aws(Protocol):
    def __call__(self, *args: str | Path, check: bool = True) -> str: ...


def _aws_json(aws: Aws, *args: str | Path) -> Any:
    return json.loads(aws(*args, "--output", "json"))


@pytest.fixture
def s3(backend_s3: Any) -> Any:
    """This module's ``s3`` (and so ``bucket``) is the gateway of each backend in turn."""
    return backend_s3


@pytest.fixture
def aws(backend_gateway: GatewayServer, tmp_path: Path) -> Aws:
    """``aws ARGS...`` against the gateway; returns stdout, or stdout+stderr with check=False."""
    executable = require_tool("aws")
    home = tmp_path / "aws-home"
    home.mkdir()
    config = home / "config"
    config.write_text(
        "[default]\n"
        f"region = {backend_gateway.region}\n"
        "s3 =\n"
        "    addressing_style = path\n"
        "    multipart_threshold = 5MB\n"
        "    multipart_chunksize = 5MB\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": backend_gateway.access_key,
        "AWS_SECRET_ACCESS_KEY": backend_gateway.secret_key,
        "AWS_ENDPOINT_URL": backend_gateway.endpoint,
        "AWS_DEFAULT_REGION": backend_gateway.region,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }

    def invoke(*args: str | Path, check: bool = True) -> str:
        completed = run([executable, *args], env, check=check)
        if check:
            return completed.stdout
        return f"exit={completed.returncode}\n{completed.stdout}\n{completed.stderr}"

    return invoke


def _ls_keys(output: str) -> dict[str, int]:
    """Key -> size from ``aws s3 ls`` output (object lines only)."""
    found: dict[str, int] = {}
    for line in output.splitlines():
        match = _LS_LINE.match(line)
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


def test_mb_cp_small_and_multipart_rb(
    aws: Aws, s3: Any, bucket_name: Callable[[], str], tmp_path: Path
) -> None:
    name = bucket_name()
    assert f"make_bucket: {name}" in aws("s3", "mb", f"s3://{name}")
    assert name in aws("s3", "ls").split()

    small = write_file(tmp_path / "up" / "small.bin", 1234, seed=1)
    large = write_file(tmp_path / "up" / "large.bin", 12 * MiB, seed=2)
    aws("s3", "cp", tmp_path / "up" / "small.bin", f"s3://{name}/small.bin")
    aws("s3", "cp", tmp_path / "up" / "large.bin", f"s3://{name}/dir/large.bin")

    # 5 MiB chunks: 5 + 5 + 2 MiB, so the gateway assembled three parts.
    head = s3.head_object(Bucket=name, Key="dir/large.bin")
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"') == multipart_etag(large, 5 * MiB)
    assert s3.head_object(Bucket=name, Key="small.bin")["ETag"].strip('"') == md5_hex(small)

    aws("s3", "cp", f"s3://{name}/small.bin", tmp_path / "down" / "small.bin")
    aws("s3", "cp", f"s3://{name}/dir/large.bin", tmp_path / "down" / "large.bin")
    assert (tmp_path / "down" / "small.bin").read_bytes() == small
    assert (tmp_path / "down" / "large.bin").read_bytes() == large

    refused = aws("s3", "rb", f"s3://{name}", check=False)
    assert "exit=0" not in refused
    assert "BucketNotEmpty" in refused

    assert f"delete: s3://{name}/small.bin" in aws("s3", "rm", f"s3://{name}/small.bin")
    s3.delete_object(Bucket=name, Key="dir/large.bin")
    assert f"remove_bucket: {name}" in aws("s3", "rb", f"s3://{name}")
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket=name)


def test_sync_tree_up_and_down_then_ls_and_rm(
    aws: Aws, s3: Any, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "site"
    written = write_tree(source)
    aws("s3", "sync", source, f"s3://{bucket}/site")

    listed = _ls_keys(aws("s3", "ls", "--recursive", f"s3://{bucket}"))
    assert listed == {f"site/{rel}": len(body) for rel, body in written.items()}

    # A prefix without a trailing slash lists the matching common prefix only.
    top = aws("s3", "ls", f"s3://{bucket}/site/")
    assert _ls_keys(top) == {"index.html": 1200, "empty.txt": 0}
    assert sorted(re.findall(r"PRE (\S+/)$", top, re.MULTILINE)) == ["css/", "docs/", "img/"]
    docs = aws("s3", "ls", "--recursive", f"s3://{bucket}/site/docs/a")
    assert _ls_keys(docs) == {"site/docs/a/b/deep.txt": 10, "site/docs/a/page.html": 4096}

    target = tmp_path / "copy"
    aws("s3", "sync", f"s3://{bucket}/site", target)
    assert_same_tree(source, target)
    assert tree_files(target) == written

    # A second sync has nothing to do.
    assert aws("s3", "sync", source, f"s3://{bucket}/site").strip() == ""

    removed = aws("s3", "rm", "--recursive", f"s3://{bucket}/site/docs")
    assert removed.count("delete: ") == 3
    listed = s3.list_objects_v2(Bucket=bucket)
    assert {item["Key"] for item in listed["Contents"]} == {
        f"site/{rel}" for rel in written if not rel.startswith("docs/")
    }
    aws("s3", "rm", "--recursive", f"s3://{bucket}")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_s3api_put_metadata_head_and_ranged_get(aws: Aws, bucket: str, tmp_path: Path) -> None:
    body = write_file(tmp_path / "page.html", 5000, seed=3)
    put = _aws_json(
        aws,
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "pages/page.html",
        "--body",
        tmp_path / "page.html",
        "--content-type",
        "text/html",
        "--metadata",
        "build=42,author=ci",
    )
    assert put["ETag"].strip('"') == md5_hex(body)

    head = _aws_json(aws, "s3api", "head-object", "--bucket", bucket, "--key", "pages/page.html")
    assert head["Metadata"] == {"build": "42", "author": "ci"}
    assert head["ContentType"] == "text/html"
    assert head["ContentLength"] == 5000
    assert head["ETag"] == put["ETag"]

    outfile = tmp_path / "range.bin"
    ranged = _aws_json(
        aws,
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "pages/page.html",
        "--range",
        "bytes=100-1099",
        outfile,
    )
    assert ranged["ContentRange"] == "bytes 100-1099/5000"
    assert ranged["ContentLength"] == 1000
    assert outfile.read_bytes() == body[100:1100]

    missing = aws("s3api", "get-object", "--bucket", bucket, "--key", "nope", outfile, check=False)
    assert "NoSuchKey" in missing


def test_s3api_list_objects_v2_paging(aws: Aws, bucket: str, s3: Any) -> None:
    keys = [f"list/{i:02d}.txt" for i in range(7)]
    for index, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=data(10 + index, seed=index))
    s3.put_object(Bucket=bucket, Key="other/x", Body=b"x")

    def page(*extra: str) -> Any:
        return _aws_json(
            aws, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "list/", *extra
        )

    # Four items from pages of three: the CLI's token resumes in the middle of a page.
    first = page("--max-items", "4", "--page-size", "3")
    assert [item["Key"] for item in first["Contents"]] == keys[:4]
    assert [item["Size"] for item in first["Contents"]] == [10, 11, 12, 13]
    rest = page("--max-items", "4", "--page-size", "3", "--starting-token", first["NextToken"])
    assert [item["Key"] for item in rest["Contents"]] == keys[4:]
    assert "NextToken" not in rest

    # Plain pagination by the CLI with tiny pages still yields every key exactly once.
    everything = _aws_json(aws, "s3api", "list-objects-v2", "--bucket", bucket, "--page-size", "2")
    assert [item["Key"] for item in everything["Contents"]] == [*keys, "other/x"]


def test_s3api_copy_and_delete_objects(aws: Aws, bucket: str, s3: Any, tmp_path: Path) -> None:
    body = data(3000, seed=4)
    s3.put_object(Bucket=bucket, Key="src/a.txt", Body=body, Metadata={"k": "v"})
    copied = _aws_json(
        aws,
        "s3api",
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        "dst/a copy.txt",
        "--copy-source",
        f"{bucket}/src/a.txt",
    )
    assert copied["CopyObjectResult"]["ETag"].strip('"') == md5_hex(body)
    got = s3.get_object(Bucket=bucket, Key="dst/a copy.txt")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"k": "v"}

    replaced = _aws_json(
        aws, "s3api", "copy-object", "--bucket", bucket, "--key", "dst/replaced.txt",
        "--copy-source", f"{bucket}/src/a.txt", "--metadata-directive", "REPLACE",
        "--metadata", "k=new", "--content-type", "text/plain",
    )  # fmt: skip
    assert replaced["CopyObjectResult"]["ETag"].strip('"') == md5_hex(body)
    head = s3.head_object(Bucket=bucket, Key="dst/replaced.txt")
    assert head["Metadata"] == {"k": "new"}
    assert head["ContentType"] == "text/plain"

    request = tmp_path / "delete.json"
    request.write_text(
        json.dumps(
            {
                "Objects": [
                    {"Key": "src/a.txt"},
                    {"Key": "dst/a copy.txt"},
                    {"Key": "never/existed"},
                ],
                "Quiet": False,
            }
        )
    )
    deleted = _aws_json(
        aws, "s3api", "delete-objects", "--bucket", bucket, "--delete", f"file://{request}"
    )
    # Deleting a missing key succeeds in S3.
    assert sorted(item["Key"] for item in deleted["Deleted"]) == [
        "dst/a copy.txt",
        "never/existed",
        "src/a.txt",
    ]
    assert deleted.get("Errors", []) == []
    remaining = s3.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in remaining["Contents"]] == ["dst/replaced.txt"]


def test_s3api_multipart_upload(aws: Aws, bucket: str, s3: Any, tmp_path: Path) -> None:
    first = write_file(tmp_path / "part1", 5 * MiB, seed=5)
    second = write_file(tmp_path / "part2", 1000, seed=6)
    created = _aws_json(
        aws, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", "big/object.bin"
    )
    upload_id = created["UploadId"]
    assert created["Key"] == "big/object.bin"

    parts = []
    for number, path in ((1, tmp_path / "part1"), (2, tmp_path / "part2")):
        uploaded = _aws_json(
            aws, "s3api", "upload-part", "--bucket", bucket, "--key", "big/object.bin",
            "--upload-id", upload_id, "--part-number", str(number), "--body", path,
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": uploaded["ETag"]})
    assert [p["ETag"].strip('"') for p in parts] == [md5_hex(first), md5_hex(second)]

    listed = s3.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MiB), (2, 1000)]

    layout = tmp_path / "parts.json"
    layout.write_text(json.dumps({"Parts": parts}))
    completed = _aws_json(
        aws, "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "big/object.bin",
        "--upload-id", upload_id, "--multipart-upload", f"file://{layout}",
    )  # fmt: skip
    assert completed["ETag"].strip('"') == multipart_etag(first + second, 5 * MiB)
    assert completed["Key"] == "big/object.bin"

    got = s3.get_object(Bucket=bucket, Key="big/object.bin")
    assert got["Body"].read() == first + second
    assert got["ETag"] == completed["ETag"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_sse_s3_cp_small_and_multipart(aws: Aws, s3: Any, bucket: str, tmp_path: Path) -> None:
    """``aws s3 cp --sse AES256`` up (single and multipart) and down, on every backend: the
    gateway encrypts, S3's ETags and headers come back, the bytes round-trip."""
    small = write_file(tmp_path / "up" / "small.bin", 1234, seed=5)
    large = write_file(tmp_path / "up" / "large.bin", 12 * MiB, seed=6)
    aws("s3", "cp", tmp_path / "up" / "small.bin", f"s3://{bucket}/small.bin", "--sse", "AES256")
    aws("s3", "cp", tmp_path / "up" / "large.bin", f"s3://{bucket}/large.bin", "--sse", "AES256")
    head = _aws_json(aws, "s3api", "head-object", "--bucket", bucket, "--key", "large.bin")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"') == multipart_etag(large, 5 * MiB)
    assert s3.head_object(Bucket=bucket, Key="small.bin")["ETag"].strip('"') == md5_hex(small)
    aws("s3", "cp", f"s3://{bucket}/large.bin", tmp_path / "down" / "large.bin")
    aws("s3", "cp", f"s3://{bucket}/small.bin", tmp_path / "down" / "small.bin")
    assert (tmp_path / "down" / "large.bin").read_bytes() == large
    assert (tmp_path / "down" / "small.bin").read_bytes() == small
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert {o["Key"]: o["Size"] for o in listed} == {"small.bin": 1234, "large.bin": 12 * MiB}
    refused = aws(
        "s3",
        "cp",
        tmp_path / "up" / "small.bin",
        f"s3://{bucket}/x",
        "--sse",
        "aws:kms",
        check=False,
    )
    assert "KMS.NotFoundException" in refused
