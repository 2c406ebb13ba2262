"""Keys XML 1.0 cannot carry, round-tripped by real clients (aws cli, minio, rclone) through
the gateway: every reply they parse is well-formed, and the keys come back exactly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from minio import Minio

from tests.e2e.helpers import run
from tests.support.servers import GatewayServer, require_tool

ODD = "odd/ctl\x01\x07\x1f\ufffe end.txt"
PLAIN = "odd/plain.txt"


@pytest.fixture
def stored(s3: Any, bucket: str) -> str:
    for key in (ODD, PLAIN):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_awscli(gateway: GatewayServer, stored: str, tmp_path: Path) -> None:
    """aws s3api lists them (it asks for encoding-type=url and decodes) and starts a
    multipart upload of one: the reply S3 itself sends for it no XML parser reads."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": gateway.access_key,
        "AWS_SECRET_ACCESS_KEY": gateway.secret_key,
        "AWS_ENDPOINT_URL": gateway.endpoint,
        "AWS_DEFAULT_REGION": gateway.region,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    aws = require_tool("aws")
    listed = json.loads(run([aws, "s3api", "list-objects-v2", "--bucket", stored], env).stdout)
    assert sorted(item["Key"] for item in listed["Contents"]) == sorted([ODD, PLAIN])
    created = json.loads(
        run([aws, "s3api", "create-multipart-upload", "--bucket", stored, "--key", ODD], env).stdout
    )
    assert created["UploadId"]
    uploads = json.loads(
        run(
            [aws, "s3api", "list-multipart-uploads", "--bucket", stored, "--encoding-type", "url"],
            env,
        ).stdout
    )
    assert uploads["Uploads"][0]["UploadId"] == created["UploadId"]
    run(
        [
            aws,
            "s3api",
            "abort-multipart-upload",
            "--bucket",
            stored,
            "--key",
            ODD,
            "--upload-id",
            created["UploadId"],
        ],
        env,
    )
    target = tmp_path / "got"
    run([aws, "s3api", "get-object", "--bucket", stored, "--key", ODD, str(target)], env)
    assert target.read_bytes() == ODD.encode()


def test_minio(gateway: GatewayServer, stored: str) -> None:
    client = Minio(
        f"127.0.0.1:{gateway.port}",
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        secure=False,
        region=gateway.region,
    )
    names = [obj.object_name for obj in client.list_objects(stored, prefix="odd/")]
    assert sorted(str(name) for name in names) == sorted([ODD, PLAIN])
    response = client.get_object(stored, ODD)
    try:
        assert response.read() == ODD.encode()
    finally:
        response.close()
        response.release_conn()


def _rclone_env(gateway: GatewayServer, home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "RCLONE_CONFIG": "/dev/null",
        "RCLONE_CONFIG_GW_TYPE": "s3",
        "RCLONE_CONFIG_GW_PROVIDER": "Other",
        "RCLONE_CONFIG_GW_ENDPOINT": gateway.endpoint,
        "RCLONE_CONFIG_GW_ACCESS_KEY_ID": gateway.access_key,
        "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY": gateway.secret_key,
        "RCLONE_CONFIG_GW_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_GW_REGION": gateway.region,
        "RCLONE_RETRIES": "1",
        "RCLONE_LOW_LEVEL_RETRIES": "1",
        **extra,
    }


def test_rclone_with_url_encoded_listings(
    gateway: GatewayServer, s3: Any, stored: str, tmp_path: Path
) -> None:
    """rclone's provider Other asks for encoding-type=url only when told to
    (``list_url_encode = true``, as the README's client table says): then it round-trips."""
    rclone = require_tool("rclone")
    env = _rclone_env(gateway, tmp_path, RCLONE_CONFIG_GW_LIST_URL_ENCODE="true")
    listed = json.loads(run([rclone, "lsjson", "-R", f"gw:{stored}/odd"], env).stdout)
    # rclone shows control characters as Unicode control pictures (U+2400 + code).
    shown = _pictures(ODD.removeprefix("odd/"))
    assert sorted(item["Path"] for item in listed) == sorted([shown, "plain.txt"])
    local = tmp_path / "copy"
    run([rclone, "copy", f"gw:{stored}/odd", str(local)], env)
    assert (local / ODD.removeprefix("odd/")).read_bytes() == ODD.encode()
    run([rclone, "copy", str(local), f"gw:{stored}/back"], env)
    back = s3.get_object(Bucket=stored, Key="back/" + ODD.removeprefix("odd/"))
    assert back["Body"].read() == ODD.encode()


def test_rclone_at_its_defaults(gateway: GatewayServer, stored: str, tmp_path: Path) -> None:
    """Without list_url_encode rclone reads the listing as it is: the key XML cannot carry
    shows URL-encoded, every other key of the page stays exact."""
    rclone = require_tool("rclone")
    env = _rclone_env(gateway, tmp_path)
    listed = json.loads(run([rclone, "lsjson", "-R", f"gw:{stored}/odd"], env).stdout)
    assert sorted(item["Path"] for item in listed) == sorted(
        [quote(ODD.removeprefix("odd/"), safe="/"), "plain.txt"]
    )
    assert run([rclone, "cat", f"gw:{stored}/{PLAIN}"], env).stdout == PLAIN


def _pictures(name: str) -> str:
    return "".join(chr(0x2400 + ord(c)) if ord(c) < 0x20 else c for c in name)
