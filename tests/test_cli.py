"""Zero-configuration start: generated credentials are printed once and never logged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.servers import GatewayServer, free_port, wait_http


def _start(cwd: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWG_")}
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--address", f"127.0.0.1:{port}"],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_once(cwd: Path) -> tuple[str, str]:
    port = free_port()
    process = _start(cwd, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/_pagewright/healthz", process)
        credentials = json.loads((cwd / "data" / "root-credentials.json").read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=credentials["access_key"],
            aws_secret_access_key=credentials["secret_key"],
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket=f"zero-config-{int(time.time() * 1000)}")
        assert s3.list_buckets()["Buckets"]
    finally:
        process.terminate()
        out, err = process.communicate()
    return out.decode(), err.decode()


def test_zero_config_start(tmp_path: Path) -> None:
    first_out, first_err = _run_once(tmp_path)
    secret = json.loads((tmp_path / "data" / "root-credentials.json").read_text())["secret_key"]
    assert secret in first_out
    assert secret not in first_err
    assert (tmp_path / "data" / "storage").is_dir()
    second_out, second_err = _run_once(tmp_path)
    assert secret not in second_out
    assert secret not in second_err
    for line in first_err.splitlines() + second_err.splitlines():
        json.loads(line)  # every log line is structured JSON


def test_bad_configuration_fails_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--address", "nowhere"],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        check=False,
    )
    assert result.returncode == 2
    assert b"HOST:PORT" in result.stderr


def test_unknown_backend_scheme(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--backend", "ftp://somewhere"],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        check=False,
    )
    assert result.returncode == 2
    assert b"unknown scheme" in result.stderr


def test_probes(gateway: GatewayServer) -> None:
    for path in ("/healthz", "/_pagewright/healthz"):
        with urllib.request.urlopen(gateway.endpoint + path) as response:
            assert response.read() == b"ok\n"
    with urllib.request.urlopen(gateway.endpoint + "/readyz") as response:
        report = json.loads(response.read())
    assert (report["ready"], report["backend"], report["failed"]) == (True, "filesystem", [])
    assert set(report["checks"]) == {"backend", "catalog", "free_space"}


def test_signed_healthz_is_a_bucket(s3: Any) -> None:
    # A signed request for /healthz is S3 addressing a bucket called "healthz".
    s3.create_bucket(Bucket="healthz")
    s3.put_object(Bucket="healthz", Key="k", Body=b"x")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="healthz")["Contents"]] == ["k"]
    s3.delete_object(Bucket="healthz", Key="k")
    s3.delete_bucket(Bucket="healthz")
