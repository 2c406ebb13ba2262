"""rclone against the gateway on every storage backend (tests/e2e/conftest.py), through a
remote defined only by environment variables."""

from __future__ import annotations

import json
import os
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
    run_binary,
    tree_files,
    write_file,
    write_tree,
)
from tests.support.servers import GatewayServer, require_tool


@dataclass(frozen=True)
class Rclone:
    """``rclone ARGS...`` with the remote ``gw:`` defined in ``env``."""

    executable: str
    env: dict[str, str]

    def __call__(self, *args: str | Path, check: bool = True) -> tuple[int, str, str]:
        """Exit status, stdout and stderr (as text)."""
        completed = run([self.executable, *args], self.env, check=check)
        return completed.returncode, completed.stdout, completed.stderr

    def cat(self, remote: str, *, offset: int = 0, count: int = -1) -> bytes:
        """``rclone cat`` (a ranged GET when offset or count is given) as bytes."""
        extra = ["--offset", str(offset), "--count", str(count)] if offset or count >= 0 else []
        return run_binary([self.executable, "cat", *extra, remote], self.env).stdout


@pytest.fixture
def s3(backend_s3: Any) -> Any:
    """This module's ``s3`` (and so ``bucket``) is the gateway of each backend in turn."""
    return backend_s3


@pytest.fixture
def rclone(backend_gateway: GatewayServer, tmp_path: Path) -> Rclone:
    executable = require_tool("rclone")
    home = tmp_path / "rclone-home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "RCLONE_CONFIG": "/dev/null",
        "RCLONE_CONFIG_GW_TYPE": "s3",
        "RCLONE_CONFIG_GW_PROVIDER": "Other",
        "RCLONE_CONFIG_GW_ENDPOINT": backend_gateway.endpoint,
        "RCLONE_CONFIG_GW_ACCESS_KEY_ID": backend_gateway.access_key,
        "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY": backend_gateway.secret_key,
        "RCLONE_CONFIG_GW_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_GW_REGION": backend_gateway.region,
        # Files above 5 MiB go multipart, in 5 MiB parts.
        "RCLONE_CONFIG_GW_UPLOAD_CUTOFF": "5M",
        "RCLONE_CONFIG_GW_CHUNK_SIZE": "5M",
        # A gateway error must surface, not be retried away.
        "RCLONE_RETRIES": "1",
        "RCLONE_LOW_LEVEL_RETRIES": "1",
    }
    return Rclone(executable, env)


def _keys(s3: Any, bucket: str) -> dict[str, int]:
    listed = s3.list_objects_v2(Bucket=bucket)
    return {item["Key"]: item["Size"] for item in listed.get("Contents", [])}


def test_mkdir_copy_sync_check_delete(
    rclone: Rclone, s3: Any, bucket_name: Callable[[], str], tmp_path: Path
) -> None:
    bucket = bucket_name()
    rclone("mkdir", f"gw:{bucket}")
    s3.head_bucket(Bucket=bucket)

    source = tmp_path / "site"
    written = write_tree(source)
    rclone("copy", source, f"gw:{bucket}/site")
    assert _keys(s3, bucket) == {f"site/{rel}": len(body) for rel, body in written.items()}

    status, _, report = rclone("check", source, f"gw:{bucket}/site")
    assert status == 0
    assert "0 differences found" in report
    assert f"{len(written)} matching files" in report

    # Same size, different bytes: only the MD5 (the gateway's ETag) can tell.
    changed = bytearray(written["docs/readme.md"])
    changed[0] ^= 0xFF
    (source / "docs/readme.md").write_bytes(bytes(changed))
    status, _, report = rclone("check", source, f"gw:{bucket}/site", check=False)
    assert status == 1
    assert "1 differences found" in report
    assert "docs/readme.md" in report

    # sync: the changed file is re-sent, a new one added, a locally deleted one removed.
    (source / "css/site.css").unlink()
    new = write_file(source / "css/new.css", 777, seed=40)
    rclone("sync", source, f"gw:{bucket}/site")
    expected = {rel: body for rel, body in written.items() if rel != "css/site.css"}
    expected["docs/readme.md"] = bytes(changed)
    expected["css/new.css"] = new
    assert _keys(s3, bucket) == {f"site/{rel}": len(body) for rel, body in expected.items()}
    body = s3.get_object(Bucket=bucket, Key="site/docs/readme.md")["Body"].read()
    assert body == bytes(changed)
    status, _, report = rclone("check", source, f"gw:{bucket}/site")
    assert "0 differences found" in report

    back = tmp_path / "back"
    rclone("copy", f"gw:{bucket}/site", back)
    assert_same_tree(source, back)
    assert tree_files(back) == expected

    rclone("delete", f"gw:{bucket}/site", "--include", "*.html")
    assert set(_keys(s3, bucket)) == {
        f"site/{rel}" for rel in expected if not rel.endswith(".html")
    }
    rclone("delete", f"gw:{bucket}")
    assert _keys(s3, bucket) == {}
    rclone("rmdir", f"gw:{bucket}")
    with pytest.raises(s3.exceptions.ClientError) as missing:
        s3.head_bucket(Bucket=bucket)
    assert missing.value.response["Error"]["Code"] == "404"


def test_copyto_and_cat_multipart(rclone: Rclone, s3: Any, bucket: str, tmp_path: Path) -> None:
    large = write_file(tmp_path / "large.bin", 12 * MiB, seed=7)
    rclone("copyto", tmp_path / "large.bin", f"gw:{bucket}/media/large.bin")

    head = s3.head_object(Bucket=bucket, Key="media/large.bin")
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"') == multipart_etag(large, 5 * MiB)

    assert rclone.cat(f"gw:{bucket}/media/large.bin") == large
    assert (
        rclone.cat(f"gw:{bucket}/media/large.bin", offset=5 * MiB - 3, count=10)
        == (large[5 * MiB - 3 : 5 * MiB + 7])
    )
    rclone("copyto", f"gw:{bucket}/media/large.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == large

    _, md5, _ = rclone("md5sum", f"gw:{bucket}/media/large.bin")
    assert md5.split()[0] == md5_hex(large)


def test_lsjson_sizes_and_hashes_match_local_md5sum(
    rclone: Rclone, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "site"
    written = write_tree(source)
    write_file(source / "big/blob.bin", 6 * MiB, seed=8)
    rclone("copy", source, f"gw:{bucket}")

    _, listing, _ = rclone("lsjson", "-R", "--hash", "--files-only", f"gw:{bucket}")
    entries = {entry["Path"]: entry for entry in json.loads(listing)}
    assert set(entries) == {*written, "big/blob.bin"}
    for rel, entry in entries.items():
        assert entry["Size"] == (source / rel).stat().st_size
        assert entry["IsDir"] is False

    _, local_sums, _ = rclone("md5sum", source)
    expected = {line[34:]: line[:32] for line in local_sums.splitlines() if line}
    assert expected == {rel: md5_hex((source / rel).read_bytes()) for rel in entries}
    assert {rel: entry["Hashes"]["md5"] for rel, entry in entries.items()} == expected

    _, remote_sums, _ = rclone("md5sum", f"gw:{bucket}")
    assert {line[34:]: line[:32] for line in remote_sums.splitlines() if line} == expected
