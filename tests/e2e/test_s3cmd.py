"""s3cmd against the gateway, configured by a config file (path-style, SigV4, plain HTTP)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    MiB,
    assert_same_tree,
    md5_hex,
    multipart_etag,
    run,
    write_file,
    write_tree,
)
from tests.support.servers import GatewayServer, require_tool

#: ``s3cmd ls`` object line: date, time, size, (storage class,) URI.
_LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d +(\d+) +(?:\S+ +)?(s3://.+)$")


@dataclass(frozen=True)
class S3cmd:
    executable: str
    config: Path
    env: dict[str, str]

    def __call__(self, *args: str | Path, check: bool = True) -> tuple[int, str]:
        """Exit status and stdout+stderr."""
        completed = run(
            [self.executable, "-c", self.config, "--no-progress", *args], self.env, check=check
        )
        return completed.returncode, completed.stdout + completed.stderr


@pytest.fixture
def s3cmd(gateway: GatewayServer, tmp_path: Path) -> S3cmd:
    executable = require_tool("s3cmd")
    home = tmp_path / "s3cmd-home"
    home.mkdir()
    host = f"127.0.0.1:{gateway.port}"
    config = home / "s3cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {gateway.access_key}\n"
        f"secret_key = {gateway.secret_key}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "multipart_chunk_size_mb = 5\n"
        f"bucket_location = {gateway.region}\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    return S3cmd(executable, config, env)


def _ls(output: str) -> dict[str, int]:
    """URI -> size from ``s3cmd ls``/``la`` output (object lines only)."""
    found: dict[str, int] = {}
    for line in output.splitlines():
        match = _LS_LINE.match(line.strip())
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


def test_mb_put_get_ls_info_del_rb(
    s3cmd: S3cmd, s3: Any, bucket_name: Callable[[], str], tmp_path: Path
) -> None:
    bucket = bucket_name()
    _, out = s3cmd("mb", f"s3://{bucket}")
    assert f"Bucket 's3://{bucket}/' created" in out
    s3.head_bucket(Bucket=bucket)

    small = write_file(tmp_path / "up" / "small.txt", 2500, seed=10)
    large = write_file(tmp_path / "up" / "large.bin", 12 * MiB, seed=11)
    s3cmd("put", tmp_path / "up" / "small.txt", f"s3://{bucket}/docs/small.txt")
    s3cmd("put", tmp_path / "up" / "large.bin", f"s3://{bucket}/large.bin")
    head = s3.head_object(Bucket=bucket, Key="large.bin")
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"') == multipart_etag(large, 5 * MiB)

    s3cmd("get", f"s3://{bucket}/docs/small.txt", tmp_path / "down" / "small.txt")
    s3cmd("get", f"s3://{bucket}/large.bin", tmp_path / "down" / "large.bin")
    assert (tmp_path / "down" / "small.txt").read_bytes() == small
    assert (tmp_path / "down" / "large.bin").read_bytes() == large

    _, top = s3cmd("ls", f"s3://{bucket}")
    assert _ls(top) == {f"s3://{bucket}/large.bin": 12 * MiB}
    assert re.search(rf"DIR +s3://{bucket}/docs/$", top, re.MULTILINE)
    _, recursive = s3cmd("ls", "--recursive", f"s3://{bucket}")
    assert _ls(recursive) == {
        f"s3://{bucket}/large.bin": 12 * MiB,
        f"s3://{bucket}/docs/small.txt": 2500,
    }
    _, buckets = s3cmd("ls")
    assert f"s3://{bucket}" in buckets.split()
    _, everything = s3cmd("la")
    listed = _ls(everything)
    assert listed[f"s3://{bucket}/large.bin"] == 12 * MiB

    _, info = s3cmd("info", f"s3://{bucket}/docs/small.txt")
    assert re.search(r"File size: 2500$", info, re.MULTILINE)
    assert re.search(rf"MD5 sum: +{md5_hex(small)}$", info, re.MULTILINE)
    assert re.search(r"ACL: +.+: FULL_CONTROL$", info, re.MULTILINE)
    _, info = s3cmd("info", f"s3://{bucket}/large.bin")
    assert re.search(rf"MD5 sum: +{md5_hex(large)}$", info, re.MULTILINE)
    _, info = s3cmd("info", f"s3://{bucket}")
    assert f"s3://{bucket}/ (bucket):" in info
    assert re.search(r"ACL: +.+: FULL_CONTROL$", info, re.MULTILINE)

    status, out = s3cmd("rb", f"s3://{bucket}", check=False)
    assert status != 0
    assert "BucketNotEmpty" in out

    _, out = s3cmd("del", f"s3://{bucket}/docs/small.txt")
    assert f"delete: 's3://{bucket}/docs/small.txt'" in out
    s3cmd("del", f"s3://{bucket}/large.bin")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    _, out = s3cmd("rb", f"s3://{bucket}")
    assert f"Bucket 's3://{bucket}/' removed" in out
    status, out = s3cmd("ls", f"s3://{bucket}", check=False)
    assert status != 0
    assert "NoSuchBucket" in out


def test_sync_up_and_back(s3cmd: S3cmd, s3: Any, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "site"
    written = write_tree(source)
    s3cmd("sync", f"{source}/", f"s3://{bucket}/site/")
    listed = s3.list_objects_v2(Bucket=bucket)
    assert {item["Key"]: item["Size"] for item in listed["Contents"]} == {
        f"site/{rel}": len(body) for rel, body in written.items()
    }

    # Nothing changed: a second sync uploads nothing.
    _, out = s3cmd("sync", f"{source}/", f"s3://{bucket}/site/")
    assert "upload:" not in out

    (source / "img/logo one.png").unlink()
    (source / "img").rmdir()
    write_file(source / "css/extra.css", 321, seed=12)
    _, out = s3cmd("sync", "--delete-removed", f"{source}/", f"s3://{bucket}/site/")
    assert "css/extra.css" in out
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {
        f"site/{rel}" for rel in [*written, "css/extra.css"] if rel != "img/logo one.png"
    }

    back = tmp_path / "back"
    s3cmd("sync", f"s3://{bucket}/site/", f"{back}/")
    assert_same_tree(source, back)

    _, out = s3cmd("del", "--recursive", "--force", f"s3://{bucket}/site/docs/")
    assert out.count("delete: ") == 3
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert not any(key.startswith("site/docs/") for key in keys)
